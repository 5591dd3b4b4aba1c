"""What the scoring engines hand back: encoded references and pair scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class ReferenceEncoding:
    """What the distorted branch needs from a reference image."""

    width: int
    height: int
    grid: tuple[int, int]
    features: torch.Tensor  # (N, C) fp32, after the reference attention
    offsets: torch.Tensor | None  # RADN: (N, 18, 8, 8) fp32; None without the deformable step
    engine_state: Any = field(default=None, repr=False, compare=False)  # the engine's own (tiles)


@dataclass(frozen=True)
class PairScore:
    score: float
    patch_scores: torch.Tensor  # (rows, cols) fp32, CPU
    patch_weights: torch.Tensor  # (rows, cols) fp32, CPU
    grid: tuple[int, int]
    width: int
    height: int

    @property
    def patches(self) -> int:
        return self.grid[0] * self.grid[1]


def same_size_groups(sizes) -> list[list[int]]:
    """Indices grouped by equal size, in order of first appearance: [81, 12, 81] -> [[0, 2], [1]]."""
    groups: dict[int, list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    return list(groups.values())
