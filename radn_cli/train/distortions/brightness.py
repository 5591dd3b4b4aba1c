"""KADID-10k category brightness change: 16 brighten, 17 darken, 18 mean shift.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor

from .colorspace import curves, lab_to_rgb, rgb_to_lab
from .registry import register


@register(16, "brighten", "Brighten", parameter="amount", levels=(0.1, 0.2, 0.4, 0.7, 1.1))
def _t16_brighten(x: Tensor, amount: float, gen: Generator | None) -> Tensor:
    """(2 * curves(RGB) + clip(lab2rgb(curves on L))) / 3 with c = 0.5 + amount/2."""
    c = 0.5 + amount / 2.0
    j1 = curves(x, c)
    lab = rgb_to_lab(x)
    lab = torch.cat((100.0 * curves(lab[:, :1] / 100.0, c), lab[:, 1:]), dim=1)
    j2 = lab_to_rgb(lab).clamp(0.0, 1.0)
    return (2.0 * j1 + j2) / 3.0


@register(17, "darken", "Darken", parameter="amount", levels=(0.05, 0.1, 0.2, 0.4, 0.8))
def _t17_darken(x: Tensor, amount: float, gen: Generator | None) -> Tensor:
    """curves(RGB) with c = 0.5 - amount/2, no Lab blend (spec [P])."""
    return curves(x, 0.5 - amount / 2.0)


@register(18, "meanshift", "Mean_Shift", parameter="offset", levels=(0.15, 0.08, 0, -0.08, -0.15))
def _t18_meanshift(x: Tensor, offset: float, gen: Generator | None) -> Tensor:
    """clip(I + offset); the final global mapmm turns it into a gain with one-sided clipping."""
    return (x + offset).clamp(0.0, 1.0)
