"""Kernels and filtering.

MATLAB ``fspecial`` kernels (gaussian, disk, motion; float64 numpy, cached) and the batched filters
that apply them: separable and per-image 2-D correlation with replicate borders ('same' size), as
``imfilter``/``imgaussfilt`` do, plus a row-wise quantile without ``torch.quantile``'s size limit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = float(np.finfo(np.float64).eps)


def gaussian_size(sigma: float) -> int:
    """``imgaussfilt``'s default kernel size, 2*ceil(2*sigma)+1."""
    return 2 * math.ceil(2.0 * sigma) + 1


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` (float64, sums to 1)."""
    r = (size - 1) / 2.0
    ax = np.arange(size, dtype=np.float64) - r
    h = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < _EPS * h.max()] = 0.0
    return h / h.sum()


@lru_cache(maxsize=64)
def gaussian_1d(sigma: float, size: int) -> np.ndarray:
    """1-D factor of :func:`fspecial_gaussian` (the 2-D kernel is its outer product up to entries
    below eps * max, which MATLAB zeroes)."""
    r = (size - 1) / 2.0
    ax = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(ax**2) / (2.0 * sigma * sigma))
    g[g < _EPS * g.max()] = 0.0
    g = g / g.sum()
    g.setflags(write=False)
    return g


def _disk_quadrant_area(x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Area of the disc of radius r (centre 0) inside [0, x] x [0, y], for x, y >= 0."""
    x = np.minimum(x, r)
    y = np.minimum(y, r)
    xb = np.sqrt(np.maximum(r * r - y * y, 0.0))  # circle height exceeds y for |t| < xb
    xm = np.minimum(x, xb)

    def prim(t: np.ndarray) -> np.ndarray:  # integral of sqrt(r^2 - t^2) from 0 to t
        return 0.5 * (t * np.sqrt(np.maximum(r * r - t * t, 0.0)) + r * r * np.arcsin(np.clip(t / r, -1, 1)))

    return y * xm + prim(x) - prim(xm)


def _disk_area(x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed area of the disc inside the rectangle between the origin and (x, y)."""
    return np.sign(x) * np.sign(y) * _disk_quadrant_area(np.abs(x), np.abs(y), r)


@lru_cache(maxsize=32)
def fspecial_disk(radius: float) -> np.ndarray:
    """MATLAB ``fspecial('disk', r)``: exact area of each pixel inside the disc, normalised to sum 1.

    Size 2*ceil(r - 0.5) + 1 (3, 5, 9, 13, 17 for r = 1, 2, 4, 6, 8).
    """
    if radius <= 0:
        raise ValueError("disk radius must be positive")
    crad = math.ceil(radius - 0.5)
    c = np.arange(-crad, crad + 1, dtype=np.float64)
    x0, x1 = c[None, :] - 0.5, c[None, :] + 0.5
    y0, y1 = c[:, None] - 0.5, c[:, None] + 0.5
    area = (
        _disk_area(x1, y1, radius)
        - _disk_area(x0, y1, radius)
        - _disk_area(x1, y0, radius)
        + _disk_area(x0, y0, radius)
    )
    area = np.maximum(area, 0.0)
    out = area / area.sum()
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1024)
def fspecial_motion(length: float, angle: float) -> np.ndarray:
    """MATLAB ``fspecial('motion', len, theta)``: an anti-aliased 1-px-wide line of ``length`` px at
    ``angle`` degrees counter-clockwise, normalised to sum 1; ``length <= 1`` gives [[1]]."""
    length = max(1.0, float(length))
    half = (length - 1.0) / 2.0
    phi = (float(angle) % 180.0) / 180.0 * math.pi
    cphi, sphi = math.cos(phi), math.sin(phi)
    xsign = 1 if cphi >= 0 else -1
    width = 1.0
    # half of the kernel lies in one quadrant, with pixel coordinates x (columns) and y (rows) >= 0
    sx = int(half * cphi + width * xsign - length * _EPS)  # int() truncates toward zero like fix()
    sy = int(half * sphi + width - length * _EPS)
    xs = np.arange(0, sx + xsign, xsign, dtype=np.float64)
    ys = np.arange(0, sy + 1, dtype=np.float64)
    xg, yg = np.meshgrid(xs, ys)
    dist = yg * cphi - xg * sphi  # perpendicular distance to the line
    rad = np.sqrt(xg**2 + yg**2)
    beyond = (rad >= half) & (np.abs(dist) <= width)
    # past the segment's end point: Euclidean distance to the end point
    along = half - np.abs((xg[beyond] + dist[beyond] * sphi) / cphi)
    dist[beyond] = np.sqrt(dist[beyond] ** 2 + along**2)
    val = width + _EPS - np.abs(dist)
    val[val < 0] = 0.0
    rows, cols = val.shape
    full = np.zeros((2 * rows - 1, 2 * cols - 1))
    full[:rows, :cols] = val[::-1, ::-1]
    full[rows - 1 :, cols - 1 :] = val
    full = full / (full.sum() + _EPS * length * length)
    if cphi > 0:
        full = full[::-1, :]
    full = np.ascontiguousarray(full)
    full.setflags(write=False)
    return full


def _planes(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [1, B*C, H, W] for depthwise convolution."""
    return x.reshape(1, -1, x.shape[-2], x.shape[-1])


def _conv_rows(p: Tensor, k: Tensor) -> Tensor:
    """Correlate each plane of ``p`` [1, N, H, W] along W with the 1-D kernel ``k``, replicate border."""
    r = (k.numel() - 1) // 2
    n = p.shape[1]
    w = k.view(1, 1, 1, -1).expand(n, 1, 1, k.numel())
    return F.conv2d(F.pad(p, (r, r, 0, 0), mode="replicate"), w, groups=n)


def _sep_filter(x: Tensor, k1d: np.ndarray) -> Tensor:
    """Separable symmetric filter, replicate borders, 'same' size, per channel."""
    if k1d.size == 1:
        return x * float(k1d[0])
    k = torch.tensor(np.asarray(k1d), dtype=x.dtype, device=x.device)
    p = _planes(x)
    p = _conv_rows(p, k)
    p = _conv_rows(p.transpose(2, 3).contiguous(), k).transpose(2, 3)
    return p.reshape(x.shape)


def gauss_filter(x: Tensor, sigma: float, size: int | None = None) -> Tensor:
    """``imgaussfilt(x, sigma)``: replicate borders, kernel size 2*ceil(2*sigma)+1 by default."""
    return _sep_filter(x, gaussian_1d(float(sigma), size or gaussian_size(sigma)))


def filter2d(x: Tensor, kernels: Tensor) -> Tensor:
    """Correlate each image with its own 2-D kernel (replicate borders, 'same').

    ``kernels``: [kh, kw] shared, or [B, kh, kw] one per image; odd sizes.
    """
    b, c, h, w = x.shape
    if kernels.dim() == 2:
        kernels = kernels.unsqueeze(0).expand(b, -1, -1)
    kh, kw = kernels.shape[-2:]
    weight = kernels.to(dtype=x.dtype, device=x.device).unsqueeze(1).repeat_interleave(c, dim=0)
    p = F.pad(_planes(x), (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    return F.conv2d(p, weight.contiguous(), groups=b * c).reshape(b, c, h, w)


def quantile_rows(v: Tensor, q: float) -> Tensor:
    """Linear-interpolated quantile of each row of ``v`` [B, N] (no size limit, unlike torch.quantile)."""
    s, _ = torch.sort(v, dim=1)
    pos = q * (v.shape[1] - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, v.shape[1] - 1)
    frac = pos - lo
    return s[:, lo] * (1 - frac) + s[:, hi] * frac
