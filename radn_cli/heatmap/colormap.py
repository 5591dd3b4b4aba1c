"""Colour map: the viridis-like lookup table shared by the overlay and the terminal preview.

The ramp runs dark purple -> blue -> green -> yellow through ten anchor colours, interpolated in the
perceptually uniform OKLab space: low values are dark, high values bright. :func:`color_index` turns a
map into indices into :data:`COLORMAP`.
"""

from __future__ import annotations

import math

import numpy as np

# Ten evenly spaced anchor colours of a viridis-like ramp (low -> high).
_ANCHORS_HEX = (
    "440154", "482878", "3e4989", "31688e", "26828e",
    "1f9e89", "35b779", "6ece58", "b5de2b", "fde725",
)  # fmt: skip

# OKLab (Ottosson 2020): linear sRGB -> LMS, then cube root, then LMS' -> Lab.
_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    lms = _srgb_to_linear(rgb) @ _RGB_TO_LMS.T
    return np.cbrt(lms) @ _LMS_TO_LAB.T


def _oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    lms = (lab @ np.linalg.inv(_LMS_TO_LAB).T) ** 3
    return _linear_to_srgb(lms @ np.linalg.inv(_RGB_TO_LMS).T)


def _build_lut(anchors_hex: tuple[str, ...], size: int = 256) -> np.ndarray:
    """A ``[size, 3]`` uint8 ramp through the anchors, linear in OKLab between neighbours."""
    rgb = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in anchors_hex], float) / 255.0
    lab = srgb_to_oklab(rgb)
    pos = np.linspace(0.0, 1.0, len(anchors_hex))
    t = np.linspace(0.0, 1.0, size)
    lab_t = np.stack([np.interp(t, pos, lab[:, k]) for k in range(3)], axis=1)
    return np.round(_oklab_to_srgb(lab_t) * 255.0).astype(np.uint8)


COLORMAP: np.ndarray = _build_lut(_ANCHORS_HEX)
"""The ``[256, 3]`` uint8 viridis-like lookup table (index 0 = lowest value, 255 = highest)."""
COLORMAP.setflags(write=False)

CONSTANT_INDEX = 128  # colour used for every patch when the map is constant


def color_index(values: np.ndarray, vrange: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """LUT indices (uint8) and a mask of the finite values; constant maps use the middle colour."""
    valid = np.isfinite(values)
    idx = np.full(values.shape, CONSTANT_INDEX, dtype=np.uint8)
    if vrange is not None and vrange[1] > vrange[0]:
        lo, hi = vrange
        span = hi - lo
        t = np.where(valid, (values - lo) / span if math.isfinite(span) else 0.5, 0.0)
        idx = np.clip(np.round(t * 255.0), 0, 255).astype(np.uint8)
    return idx, valid
