"""The public functions: ``read_size``, ``load_image`` and ``check_pair``, and the ``LoadedImage`` result."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..constants import PATCH
from ..errors import ImageError, SizeMismatchError, first_line
from .decode import decode
from .files import check_pixels, open_header, pixel_limit
from .finish import finish


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image ready for RADN."""

    tensor: torch.Tensor  # float32 [3, H, W] in [0, 1], contiguous
    path: str
    width: int
    height: int
    bit_depth: int  # bits per channel of the source: 8 or 16
    notes: tuple[str, ...]  # what was done to the pixels, for humans


def read_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the file header only."""
    with open_header(path) as header:
        return header.width, header.height


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> LoadedImage:
    """Decode an image file into a float32 [3, H, W] sRGB tensor in [0, 1] (see the package docstring).

    Example:
        >>> image = load_image("examples/ref.png")
        >>> image.tensor.shape, image.bit_depth
        (torch.Size([3, 384, 512]), 8)
    """
    limit, from_env = pixel_limit(max_pixels)
    with open_header(path) as header:
        check_pixels(header.width, header.height, limit, from_env, header.shown)
        pixels = decode(header)
    tensor, notes = finish(pixels, header.orientation)
    lines = (first_line(message, 100) for message in dict.fromkeys(header.warnings))
    notes += [f"decoder warning: {line}" for line in lines if line]
    return LoadedImage(tensor, header.shown, header.width, header.height, pixels.bit_depth, tuple(notes))


def check_pair(
    ref: LoadedImage | tuple[int, int],
    dist: LoadedImage | tuple[int, int],
    *,
    ref_path: str | os.PathLike[str] | None = None,
    dist_path: str | os.PathLike[str] | None = None,
) -> None:
    """Raise unless reference and distorted images have the same size of at least one patch."""
    ref_size, ref_shown = _size_and_path(ref, ref_path)
    dist_size, dist_shown = _size_and_path(dist, dist_path)
    for (width, height), shown in ((ref_size, ref_shown), (dist_size, dist_shown)):
        if width < PATCH or height < PATCH:
            raise ImageError(f"image is {width}x{height}, smaller than one {PATCH}x{PATCH} patch", shown)
    if ref_size != dist_size:
        names = ", ".join(p for p in (ref_shown, dist_shown) if p)
        where = f" ({names})" if names else ""
        raise SizeMismatchError(
            f"reference is {ref_size[0]}x{ref_size[1]} but distorted is {dist_size[0]}x{dist_size[1]}{where}"
        )


def _size_and_path(
    image: LoadedImage | tuple[int, int], path: str | os.PathLike[str] | None
) -> tuple[tuple[int, int], str | None]:
    if isinstance(image, LoadedImage):
        return (image.width, image.height), os.fspath(path) if path is not None else image.path
    width, height = image
    return (int(width), int(height)), None if path is None else os.fspath(path)
