"""Random draws for the random types, and MATLAB rounding.

Numbers are drawn on the generator's device and moved to the images' device, so the same seed gives
the same draws wherever the images live; with ``gen=None`` the global torch RNG is used.
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor


def rand(shape: tuple[int, ...], gen: Generator | None, device: torch.device) -> Tensor:
    if gen is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=gen, device=gen.device).to(device)


def randn(shape: tuple[int, ...], gen: Generator | None, device: torch.device) -> Tensor:
    if gen is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=gen, device=gen.device).to(device)


def randint(low: int, high: int, shape: tuple[int, ...], gen: Generator | None) -> Tensor:
    """Integers in [low, high) on the CPU."""
    if gen is None:
        return torch.randint(low, high, shape)
    return torch.randint(low, high, shape, generator=gen, device=gen.device).cpu()


def mround(x: Tensor) -> Tensor:
    """MATLAB ``round``: halves away from zero."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)
