"""KADID-10k category blur: 01 Gaussian blur, 02 lens blur, 03 motion blur.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Generator, Tensor

from .filters import filter2d, fspecial_disk, fspecial_motion, gauss_filter
from .registry import register
from .rng import randint


@register(1, "gblur", "GBLUR", parameter="gaussian sigma (px)", levels=(0.1, 0.5, 1, 2, 5))
def _t01_gblur(x: Tensor, sigma: float, gen: Generator | None) -> Tensor:
    return gauss_filter(x, sigma)


@register(2, "lensblur", "Lens_Blur", parameter="disk radius (px)", levels=(1, 2, 4, 6, 8))
def _t02_lensblur(x: Tensor, radius: float, gen: Generator | None) -> Tensor:
    return filter2d(x, torch.tensor(np.asarray(fspecial_disk(float(radius)))))


@register(3, "motionblur", "Motion_Blur", parameter="line length (px)", levels=(1, 2, 4, 6, 10), random=True)
def _t03_motionblur(x: Tensor, length: float, gen: Generator | None) -> Tensor:
    """Motion kernel at a uniform random integer angle in [0, 180] degrees, one per image."""
    angles = randint(0, 181, (x.shape[0],), gen).tolist()
    ks = [fspecial_motion(float(length), float(a)) for a in angles]
    size_h = max(k.shape[0] for k in ks)
    size_w = max(k.shape[1] for k in ks)
    stack = np.zeros((len(ks), size_h, size_w))
    for i, k in enumerate(ks):
        oh, ow = (size_h - k.shape[0]) // 2, (size_w - k.shape[1]) // 2
        stack[i, oh : oh + k.shape[0], ow : ow + k.shape[1]] = k
    if size_h == 1 and size_w == 1:
        return x * torch.as_tensor(stack[:, 0, 0], dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
    return filter2d(x, torch.as_tensor(stack))
