"""What every decoder hands on: ``Pixels`` (float32 planes in [0, 1] before alpha, grey and
orientation are finished), ``planes`` (integer samples to such planes), and the two messages that
decoders share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

CORRUPT = "truncated or corrupt image data"
CONVERT_HINT = "convert it to a 16-bit sRGB PNG first (e.g. `magick INPUT -profile sRGB.icc OUTPUT.png`)"


@dataclass
class Pixels:
    """Decoded planes before alpha, grey expansion and orientation."""

    color: torch.Tensor  # float32 [1 or 3, H, W] in [0, 1]
    alpha: torch.Tensor | None  # float32 [1, H, W] in [0, 1]
    bit_depth: int
    notes: list[str] = field(default_factory=list)
    oriented: bool = False  # already as displayed: Pillow turned a TIFF by its EXIF orientation


def planes(samples: np.ndarray, scale: float) -> torch.Tensor:
    """Integer samples [H, W] or [H, W, C] -> float32 [C, H, W] in [0, 1], with a single float copy."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    floats = np.ascontiguousarray(samples.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(floats).div_(scale)
