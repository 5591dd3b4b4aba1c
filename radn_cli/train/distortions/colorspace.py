"""Shared helpers: normalisation, colour spaces, curves.

:func:`mapmm` (the generator's per-image global min-max stretch), MATLAB-compatible conversions between
sRGB and CIE L*a*b*, HSV and studio-range YCbCr, MATLAB's ``rgb2gray`` weights, and Hosu's tone
:func:`curves` with the not-a-knot cubic spline (MATLAB ``spline``) behind them. All work on batches
``[B, 3, H, W]`` on any device.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor


def mapmm(x: Tensor) -> Tensor:
    """Per-image global min-max stretch to [0, 1] (over all channels); constant images unchanged."""
    flat = x.reshape(x.shape[0], -1)
    lo = flat.amin(dim=1).view(-1, 1, 1, 1)
    hi = flat.amax(dim=1).view(-1, 1, 1, 1)
    rng = hi - lo
    return torch.where(rng > 0, (x - lo) / torch.where(rng > 0, rng, torch.ones_like(rng)), x)


_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE_D65 = _SRGB_TO_XYZ.sum(axis=1)  # (0.95047, 1.0, 1.08883): maps RGB white to L=100, a=b=0
_XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ)
_LAB_DELTA = 6.0 / 29.0


def _mat(m: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(m, dtype=like.dtype, device=like.device)


def _apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    """``m`` (3x3) times the channel vector of ``x`` [B, 3, H, W]."""
    return torch.einsum("ij,bjhw->bihw", m, x)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1] -> CIE L*a*b* (D65, 2 deg); L in [0, 100]. Like MATLAB ``rgb2lab``."""
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)
    xyz = _apply_matrix(_mat(_SRGB_TO_XYZ / _WHITE_D65[:, None], rgb), lin)
    d3 = _LAB_DELTA**3
    f = torch.where(xyz > d3, xyz.clamp_min(d3) ** (1.0 / 3.0), xyz / (3 * _LAB_DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """CIE L*a*b* (D65) -> sRGB, **not** clipped (like MATLAB ``lab2rgb``)."""
    fy = (lab[:, 0:1] + 16.0) / 116.0
    fx = fy + lab[:, 1:2] / 500.0
    fz = fy - lab[:, 2:3] / 200.0
    f = torch.cat((fx, fy, fz), dim=1)
    xyz = torch.where(f > _LAB_DELTA, f**3, 3 * _LAB_DELTA**2 * (f - 4.0 / 29.0))
    lin = _apply_matrix(_mat(_XYZ_TO_SRGB * _WHITE_D65[None, :], lab), xyz)
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055)


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """Hexcone HSV, all channels in [0, 1] (MATLAB ``rgb2hsv``)."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    v, imax = rgb.max(dim=1)
    mn = rgb.amin(dim=1)
    d = v - mn
    safe_d = torch.where(d > 0, d, torch.ones_like(d))
    h = torch.where(
        imax == 0,
        ((g - b) / safe_d) % 6.0,
        torch.where(imax == 1, (b - r) / safe_d + 2.0, (r - g) / safe_d + 4.0),
    )
    h = torch.where(d > 0, h / 6.0, torch.zeros_like(h))
    s = torch.where(v > 0, d / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack((h, s, v), dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`, linear in S, so S outside [0, 1] gives values outside [0, 1].

    MATLAB's ``hsv2rgb`` additionally divides by the image's global channel maximum, which is 1 for
    S in [0, 1] and a constant > 1 for negative S; the final global ``mapmm`` cancels that constant.
    """
    h6 = hsv[:, 0:1] * 6.0
    s = hsv[:, 1:2]
    v = hsv[:, 2:3]
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device).view(1, 3, 1, 1)
    k = (n + h6) % 6.0
    return v * (1.0 - s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))


_YCC_T = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
_YCC_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """Studio-range BT.601 YCbCr, as MATLAB ``rgb2ycbcr`` on double input (Y in [16, 235]/255)."""
    return _apply_matrix(_mat(_YCC_T, rgb), rgb) + _mat(_YCC_OFFSET, rgb).view(1, 3, 1, 1)


def ycbcr_to_rgb(ycc: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    return _apply_matrix(_mat(np.linalg.inv(_YCC_T), ycc), ycc - _mat(_YCC_OFFSET, ycc).view(1, 3, 1, 1))


def gray(rgb: Tensor) -> Tensor:
    """MATLAB ``rgb2gray`` weights, [B, 1, H, W]."""
    w = torch.tensor([0.2989, 0.5870, 0.1140], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(dim=1, keepdim=True)


def curves(x: Tensor, c: float | tuple[float, float]) -> Tensor:
    """Hosu's ``curves``: MATLAB ``spline`` tone curve, evaluated per element and clipped to [0, 1].

    Scalar ``c``: knots (0,0), (0.5,c), (1,1), i.e. the parabola (2-4c)x^2 + (4c-1)x.
    Pair ``(p, q)``: not-a-knot cubic through (0,0), (0.3,p), (0.5,0.5), (0.7,q), (1,1).
    """
    if isinstance(c, (tuple, list)):
        p, q = c
        return not_a_knot_spline((0.0, 0.3, 0.5, 0.7, 1.0), (0.0, p, 0.5, q, 1.0), x).clamp(0.0, 1.0)
    c = float(c)
    return ((2.0 - 4.0 * c) * x * x + (4.0 * c - 1.0) * x).clamp(0.0, 1.0)


@lru_cache(maxsize=64)
def _spline_coefficients(xk: tuple[float, ...], yk: tuple[float, ...]) -> np.ndarray:
    """Coefficients [n-1, 4] (c0 + c1 t + c2 t^2 + c3 t^3, t = x - xk[i]) of the not-a-knot cubic."""
    n = len(xk)
    if n < 4 or len(yk) != n:
        raise ValueError("not-a-knot spline needs at least 4 knots and as many values")
    xs = np.asarray(xk, dtype=np.float64)
    ys = np.asarray(yk, dtype=np.float64)
    h = np.diff(xs)
    if np.any(h <= 0):
        raise ValueError("knots must be strictly increasing")
    m = n - 1  # pieces; unknowns: 4 per piece
    a = np.zeros((4 * m, 4 * m))
    rhs = np.zeros(4 * m)
    row = 0

    def poly(t: float, deriv: int) -> np.ndarray:
        # derivative `deriv` of [1, t, t^2, t^3] at t
        base = [[1, t, t * t, t**3], [0, 1, 2 * t, 3 * t * t], [0, 0, 2, 6 * t], [0, 0, 0, 6]]
        return np.asarray(base[deriv], dtype=np.float64)

    for i in range(m):  # interpolation at both ends of each piece
        a[row, 4 * i : 4 * i + 4] = poly(0.0, 0)
        rhs[row] = ys[i]
        row += 1
        a[row, 4 * i : 4 * i + 4] = poly(h[i], 0)
        rhs[row] = ys[i + 1]
        row += 1
    for i in range(m - 1):  # C1 and C2 at interior knots
        for deriv in (1, 2):
            a[row, 4 * i : 4 * i + 4] = poly(h[i], deriv)
            a[row, 4 * (i + 1) : 4 * (i + 1) + 4] = -poly(0.0, deriv)
            row += 1
    for i in (0, m - 2):  # not-a-knot: C3 at the second and the second-to-last knot
        a[row, 4 * i : 4 * i + 4] = poly(h[i], 3)
        a[row, 4 * (i + 1) : 4 * (i + 1) + 4] = -poly(0.0, 3)
        row += 1
    coef = np.linalg.solve(a, rhs).reshape(m, 4)
    coef.setflags(write=False)
    return coef


def not_a_knot_spline(xk, yk, x: Tensor) -> Tensor:
    """Evaluate the interpolating not-a-knot cubic spline through (xk, yk) at ``x`` (extrapolates the
    end pieces outside the knots, as MATLAB ``ppval`` does)."""
    xk = tuple(float(v) for v in xk)
    coef = torch.tensor(_spline_coefficients(xk, tuple(float(v) for v in yk)), dtype=x.dtype, device=x.device)
    knots = torch.tensor(xk, dtype=x.dtype, device=x.device)
    x = x.contiguous()
    idx = torch.bucketize(x, knots[1:-1], right=True)
    t = x - knots[idx]
    c = coef[idx]  # [..., 4]
    return c[..., 0] + t * (c[..., 1] + t * (c[..., 2] + t * c[..., 3]))
