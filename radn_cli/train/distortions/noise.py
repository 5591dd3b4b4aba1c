"""KADID-10k category noise: 11 white noise, 12 white noise in YCbCr, 13 impulse noise,
14 multiplicative noise, 15 denoising.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.

15 is an APPROXIMATION (MathWorks' DnCNN weights are not available): the clipped noisy image is
denoised per channel by an edge-preserving, non-local-means-style filter whose weights come from the
clean reference; see the comment above ``_DENOISE_SIGMA_CAP`` for its design and calibration.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Generator, Tensor

from .colorspace import rgb_to_ycbcr, ycbcr_to_rgb
from .registry import register
from .rng import rand, randn


@register(
    11, "awgn", "AWGN", parameter="noise variance", levels=(0.001, 0.002, 0.003, 0.005, 0.01), random=True
)
def _t11_awgn(x: Tensor, var: float, gen: Generator | None) -> Tensor:
    return (x + math.sqrt(var) * randn(tuple(x.shape), gen, x.device)).clamp(0.0, 1.0)


@register(
    12,
    "awgn_ycbcr",
    "AWGN_YCbCr",
    parameter="noise variance (YCbCr)",
    levels=(0.0001, 0.0005, 0.001, 0.002, 0.003),
    random=True,
)
def _t12_awgn_ycbcr(x: Tensor, var: float, gen: Generator | None) -> Tensor:
    """N(0, var) on the studio-range YCbCr planes, clipped to [0, 1] (imnoise), back to RGB, clipped."""
    ycc = rgb_to_ycbcr(x)
    ycc = (ycc + math.sqrt(var) * randn(tuple(x.shape), gen, x.device)).clamp(0.0, 1.0)
    return ycbcr_to_rgb(ycc).clamp(0.0, 1.0)


@register(
    13, "impulse", "Impulse_Noise", parameter="density", levels=(0.001, 0.005, 0.01, 0.02, 0.03), random=True
)
def _t13_impulse(x: Tensor, density: float, gen: Generator | None) -> Tensor:
    """Salt and pepper per array element (each channel independently), like MATLAB ``imnoise``."""
    u = rand(tuple(x.shape), gen, x.device)
    out = torch.where(u < density / 2.0, torch.zeros_like(x), x)
    return torch.where((u >= density / 2.0) & (u < density), torch.ones_like(x), out)


@register(
    14,
    "multnoise",
    "Multiplicative_Noise",
    parameter="noise variance",
    levels=(0.001, 0.005, 0.01, 0.02, 0.05),
    random=True,
)
def _t14_multnoise(x: Tensor, var: float, gen: Generator | None) -> Tensor:
    """Speckle: J = I + n*I with n uniform, mean 0, variance ``var``; clipped."""
    u = rand(tuple(x.shape), gen, x.device)
    return (x + math.sqrt(12.0 * var) * (u - 0.5) * x).clamp(0.0, 1.0)


# Type 15's stand-in for the blind DnCNN: a cross (joint) bilateral, non-local-means-style filter
# of the noisy image, per RGB plane (as MATLAB's denoiseImage works on each channel), whose weights
# come from the CLEAN reference. The clean guide stands in for what a trained network knows about
# where the edges are: a local filter guided by the noisy image itself cannot reach DnCNN's strength
# (tried: its PSNR at L1 was 24 dB on photos where a blind DnCNN gives about 29-31 dB at sigma 25,
# and its texture loss was far beyond the KADID scores). The filter averages over a 7x7 window, then
# again with the taps 2 px apart ("a trous"), so the noise it leaves is low-frequency blotches. Its
# range parameter is 0.6 sigma, capped at 0.6 * 55/255 (the top of a blind DnCNN's training range):
# texture below about the noise level is smoothed away, and beyond the cap the smoothing stops
# growing while the noise does, so L4-L5 keep growing colour blotches. The noise is clipped before
# filtering, so dark and bright areas lose contrast as they do behind a real denoiser.
# Calibration (six photos at 384x288, mean PSNR, L1..L5): this filter 31.9 27.9 26.3 24.3 22.9;
# Gaussian blur (type 01) inf 36.8 28.6 24.7 20.7. KADID's human scores put denoise L1 (3.67)
# between blur L2 and L3, L2 (2.73) near blur L3, L4 (1.66) just past blur L4.
_DENOISE_SIGMA_CAP = 55.0 / 255.0
_DENOISE_RADIUS = 3
_DENOISE_DILATIONS = (1, 2)
_DENOISE_SPATIAL_SIGMA = 3.0
_DENOISE_RANGE_SCALE = 0.6


def _nlm_guided(
    y: Tensor, guide: Tensor, h: float, radius: int, spatial_sigma: float, dilation: int = 1
) -> Tensor:
    """Weighted mean of ``y`` over the taps (dy, dx) * ``dilation``, |dy|, |dx| <= ``radius``, with
    weights exp(-(dg / h)^2 - (dy^2 + dx^2) / (2 spatial_sigma^2)), dg the difference of ``guide``
    between the two pixels. Replicate borders. (Evaluated as exp2 of the same exponent in base 2,
    which is several times faster than exp on the CPU.)"""
    _, _, hh, ww = y.shape
    reach = radius * dilation
    pad = (reach, reach, reach, reach)
    yp = F.pad(y, pad, mode="replicate")
    log2e = 1.0 / math.log(2.0)
    g = guide * (math.sqrt(log2e) / h)
    gp = F.pad(g, pad, mode="replicate")
    num = y.clone()  # the centre tap has weight 1
    den = torch.ones_like(y)
    diff = torch.empty_like(y)
    w = torch.empty_like(y)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            spatial = (dy * dy + dx * dx) / (2.0 * spatial_sigma**2) * log2e
            ys = slice(reach + dy * dilation, reach + dy * dilation + hh)
            xs = slice(reach + dx * dilation, reach + dx * dilation + ww)
            torch.sub(gp[..., ys, xs], g, out=diff)
            torch.mul(diff, diff, out=w)
            w.add_(spatial).neg_()
            torch.exp2(w, out=w)
            den.add_(w)
            num.addcmul_(w, yp[..., ys, xs])
    return num.div_(den)


@register(
    15,
    "denoise",
    "Denoising",
    parameter="pre-noise variance",
    levels=(0.01, 0.03, 0.05, 0.1, 0.15),
    random=True,
)
def _t15_denoise(x: Tensor, var: float, gen: Generator | None) -> Tensor:
    """APPROXIMATION of MATLAB's ``imnoise(I, 'gaussian', 0, var)`` + per-channel DnCNN: clipped
    Gaussian noise, then a strong edge-preserving per-channel filter guided by the clean image
    (see the comment above ``_DENOISE_SIGMA_CAP``): over-smoothed texture, crisp strong edges, and
    growing residual colour blotches at the top levels. Matches the strength, not KADID's pixels."""
    sigma = math.sqrt(var)
    noisy = (x + sigma * randn(tuple(x.shape), gen, x.device)).clamp(0.0, 1.0)
    h = _DENOISE_RANGE_SCALE * min(sigma, _DENOISE_SIGMA_CAP)
    y = noisy
    for dilation in _DENOISE_DILATIONS:
        y = _nlm_guided(y, x, h, _DENOISE_RADIUS, _DENOISE_SPATIAL_SIGMA, dilation)
    return y
