"""KADID-10k category sharpness and contrast: 24 high sharpen, 25 contrast change.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor

from .colorspace import curves, lab_to_rgb, rgb_to_lab
from .filters import gauss_filter
from .registry import register


@register(24, "sharpen", "High_Sharpen", parameter="unsharp amount", levels=(1, 2, 3, 6, 12))
def _t24_sharpen(x: Tensor, amount: float, gen: Generator | None) -> Tensor:
    """``imsharpen(I, 'Radius', 3, 'Amount', a)``: unsharp mask of Lab L with a 13x13 sigma-3
    Gaussian (replicate borders), back to RGB, clipped."""
    lab = rgb_to_lab(x)
    lum = lab[:, :1]
    blurred = gauss_filter(lum, 3.0, 13)
    lum = lum + amount * (lum - blurred)
    return lab_to_rgb(torch.cat((lum, lab[:, 1:]), dim=1)).clamp(0.0, 1.0)


@register(25, "contrast", "Contrast Dist.", parameter="contrast amount", levels=(0.3, 0.15, 0, -0.4, -0.6))
def _t25_contrast(x: Tensor, amount: float, gen: Generator | None) -> Tensor:
    """curves(I, [0.25 - a/4, 0.75 + a/4]): not-a-knot cubic through 5 knots, clipped."""
    return curves(x, (0.25 - amount / 4.0, 0.75 + amount / 4.0))
