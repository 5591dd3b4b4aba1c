"""PSNR, SSIM and MS-SSIM, computed the way the reference MATLAB implementations compute them.

Conventions (each one moves the numbers, so they are fixed here and tested):

* Inputs: float tensors [3, H, W] or [B, 3, H, W], RGB in [0, 1]. The result has shape [] or [B]
  (float64 for float64 input, float32 otherwise). All arithmetic is done in float64.
* ``channels="y"`` (default): luma only, Y = 0.2989 R + 0.5870 G + 0.1140 B, MATLAB's ``rgb2gray``
  (ITU-R BT.601 weights), kept in [0, 1] and not rounded to 8 bits. This is how Wang's MATLAB code is
  usually run and what most published SSIM/MS-SSIM figures use.
  ``channels="rgb"``: the metric on R, G and B separately, then averaged (PSNR: one MSE over all
  three channels). This is what piq, pytorch-msssim and TensorFlow do for colour input, and it is the
  convention behind the PSNR SROCC of 0.583 quoted for the TID2013 dev set. Luma-only metrics are
  blind to a pure saturation change (TID2013 type 18 keeps Y within rounding), which caps their SROCC
  on that dev set at 0.69 however well they rank the other types.
* PSNR: 10 log10(1 / MSE) with peak 1 (= 255 on 8-bit data); +inf for identical images.
* SSIM: Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004, as in the authors' ``ssim.m``: first the
  automatic downsampling by f = max(1, round(min(H, W) / 256)) (an f x f box filter with symmetric
  borders, then every f-th pixel), then an 11x11 Gaussian window with sigma 1.5, 'valid' filtering,
  K1 = 0.01, K2 = 0.03, L = 1, and the mean of the SSIM map.
* MS-SSIM: Wang, Simoncelli, Bovik, Asilomar 2003, as in ``msssim.m``: 5 scales with weights
  (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), the same window and constants, 2x2 average + subsample
  between scales, no automatic downsampling; prod(cs_j ** w_j, j < 5) * ssim_5 ** w_5. A negative mean
  contrast-structure term (which makes the MATLAB code return a complex number) is clamped to 0.
  The smaller side must be at least ``MS_SSIM_MIN_SIZE`` (161) pixels, so that the coarsest scale
  still holds one 11x11 window.

Example:
    >>> import torch
    >>> ref = torch.rand(3, 64, 64)
    >>> float(ssim(ref, ref))
    1.0
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import ImageError, SizeMismatchError

__all__ = [
    "MS_SSIM_MIN_SIZE",
    "MS_SSIM_WEIGHTS",
    "SSIM_MIN_SIZE",
    "luminance",
    "ms_ssim",
    "psnr",
    "ssim",
]

Channels = Literal["y", "rgb"]

RGB2GRAY = (0.2989, 0.5870, 0.1140)  # MATLAB rgb2gray, BT.601 luma
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_MIN_SIZE = WINDOW_SIZE


def _min_size_for_scales(scales: int) -> int:
    """Smallest side that still holds an 11x11 window after scales - 1 halvings (ceil(n / 2) each)."""
    size = WINDOW_SIZE
    for _ in range(scales - 1):
        size = 2 * size - 1
    return size


MS_SSIM_MIN_SIZE = _min_size_for_scales(len(MS_SSIM_WEIGHTS))  # 161


def _gaussian_taps() -> list[float]:
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D kernel with itself.
    half = (WINDOW_SIZE - 1) / 2
    g = [math.exp(-((i - half) ** 2) / (2 * WINDOW_SIGMA**2)) for i in range(WINDOW_SIZE)]
    total = sum(g)
    return [v / total for v in g]


GAUSSIAN_TAPS = _gaussian_taps()


def _check_pair(ref: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate the inputs; returns both as float64 [B, 3, H, W] and whether a batch dim was added."""
    for name, t in (("reference", ref), ("distorted", dist)):
        if not isinstance(t, torch.Tensor):
            raise ImageError(f"{name} image must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ImageError(f"{name} image must be a float tensor in [0, 1], got dtype {t.dtype}")
        if t.dim() not in (3, 4) or t.shape[-3] != 3:
            raise ImageError(f"{name} image must have shape [3, H, W] or [B, 3, H, W], got {list(t.shape)}")
    if ref.shape != dist.shape:
        raise SizeMismatchError(
            f"reference and distorted images differ in shape: {list(ref.shape)} vs {list(dist.shape)}"
        )
    single = ref.dim() == 3
    if single:
        ref, dist = ref.unsqueeze(0), dist.unsqueeze(0)
    return ref.to(torch.float64).contiguous(), dist.to(torch.float64).contiguous(), single


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB -> [B, 1, H, W] luma with MATLAB rgb2gray weights."""
    weights = torch.tensor(RGB2GRAY, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def _planes(rgb: torch.Tensor, channels: Channels) -> torch.Tensor:
    """[B, 3, H, W] -> [B * C, 1, H, W]: the planes each metric runs on (C = 1 for y, 3 for rgb)."""
    if channels == "y":
        return luminance(rgb)
    if channels == "rgb":
        b, c, h, w = rgb.shape
        return rgb.reshape(b * c, 1, h, w)
    raise ValueError(f"channels must be 'y' or 'rgb', got {channels!r}")


def _per_image(values: torch.Tensor, batch: int) -> torch.Tensor:
    """[B * C] per-plane values -> [B], averaging the C planes of each image."""
    return values.reshape(batch, -1).mean(dim=1)


def _symmetric_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """MATLAB 'symmetric' padding (mirror including the edge pixel) of the last two dims."""

    def mirror(n: int, before: int, after: int) -> torch.Tensor:
        idx = torch.remainder(torch.arange(-before, n + after, device=x.device), 2 * n)
        return torch.where(idx < n, idx, 2 * n - 1 - idx)

    h, w = x.shape[-2:]
    x = x.index_select(-2, mirror(h, top, bottom))
    return x.index_select(-1, mirror(w, left, right))


def _box_downsample(x: torch.Tensor, f: int) -> torch.Tensor:
    """imfilter(x, ones(f)/f^2, 'symmetric', 'same') followed by x(1:f:end, 1:f:end)."""
    if f == 1:
        return x
    before = (f - 1) // 2  # MATLAB puts the kernel centre at floor((f + 1) / 2)
    after = f - 1 - before
    padded = _symmetric_pad(x, before, after, before, after)
    return F.avg_pool2d(padded, kernel_size=f, stride=1)[..., ::f, ::f]


def _filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """filter2(window, x, 'valid') with the separable Gaussian window, as shifted weighted sums.

    Eleven multiply-adds per axis are exact in float64 and several times faster on CPU than
    ``conv2d`` with a 1-channel float64 kernel.
    """
    n = len(taps)
    h = x.shape[-2] - n + 1
    rows = x[..., 0:h, :] * taps[0]
    for k in range(1, n):
        rows.add_(x[..., k : k + h, :], alpha=taps[k])
    w = x.shape[-1] - n + 1
    out = rows[..., 0:w] * taps[0]
    for k in range(1, n):
        out.add_(rows[..., k : k + w], alpha=taps[k])
    return out


def _ssim_terms(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per plane, for [N, 1, H, W] planes in [0, 1]."""
    c1 = (K1 * 1.0) ** 2
    c2 = (K2 * 1.0) ** 2
    n = x.shape[0]
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=0)  # [5N, 1, H, W]
    mu_x, mu_y, exx, eyy, exy = _filter_valid(stacked, GAUSSIAN_TAPS).split(n, dim=0)
    sigma_x2 = exx - mu_x * mu_x
    sigma_y2 = eyy - mu_y * mu_y
    sigma_xy = exy - mu_x * mu_y
    cs_map = (2 * sigma_xy + c2) / (sigma_x2 + sigma_y2 + c2)
    luminance_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (luminance_map * cs_map).mean(dim=(1, 2, 3)), cs_map.mean(dim=(1, 2, 3))


def _result(values: torch.Tensor, single: bool, like: torch.Tensor) -> torch.Tensor:
    out = values.to(torch.float64 if like.dtype == torch.float64 else torch.float32)
    return out[0] if single else out


def psnr(ref: torch.Tensor, dist: torch.Tensor, *, channels: Channels = "y") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, peak 1 (higher is better; +inf when identical).

    Example:
        >>> import torch
        >>> ref = torch.zeros(3, 8, 8); dist = torch.full((3, 8, 8), 0.1)
        >>> round(float(psnr(ref, dist, channels="rgb")), 4)
        20.0
    """
    r, d, single = _check_pair(ref, dist)
    diff = _planes(r, channels) - _planes(d, channels)
    mse = (diff * diff).reshape(r.shape[0], -1).mean(dim=1)
    return _result(10.0 * torch.log10(1.0 / mse), single, ref)


def ssim(ref: torch.Tensor, dist: torch.Tensor, *, channels: Channels = "y") -> torch.Tensor:
    """Mean SSIM as the reference ``ssim.m`` computes it (with its automatic downsampling)."""
    r, d, single = _check_pair(ref, dist)
    h, w = r.shape[-2:]
    f = max(1, math.floor(min(h, w) / 256 + 0.5))  # MATLAB round(): halves away from zero
    x = _box_downsample(_planes(r, channels), f)
    y = _box_downsample(_planes(d, channels), f)
    if min(x.shape[-2:]) < SSIM_MIN_SIZE:
        raise ImageError(
            f"SSIM needs images of at least {SSIM_MIN_SIZE}x{SSIM_MIN_SIZE} pixels (one 11x11 window); "
            f"got {w}x{h}"
        )
    mean_ssim, _ = _ssim_terms(x, y)
    return _result(_per_image(mean_ssim, r.shape[0]), single, ref)


def ms_ssim(ref: torch.Tensor, dist: torch.Tensor, *, channels: Channels = "y") -> torch.Tensor:
    """Multi-scale SSIM as the reference ``msssim.m`` computes it (5 scales)."""
    r, d, single = _check_pair(ref, dist)
    h, w = r.shape[-2:]
    if min(h, w) < MS_SSIM_MIN_SIZE:
        raise ImageError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIZE}x{MS_SSIM_MIN_SIZE} pixels "
            f"(5 scales, one 11x11 window at the coarsest); got {w}x{h}"
        )
    x, y = _planes(r, channels), _planes(d, channels)
    factors = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        mean_ssim, mean_cs = _ssim_terms(x, y)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        factors.append((mean_ssim if last else mean_cs).clamp(min=0.0))
        if not last:
            x, y = _box_downsample(x, 2), _box_downsample(y, 2)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=x.dtype, device=x.device)
    per_plane = torch.prod(torch.stack(factors, dim=1) ** weights, dim=1)  # [B * C]
    return _result(_per_image(per_plane, r.shape[0]), single, ref)
