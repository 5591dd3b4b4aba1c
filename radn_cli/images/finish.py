"""Final steps on decoded planes: alpha composited over white, grey repeated to RGB, EXIF orientation."""

from __future__ import annotations

import torch

from .pixels import Pixels

_ORIENTATIONS = {
    2: "mirror horizontal",
    3: "rotate 180",
    4: "mirror vertical",
    5: "transpose",
    6: "rotate 90 clockwise",
    7: "transverse",
    8: "rotate 90 counter-clockwise",
}


def finish(pixels: Pixels, orientation: int) -> tuple[torch.Tensor, list[str]]:
    notes = list(pixels.notes)
    color = pixels.color
    if pixels.alpha is not None:
        color, note = _composite_over_white(color, pixels.alpha)
        notes += [note] if note else []
    if color.shape[0] == 1:
        color = color.expand(3, -1, -1)
    if orientation != 1:
        color = color if pixels.oriented else _orient(color, orientation)
        notes.append(f"EXIF orientation applied ({_ORIENTATIONS[orientation]})")
    return color.contiguous(), notes


def _composite_over_white(color: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, str | None]:
    """Colour over a white background; no change and no note when alpha is opaque everywhere."""
    not_opaque = int((alpha < 1.0).sum())
    if not_opaque == 0:
        return color, None
    share = 100 * not_opaque / alpha.numel()
    shown = f"{share:.1f}%" if share >= 0.1 else "<0.1%"
    return color * alpha + (1.0 - alpha), f"alpha composited over white ({shown} of pixels not opaque)"


def _orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation to planes [C, H, W] (as PIL.ImageOps.exif_transpose does)."""
    if orientation == 2:
        return image.flip(2)
    if orientation == 3:
        return image.flip(1, 2)
    if orientation == 4:
        return image.flip(1)
    if orientation == 5:
        return image.transpose(1, 2)
    if orientation == 6:
        return torch.rot90(image, -1, dims=(1, 2))
    if orientation == 7:
        return image.transpose(1, 2).flip(1, 2)
    return torch.rot90(image, 1, dims=(1, 2))
