"""The viewing scale (``--scale``): at what size a pair is scored, and its heatmap drawn back at input size.

A learned metric judges what it is shown: a 12-megapixel pair scored at native resolution is judged
as if seen at 100% zoom (and takes minutes on a CPU), the same pair at 1024 px as a screen shows it
whole. ``--scale`` makes that choice explicit, and every output records it:

* ``native`` (the default): the images as decoded, untouched; scores are exactly those of a run
  without the option.
* a long side in pixels, a whole number (``1024``): both images resized so that their longer side
  has that many pixels, the aspect ratio kept (each side rounded to whole pixels).
* a factor, a number with a decimal point (``0.5``): both sides times the factor (``1.0`` is
  ``native``).

Reference and distorted image are resized alike, with an antialiased bicubic filter (PyTorch's
``interpolate(..., antialias=True)``, which low-passes before it samples, as Pillow does), on the
float pixels, so that 16-bit images keep their precision. Scaling only ever shrinks: a factor above
1 is a usage error, a long side larger than an image is that pair's error, as is a result smaller
than one 32x32 patch.

Heatmaps are drawn at input resolution even when the pair was scored smaller
(:func:`heatmap_at_input`): the per-patch map, on the grid of the scaled image, is sampled back onto
the input image in cells of a few pixels. Parsing imports nothing heavy (the command line checks
``--scale`` before PyTorch loads); resizing and drawing import torch and the heatmap package.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .constants import PATCH
from .errors import ImageError

if TYPE_CHECKING:
    import torch
    from PIL import Image

NATIVE = "native"
_WHOLE = re.compile(r"\+?\d+")


@dataclass(frozen=True)
class Scale:
    """A parsed ``--scale``: ``text`` is its canonical form (``native``, ``1024``, ``0.5``), written in
    the CSV and the JSON; exactly one of ``long_side`` and ``factor`` is set unless it is native."""

    text: str = NATIVE
    long_side: int | None = None
    factor: float | None = None

    @property
    def native(self) -> bool:
        return self.long_side is None and self.factor is None

    def size(self, width: int, height: int, path: str | None = None) -> tuple[int, int]:
        """(width, height) at which a ``width`` x ``height`` image is scored. Raises ImageError (naming
        ``path``) when that would upscale it or leave less than one patch.

        >>> parse_scale("1024").size(4000, 3000), parse_scale("0.5").size(513, 384)
        ((1024, 768), (257, 192))
        """
        if self.native:
            return width, height
        if self.long_side is not None:
            longest = max(width, height)
            if self.long_side > longest:
                raise ImageError(
                    f"--scale {self.text} would upscale this {width}x{height} image (its long side is "
                    f"{longest} px); give at most {longest} or native",
                    path,
                )
            factor = self.long_side / longest
        else:
            factor = float(self.factor)
        size = (_rounded(width * factor), _rounded(height * factor))
        if min(size) < PATCH:
            raise ImageError(
                f"--scale {self.text} makes this {width}x{height} image {size[0]}x{size[1]}, smaller than "
                f"one {PATCH}x{PATCH} patch",
                path,
            )
        return size


def _rounded(value: float) -> int:
    """Half up, so that a size does not depend on banker's rounding of an exact half."""
    return max(1, math.floor(value + 0.5))


def parse_scale(text: str | Scale | None) -> Scale:
    """``--scale`` as a :class:`Scale`; ``ValueError`` with a one-line reason for anything else.

    >>> parse_scale("native").native, parse_scale("1024").long_side, parse_scale(".50").text
    (True, 1024, '0.5')
    >>> parse_scale("1.0").text
    'native'
    """
    if text is None:
        return Scale()
    if isinstance(text, Scale):
        return text
    given = str(text).strip().lower()
    if given == NATIVE:
        return Scale()
    accepted = "native, a long side in pixels (e.g. 1024) or a factor up to 1 (e.g. 0.5)"
    if _WHOLE.fullmatch(given):
        pixels = int(given)
        if pixels <= 0:
            raise ValueError(f"must be above 0, not {text!r}: give {accepted}")
        if pixels < PATCH:
            raise ValueError(f"{text!r}: a long side of at least {PATCH} px (one patch) is needed")
        return Scale(str(pixels), long_side=pixels)
    try:
        factor = float(given)
    except ValueError:
        raise ValueError(f"must be {accepted}, not {text!r}") from None
    if not math.isfinite(factor):
        raise ValueError(f"must be {accepted}, not {text!r}")
    if factor <= 0:
        raise ValueError(f"must be above 0, not {text!r}: give {accepted}")
    if factor > 1:
        raise ValueError(
            f"{text!r} would upscale: a factor goes up to 1 (a long side in pixels is a whole number, "
            "e.g. 1024)"
        )
    if factor == 1:
        return Scale()
    return Scale(repr(factor), factor=factor)


def resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A float ``[3, H, W]`` image in [0, 1] resized to ``size`` (width, height): antialiased bicubic,
    clamped back to [0, 1] (bicubic overshoots at edges), contiguous float32."""
    import torch
    import torch.nn.functional as F

    width, height = size
    if (width, height) == (pixels.shape[2], pixels.shape[1]):
        return pixels
    resized = F.interpolate(
        pixels[None].float(), size=(height, width), mode="bicubic", antialias=True, align_corners=False
    )[0]
    return torch.clamp(resized, 0.0, 1.0).contiguous()


def scaled_pixels(image: Any, scale: Scale) -> torch.Tensor | None:
    """The pixels of a decoded image (``LoadedImage``) as scored at ``scale``: None at native (score
    ``image.tensor`` itself). Raises ImageError as :meth:`Scale.size` does."""
    if scale.native:
        return None
    return resize(image.tensor, scale.size(image.width, image.height, image.path))


# ---------------------------------------------------------------------------------------------------
# Heatmaps of a pair scored at another size, drawn at input resolution

_MAX_CELL = 15  # px: below 16, so that the overlay draws no grid lines between cells (they are not patches)


def _cells(result: Any, width: int, height: int) -> tuple[int, list[int], list[int]]:
    """How a per-patch map scored at ``result.width`` x ``result.height`` lies on a ``width`` x
    ``height`` image: the cell size in px and, for each row and column of cells, its patch."""
    rows, cols = result.grid
    sx, sy = width / result.width, height / result.height
    cell = max(1, min(_MAX_CELL, round(PATCH * min(sx, sy) / 16)))

    def index(count: int, stretch: float) -> list[int]:
        covered = math.floor(count * PATCH * stretch / cell)
        return [min(count - 1, math.floor((i + 0.5) * cell / stretch / PATCH)) for i in range(covered)]

    return cell, index(rows, sy), index(cols, sx)


def heatmap_at_input(
    image: Any,
    result: Any,
    *,
    kind: str,
    title: str | None = None,
    higher_is_better: bool = True,
    value_range: tuple[float, float] | None = None,
    legend: bool = True,
) -> Image.Image:
    """The ``kind`` map of ``result`` over the decoded ``image`` (``LoadedImage``) at the image's own
    resolution, with its legend below (``legend=False``: the image part only, ``image.width`` x
    ``image.height``).

    A pair scored at its native size is drawn by ``heatmap.heatmap_image`` as it always was. A pair
    scored smaller (``--scale``) has a patch grid that does not fall on whole pixels of the input:
    its map is sampled onto the input image in square cells of at most 15 px (about 1/16 of a patch;
    a cell takes the value of the patch under its centre), and the legend is the one the per-patch
    map itself gets (its range, the patches beyond it, the sum of a product map), so that it reads as
    at native size. The cells are too small for lines between patches; those are left out.
    """
    from .heatmap import heatmap_image, image_pixels, render_overlay, result_map

    width, height = image.width, image.height
    options = dict(kind=kind, title=title, higher_is_better=higher_is_better, value_range=value_range)
    if (result.width, result.height) == (width, height):
        drawn = heatmap_image(image, result, **options)
        return drawn if legend else drawn.crop((0, 0, width, height))
    import numpy as np

    values = result_map(result, kind)
    cell, rows, cols = _cells(result, width, height)
    pixels = image_pixels(image)
    # the colours: every patch has at least one cell (a patch is >= 32 px here, a cell <= 15), so an
    # automatic range (the map's min..max) is the per-patch map's
    drawn = render_overlay(pixels, values[np.ix_(rows, cols)], patch=cell, **options)
    if not legend:
        return drawn.crop((0, 0, width, height))
    # the legend: drawn for the per-patch map itself, on patches of whole pixels that fit the image
    fit = max(1, min(width // result.grid[1], height // result.grid[0]))
    keyed = render_overlay(pixels, values, patch=fit, **options)
    drawn.paste(keyed.crop((0, height, keyed.width, keyed.height)), (0, height))
    return drawn
