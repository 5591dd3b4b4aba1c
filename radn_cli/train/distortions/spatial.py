"""KADID-10k category spatial distortions: 19 jitter, 20 non-eccentricity patch, 21 pixelate,
22 quantisation, 23 colour block.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.

How 19 (Keys bicubic, unclipped as ``imwarpmap.m``), 21 (``imresize`` nearest) and 22 (exact Otsu)
relate to MATLAB is listed with the other types in the package docstring (``distortions/__init__``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Generator, Tensor

from .registry import register
from .rng import mround, rand, randn


def _keys_weights(f: Tensor, a: float = -0.5) -> list[Tensor]:
    """Keys cubic-convolution weights for taps at offsets -1, 0, 1, 2 from floor, fraction ``f``."""

    def near(t: Tensor) -> Tensor:  # |t| <= 1
        return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0

    def far(t: Tensor) -> Tensor:  # 1 < |t| < 2
        return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a

    return [far(1.0 + f), near(f), near(1.0 - f), far(2.0 - f)]


def _warp_bicubic(x: Tensor, dy: Tensor, dx: Tensor, a: float = -0.5) -> Tensor:
    """Sample each image at (row + dy, col + dx) with Keys bicubic interpolation (coefficient ``a``),
    clamping out-of-range taps to the border. ``dy``, ``dx``: [B, H, W]."""
    b, c, h, w = x.shape
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) + dy
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) + dx
    r0 = torch.floor(rows)
    c0 = torch.floor(cols)
    wr = _keys_weights(rows - r0, a)
    wc = _keys_weights(cols - c0, a)
    r0 = r0.long()
    c0 = c0.long()
    flat = x.reshape(b, c, h * w)
    out = torch.zeros_like(flat)
    col_idx = [(c0 + k - 1).clamp_(0, w - 1) for k in range(4)]
    for i in range(4):
        row_base = (r0 + i - 1).clamp_(0, h - 1) * w
        acc = None
        for j in range(4):
            idx = (row_base + col_idx[j]).view(b, 1, h * w).expand(b, c, h * w)
            term = torch.gather(flat, 2, idx) * wc[j].view(b, 1, h * w)
            acc = term if acc is None else acc.add_(term)
        out.addcmul_(acc, wr[i].view(b, 1, h * w))
    return out.view(b, c, h, w)


@register(
    19, "jitter", "Jitter", parameter="displacement sigma (px)", levels=(0.05, 0.1, 0.2, 0.5, 1), random=True
)
def _t19_jitter(x: Tensor, sigma: float, gen: Generator | None) -> Tensor:
    """Five rounds of warping by an i.i.d. N(0, sigma^2) displacement field (Keys bicubic)."""
    b, _, h, w = x.shape
    y = x
    for _ in range(5):
        d = randn((b, 2, h, w), gen, x.device) * sigma
        y = _warp_bicubic(y, d[:, 0], d[:, 1])
    return y  # unclipped, as imwarpmap.m: the final mapmm maps the overshoot back into [0, 1]


@register(
    20,
    "noneccentricity",
    "Non-eccentricity_patch",
    parameter="patches",
    levels=(20, 40, 60, 80, 100),
    random=True,
)
def _t20_noneccentricity(x: Tensor, patches: float, gen: Generator | None) -> Tensor:
    """Copy a 16x16 patch to a nearby position (offset within +-8 px), ``patches`` times, on the
    running output. Draws per patch: U for column, U for row, U for column offset, U for row offset."""
    b, c, h, w = x.shape
    p = int(patches)
    size, margin = 16, 16
    u = rand((b, p, 4), gen, x.device).double()
    col_range, row_range = max(w - size - 2 * margin, 0), max(h - size - 2 * margin, 0)
    # 1-based as in MATLAB, then clamped so that tiny images still work
    w0 = mround(u[..., 0] * col_range) + margin
    h0 = mround(u[..., 1] * row_range) + margin
    wd = mround((u[..., 2] - 0.5) * margin + w0)
    hd = mround((u[..., 3] - 0.5) * margin + h0)

    def start(v: Tensor, n: int) -> Tensor:
        return (v.long() - 1).clamp(0, max(n - size, 0))

    w0, h0, wd, hd = start(w0, w), start(h0, h), start(wd, w), start(hd, h)
    ph, pw = min(size, h), min(size, w)
    ar_h = torch.arange(ph, device=x.device)
    ar_w = torch.arange(pw, device=x.device)
    bi = torch.arange(b, device=x.device).view(b, 1, 1)
    out = x.clone()
    for i in range(p):
        rs = (h0[:, i : i + 1] + ar_h).view(b, ph, 1)
        cs = (w0[:, i : i + 1] + ar_w).view(b, 1, pw)
        rd = (hd[:, i : i + 1] + ar_h).view(b, ph, 1)
        cd = (wd[:, i : i + 1] + ar_w).view(b, 1, pw)
        patch = out.permute(0, 2, 3, 1)[bi, rs, cs]  # [B, ph, pw, C], a copy
        out.permute(0, 2, 3, 1)[bi, rd, cd] = patch
    return out


def pixelate_size(height: int, width: int, strength: float) -> tuple[int, int]:
    """Size of the low-resolution image: ceil(z * [H, W]) with z = 0.95 - strength^0.6."""
    z = 0.95 - strength**0.6
    # the small epsilon guards against z*n landing a hair above an integer in floating point
    return math.ceil(z * height - 1e-9), math.ceil(z * width - 1e-9)


def _nearest_index(n_out: int, n_in: int, scale: float, device: torch.device) -> Tensor:
    """MATLAB imresize 'nearest' source indices (0-based) for output length ``n_out`` at ``scale``."""
    dst = torch.arange(n_out, dtype=torch.float64, device=device)
    return torch.floor((dst + 0.5) / scale).long().clamp_(0, n_in - 1)


@register(21, "pixelate", "Pixelate", parameter="strength", levels=(0.01, 0.05, 0.1, 0.2, 0.5))
def _t21_pixelate(x: Tensor, strength: float, gen: Generator | None) -> Tensor:
    """imresize(I, z, 'nearest') then imresize back to H x W with 'nearest' (centre-aligned)."""
    _, _, h, w = x.shape
    z = 0.95 - strength**0.6
    lh, lw = pixelate_size(h, w, strength)
    # down: MATLAB keeps the requested scale z for the mapping; up: scale from the sizes
    rows = _nearest_index(lh, h, z, x.device)
    cols = _nearest_index(lw, w, z, x.device)
    rows = rows[_nearest_index(h, lh, h / lh, x.device)]
    cols = cols[_nearest_index(w, lw, w / lw, x.device)]
    return x.index_select(2, rows).index_select(3, cols)


def multithresh(x: Tensor, n: int, bins: int = 256) -> Tensor:
    """Multi-level Otsu thresholds of each image (all channels pooled), by exact dynamic programming
    on a ``bins``-bin histogram over the image's value range.

    Returns [B, n] thresholds in the data's units, ascending. Class k holds the bins up to and
    including threshold k (bin centres lo + i*(hi - lo)/(bins - 1), as MATLAB's ``imhist``).
    """
    b = x.shape[0]
    flat = x.reshape(b, -1).double()
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    idx = torch.round((flat - lo) / span * (bins - 1)).long().clamp_(0, bins - 1)
    hist = torch.zeros(b, bins, dtype=torch.float64, device=x.device)
    hist.scatter_add_(1, idx, torch.ones_like(flat))
    centres = torch.arange(bins, dtype=torch.float64, device=x.device)
    # cumulative sums with a leading 0, so that bins i..j have  S[j+1] - S[i]
    s0 = F.pad(hist.cumsum(1), (1, 0))
    s1 = F.pad((hist * centres).cumsum(1), (1, 0))
    i = torch.arange(bins, device=x.device).view(bins, 1)
    j = torch.arange(bins, device=x.device).view(1, bins)
    w_ij = s0[:, 1:].unsqueeze(1) - s0[:, :-1].unsqueeze(2)  # [B, i, j]
    m_ij = s1[:, 1:].unsqueeze(1) - s1[:, :-1].unsqueeze(2)
    valid = (i <= j).unsqueeze(0)
    cost = torch.where(
        w_ij > 0, m_ij * m_ij / torch.where(w_ij > 0, w_ij, torch.ones_like(w_ij)), torch.zeros_like(w_ij)
    )
    neg = torch.tensor(-math.inf, dtype=torch.float64, device=x.device)
    cost = torch.where(valid, cost, neg)
    # best[j]: best score for bins 0..j split into k classes; argument: start bin of the last class
    best = cost[:, 0, :]  # one class: bins 0..j
    back = []
    for _ in range(n):
        # prev[i-1] + cost[i, j] for i >= 1
        cand = best[:, :-1].unsqueeze(2) + cost[:, 1:, :]  # [B, i-1, j]
        best, arg = cand.max(dim=1)
        back.append(arg + 1)  # start bin of the last class, per j
    # back-track from the last bin
    ends = torch.full((b,), bins - 1, dtype=torch.long, device=x.device)
    thr = []
    for arg in reversed(back):
        start_bin = arg.gather(1, ends.view(b, 1)).view(b)
        ends = start_bin - 1
        thr.append(ends)
    thr_bins = torch.stack(thr[::-1], dim=1).double()
    return (lo + thr_bins / (bins - 1) * span).to(x.dtype)


@register(22, "quantize", "Quantization", parameter="thresholds", levels=(20, 16, 13, 10, 7))
def _t22_quantize(x: Tensor, levels: float, gen: Generator | None) -> Tensor:
    """``imquantize(I, T, [0, T2..TN, 1])`` with T the pooled multi-level Otsu thresholds."""
    b = x.shape[0]
    t = multithresh(x, int(levels))  # [B, N]
    values = torch.cat((torch.zeros_like(t[:, :1]), t[:, 1:], torch.ones_like(t[:, :1])), dim=1)
    flat = x.reshape(b, -1).contiguous()
    cls = torch.searchsorted(t.contiguous(), flat, right=False)  # x <= T_k -> class k
    return values.gather(1, cls).view_as(x)


@register(23, "colorblock", "Color_Block", parameter="blocks", levels=(2, 4, 6, 8, 10), random=True)
def _t23_colorblock(x: Tensor, blocks: float, gen: Generator | None) -> Tensor:
    """``blocks`` solid 32x32 rectangles of uniform random colour at uniform random positions.
    Draws per block: colour (3 values), then x, then y."""
    b, c, h, w = x.shape
    p = int(blocks)
    size = 32
    u = rand((b, p, 5), gen, x.device).double()
    colour = u[..., :3].to(x.dtype)
    # insertShape: 1-based, rounded top-left corner; 0-based first row/col = round(v) - 1
    c0 = mround(u[..., 3] * max(w - size, 0)).long() - 1
    r0 = mround(u[..., 4] * max(h - size, 0)).long() - 1
    ar_r = torch.arange(h, device=x.device).view(1, h, 1)
    ar_c = torch.arange(w, device=x.device).view(1, 1, w)
    out = x.clone()
    for i in range(p):
        rr = r0[:, i].view(b, 1, 1)
        cc = c0[:, i].view(b, 1, 1)
        mask = (ar_r >= rr) & (ar_r < rr + size) & (ar_c >= cc) & (ar_c < cc + size)
        out = torch.where(mask.unsqueeze(1), colour[:, i].view(b, c, 1, 1), out)
    return out
