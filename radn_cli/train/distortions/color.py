"""KADID-10k category colour distortions: 04 colour diffusion, 05 colour shift, 06 colour
quantisation, 07 HSV saturation, 08 Lab saturation.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.

06 deviates from MATLAB: a minimum-variance (Wu) palette is computed here on a 32^3 colour grid and
the pixels are mapped with Pillow's Floyd-Steinberg dither; the input is rounded to 8 bit first.
MATLAB's palette and ditherer differ in detail (exact pixels differ; the strength is the same kind).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Generator, Tensor

from .colorspace import gray, hsv_to_rgb, lab_to_rgb, mapmm, rgb_to_hsv, rgb_to_lab
from .filters import gauss_filter, quantile_rows
from .registry import register
from .rng import mround, rand
from .uint8 import from_uint8_images, to_uint8_images


@register(4, "colordiffuse", "Color_Diffusion", parameter="amount", levels=(1, 3, 6, 8, 12))
def _t04_colordiffuse(x: Tensor, amount: float, gen: Generator | None) -> Tensor:
    """Lab chroma blurred with sigma = 1.5*amount + 2 and multiplied by ``amount``."""
    lab = rgb_to_lab(x)
    ab = gauss_filter(lab[:, 1:], 1.5 * amount + 2.0) * amount
    return lab_to_rgb(torch.cat((lab[:, :1], ab), dim=1)).clamp(0.0, 1.0)


def _shift_replicate(p: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Translate each plane [B, H, W] by integer (dy, dx) (content moves down/right for positive
    values), replicating the border."""
    b, h, w = p.shape
    rows = (torch.arange(h, device=p.device).view(1, h) - dy.view(b, 1)).clamp(0, h - 1)
    cols = (torch.arange(w, device=p.device).view(1, w) - dx.view(b, 1)).clamp(0, w - 1)
    bi = torch.arange(b, device=p.device).view(b, 1, 1)
    return p[bi, rows.view(b, h, 1), cols.view(b, 1, w)]


@register(5, "colorshift", "Color_Shift", parameter="shift (px)", levels=(1, 3, 6, 8, 12), random=True)
def _t05_colorshift(x: Tensor, amount: float, gen: Generator | None) -> Tensor:
    """Green channel shifted by an integer vector of length ~amount in the first quadrant, blended in
    with an edge mask (smoothed gradient magnitude, percentile-stretched)."""
    b, _, h, w = x.shape
    g = gray(x)
    gp = F.pad(g, (1, 1, 1, 1), mode="replicate")
    gx = (gp[..., 1:-1, 2:] - gp[..., 1:-1, :-2]) / 2.0
    gy = (gp[..., 2:, 1:-1] - gp[..., :-2, 1:-1]) / 2.0
    e = torch.sqrt(gx * gx + gy * gy)
    e = mapmm(gauss_filter(e, 4.0)).clamp(0.1, 1.0)
    # ps2: mapmm, clip to the [1st, 99th] percentile, mapmm
    e = mapmm(e)
    flat = e.reshape(b, -1)
    lo = quantile_rows(flat, 0.01).view(b, 1, 1, 1)
    hi = quantile_rows(flat, 0.99).view(b, 1, 1, 1)
    e = mapmm(torch.maximum(torch.minimum(e, hi), lo))
    r = rand((b, 2), gen, x.device).double()
    r = r / r.norm(dim=1, keepdim=True).clamp_min(1e-12)
    shift = mround(r * float(amount)).long()
    green = x[:, 1]
    moved = _shift_replicate(green, shift[:, 0], shift[:, 1])
    out = x.clone()
    out[:, 1] = e[:, 0] * moved + (1.0 - e[:, 0]) * green
    return out


def _box_moments(cum: np.ndarray, r0, r1, g0, g1, b0, b1) -> np.ndarray:
    """Sum of the moment planes over the colour box (r0, r1] x (g0, g1] x (b0, b1] by
    inclusion-exclusion on the cumulative table ``cum`` [5, S+1, S+1, S+1] (leading zero planes)."""
    return (
        cum[:, r1, g1, b1]
        - cum[:, r1, g1, b0]
        - cum[:, r1, g0, b1]
        + cum[:, r1, g0, b0]
        - cum[:, r0, g1, b1]
        + cum[:, r0, g1, b0]
        + cum[:, r0, g0, b1]
        - cum[:, r0, g0, b0]
    )


def _cumulative_moments(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Summed-area tables ``[5, c, c, c]`` (c = 2^bits + 1) of the ``[N, 3]`` uint8 ``pixels`` binned
    on a 2^bits grid per channel: count, sums of R, G and B, sum of squares. Bins are 1..2^bits; index
    0 is the zero plane, so that :func:`_box_moments` needs no bounds checks."""
    cells = (1 << bits) + 1
    q = (pixels >> (8 - bits)).astype(np.int64) + 1
    flat = (q[:, 0] * cells + q[:, 1]) * cells + q[:, 2]
    p = pixels.astype(np.float64)
    size = cells**3
    moments = np.stack(
        [
            np.bincount(flat, minlength=size),
            np.bincount(flat, weights=p[:, 0], minlength=size),
            np.bincount(flat, weights=p[:, 1], minlength=size),
            np.bincount(flat, weights=p[:, 2], minlength=size),
            np.bincount(flat, weights=(p * p).sum(axis=1), minlength=size),
        ]
    ).reshape(5, cells, cells, cells)
    return moments.cumsum(1).cumsum(2).cumsum(3)


def _box_error(cum: np.ndarray, box: list[int]) -> float:
    """The within-box sum of squared errors of a box ``[r0, r1, g0, g1, b0, b1]``."""
    m = _box_moments(cum, *box)
    return 0.0 if m[0] <= 0 else float(m[4] - (m[1] ** 2 + m[2] ** 2 + m[3] ** 2) / m[0])


def _best_cut(cum: np.ndarray, box: list[int]) -> tuple[float, int, int] | None:
    """(score, axis, plane) of the cut of ``box`` that minimises the two halves' total squared error;
    None when no cut leaves colours on both sides."""
    whole = _box_moments(cum, *box)
    best = None
    for axis in range(3):
        lo, hi = box[2 * axis], box[2 * axis + 1]
        if hi - lo < 2:
            continue
        cuts = np.arange(lo + 1, hi)
        args = [np.full(cuts.shape, v) for v in box]
        args[2 * axis + 1] = cuts
        low = _box_moments(cum, *args)  # [5, cuts]
        high = whole[:, None] - low
        ok = (low[0] > 0) & (high[0] > 0)
        if not ok.any():
            continue
        # maximising sum |m|^2 / w over both halves minimises their total squared error
        score = np.where(
            ok,
            (low[1] ** 2 + low[2] ** 2 + low[3] ** 2) / np.where(ok, low[0], 1.0)
            + (high[1] ** 2 + high[2] ** 2 + high[3] ** 2) / np.where(ok, high[0], 1.0),
            -np.inf,
        )
        k = int(np.argmax(score))
        if best is None or score[k] > best[0]:
            best = (float(score[k]), axis, int(cuts[k]))
    return best


def _wu_palette(pixels: np.ndarray, n: int, bits: int = 5) -> np.ndarray:
    """Minimum-variance colour palette (Wu's greedy box splitting, as MATLAB ``rgb2ind`` uses).

    ``pixels``: [N, 3] uint8. Colours are binned on a 2^bits grid per channel; the box with the
    largest within-box sum of squared errors is split repeatedly, each time along the axis and at the
    plane that minimises the two halves' total error, until there are ``n`` boxes. Returns [k, 3]
    box means (k <= n; fewer when the image has fewer distinct binned colours).
    """
    side = 1 << bits
    cum = _cumulative_moments(pixels, bits)
    boxes = [[0, side, 0, side, 0, side]]
    errors = [_box_error(cum, boxes[0])]
    while len(boxes) < n:
        order = np.argsort(errors)[::-1]
        split = False
        for i in order:
            if errors[i] <= 0:
                break
            cut = _best_cut(cum, boxes[i])
            if cut is None:
                errors[i] = 0.0  # a single occupied bin: cannot be split
                continue
            _, axis, c = cut
            low, high = list(boxes[i]), list(boxes[i])
            low[2 * axis + 1] = c
            high[2 * axis] = c
            boxes[i] = low
            boxes.append(high)
            errors[i] = _box_error(cum, low)
            errors.append(_box_error(cum, high))
            split = True
            break
        if not split:
            break
    palette = []
    for box in boxes:
        m = _box_moments(cum, *box)
        if m[0] > 0:
            palette.append(m[1:4] / m[0])
    return np.asarray(palette)


@register(6, "colorquant", "Color_Quantization", parameter="colours", levels=(64, 48, 32, 16, 8), codec=True)
def _t06_colorquant(x: Tensor, colours: float, gen: Generator | None) -> Tensor:
    """MATLAB ``rgb2ind(I, n)`` + ``ind2rgb``: an n-colour minimum-variance (Wu) palette, then
    Floyd-Steinberg dithering onto it (Pillow's ditherer; MATLAB's differs in detail). Runs on the
    CPU on the 8-bit image."""
    n = int(colours)
    out = []
    for arr in to_uint8_images(x):
        arr = np.ascontiguousarray(arr)
        palette = np.clip(np.round(_wu_palette(arr.reshape(-1, 3), n)), 0, 255).astype(np.uint8)
        pal_im = Image.new("P", (1, 1))
        pal_im.putpalette(palette.reshape(-1).tolist())
        q = Image.fromarray(arr).quantize(palette=pal_im, dither=Image.Dither.FLOYDSTEINBERG)
        out.append(np.asarray(q.convert("RGB")))
    return from_uint8_images(out, x)


@register(7, "sat_hsv", "Saturation_Dist._HSV", parameter="S multiplier", levels=(0.4, 0.2, 0.1, 0, -0.4))
def _t07_sat_hsv(x: Tensor, factor: float, gen: Generator | None) -> Tensor:
    """HSV saturation times ``factor``, no clipping (negative factors leave the gamut; the final
    global mapmm rescales)."""
    hsv = rgb_to_hsv(x)
    hsv = torch.cat((hsv[:, :1], hsv[:, 1:2] * factor, hsv[:, 2:]), dim=1)
    return hsv_to_rgb(hsv)


@register(8, "sat_lab", "Saturation_Dist._Lab", parameter="a*, b* multiplier", levels=(1, 2, 3, 6, 9))
def _t08_sat_lab(x: Tensor, factor: float, gen: Generator | None) -> Tensor:
    lab = rgb_to_lab(x)
    lab = torch.cat((lab[:, :1], lab[:, 1:] * factor), dim=1)
    return lab_to_rgb(lab).clamp(0.0, 1.0)
