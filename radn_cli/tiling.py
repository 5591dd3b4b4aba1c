"""Cutting images into RADN's non-overlapping 32x32 patches, and putting per-patch values back.

Patches are taken row-major from the top-left corner with stride 32. When the height or width is not
a multiple of 32 the remainder rows/columns at the bottom/right are not scored, as in the reference
code (which, unlike us, also drops the last full row or column when only one side is a multiple of
32: a 288x288 image has 9x9 = 81 patches here).
"""

from __future__ import annotations

import torch

from .constants import PATCH


def grid_shape(height: int, width: int, patch: int = PATCH) -> tuple[int, int]:
    """(rows, cols) of whole patches that fit in an image of this size."""
    return height // patch, width // patch


def patch_grid(images: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """A view [B, rows, cols, C, patch, patch] of images [B, C, H, W]; no copy is made."""
    batch, channels, height, width = images.shape
    rows, cols = grid_shape(height, width, patch)
    cropped = images[:, :, : rows * patch, : cols * patch]
    grid = cropped.unflatten(2, (rows, patch)).unflatten(4, (cols, patch))  # (B, C, rows, p, cols, p)
    return grid.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p)


def tile(images: torch.Tensor, patch: int = PATCH) -> tuple[torch.Tensor, tuple[int, int]]:
    """Patches [B, N, C, patch, patch] (N = rows * cols, row-major) of images [B, C, H, W], and (rows, cols).

    Example:
        >>> patches, grid = tile(torch.zeros(1, 3, 100, 70))
        >>> patches.shape, grid
        (torch.Size([1, 6, 3, 32, 32]), (3, 2))
    """
    grid = patch_grid(images, patch)
    batch, rows, cols = grid.shape[:3]
    return grid.reshape(batch, rows * cols, *grid.shape[3:]), (rows, cols)


def patches_at(image: torch.Tensor, start: int, stop: int, patch: int = PATCH) -> torch.Tensor:
    """Patches start..stop-1 (row-major) of one image [C, H, W] as [stop - start, C, patch, patch].

    Only those patches are copied, so a large image can be scored in bounded memory.
    """
    grid = patch_grid(image.unsqueeze(0), patch)[0]  # (rows, cols, C, p, p)
    cols = grid.shape[1]
    index = torch.arange(start, stop, device=image.device)
    return grid[index // cols, index % cols]


def untile(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Per-patch values [..., N] back to their grid [..., rows, cols]."""
    return values.unflatten(-1, grid)
