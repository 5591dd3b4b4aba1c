"""Scatter plot of predicted scores against human ratings, drawn with Pillow only.

One PNG: the points (coloured by distortion type when types are given, with a legend), the fitted
4-parameter logistic when its parameters are given, axes with "nice" ticks, and SROCC / PLCC under the
title. Everything is drawn at twice the size and downsampled, which anti-aliases points and lines.

Example:
    >>> scatter_plot([30.1, 25.2, 40.3], [4.1, 3.0, 5.5], Path("psnr.png"), title="PSNR on TID2013",
    ...              xlabel="PSNR (dB)", ylabel="MOS")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .stats import finite_pairs, logistic4, plcc, srocc

__all__ = ["scatter_plot"]

SUPERSAMPLE = 2
WIDTH, HEIGHT = 960, 680  # final size in pixels
# Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau 10 for more than eight types).
PALETTE = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (0, 0, 0),
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
)
SINGLE_COLOUR = (0, 114, 178)
CURVE_COLOUR = (200, 30, 45)
AXIS_COLOUR = (60, 60, 60)
GRID_COLOUR = (228, 228, 228)
TEXT_COLOUR = (30, 30, 30)
MUTED_COLOUR = (100, 100, 100)

_FONT_FILES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "Arial.ttf")
_BOLD_FONT_FILES = (
    "DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "Arial Bold.ttf",
)


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in _BOLD_FONT_FILES if bold else _FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if factor * power >= raw:
            return factor * power
    return 10.0 * power


def _axis(lo: float, hi: float, target: int = 6) -> tuple[float, float, list[float], int]:
    """Axis limits covering [lo, hi] on tick boundaries, the ticks, and the decimals to print."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo <= 0.0:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    margin = (hi - lo) * 0.03
    step = _nice_step(hi - lo + 2 * margin, target)
    start = math.floor((lo - margin) / step) * step
    stop = math.ceil((hi + margin) / step) * step
    count = int(round((stop - start) / step))
    ticks = [start + i * step for i in range(count + 1)]
    exponent = math.floor(math.log10(step) + 1e-9)
    needs_extra_digit = not math.isclose(step / 10.0**exponent, round(step / 10.0**exponent))  # 2.5
    decimals = max(0, -exponent + (1 if needs_extra_digit else 0))
    return start, stop, ticks, decimals


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _format(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def _stat(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def scatter_plot(
    pred: Sequence[float] | np.ndarray,
    mos: Sequence[float] | np.ndarray,
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    fit_params: Sequence[float] | np.ndarray | None = None,
    types: Sequence[str] | None = None,
) -> None:
    """Write a PNG scatter plot of ``pred`` (x) against ``mos`` (y) to ``path``.

    Points where either value is NaN or infinite are left out (and counted under the title).
    ``fit_params`` are [b1, b2, b3, b4] of ``stats.logistic4``; ``types`` colours points by type.
    """
    s = SUPERSAMPLE
    x_all, y_all, keep = finite_pairs(pred, mos)
    x, y = x_all[keep], y_all[keep]
    labels = None
    if types is not None:
        if len(types) != x_all.size:
            raise ValueError(f"types has {len(types)} entries for {x_all.size} scores")
        labels = [str(t) for t, k in zip(types, keep, strict=True) if k]

    image = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(image)
    font = _font(13 * s)
    small = _font(12 * s)
    title_font = _font(17 * s, bold=True)

    kinds = sorted(set(labels)) if labels else []
    colours = {kind: PALETTE[i % len(PALETTE)] for i, kind in enumerate(kinds)}
    legend_width = 0
    if kinds:
        legend_width = max(_text_size(draw, k, small)[0] for k in [*kinds, "type"]) + 34 * s

    left, right = 84 * s, WIDTH * s - 24 * s - (legend_width + 16 * s if kinds else 0)
    top, bottom = 78 * s, HEIGHT * s - 64 * s
    x0, x1, xticks, xdec = _axis(float(x.min()) if x.size else 0.0, float(x.max()) if x.size else 1.0)
    y0, y1, yticks, ydec = _axis(float(y.min()) if y.size else 0.0, float(y.max()) if y.size else 1.0)

    def px(v: np.ndarray | float) -> np.ndarray | float:
        return left + (np.asarray(v) - x0) / (x1 - x0) * (right - left)

    def py(v: np.ndarray | float) -> np.ndarray | float:
        return bottom - (np.asarray(v) - y0) / (y1 - y0) * (bottom - top)

    # Grid, ticks and tick labels.
    for tick in xticks:
        gx = float(px(tick))
        draw.line([(gx, top), (gx, bottom)], fill=GRID_COLOUR, width=s)
        draw.line([(gx, bottom), (gx, bottom + 5 * s)], fill=AXIS_COLOUR, width=s)
        text = _format(tick, xdec)
        tw, _ = _text_size(draw, text, font)
        draw.text((gx - tw / 2, bottom + 8 * s), text, font=font, fill=TEXT_COLOUR)
    for tick in yticks:
        gy = float(py(tick))
        draw.line([(left, gy), (right, gy)], fill=GRID_COLOUR, width=s)
        draw.line([(left - 5 * s, gy), (left, gy)], fill=AXIS_COLOUR, width=s)
        text = _format(tick, ydec)
        tw, th = _text_size(draw, text, font)
        draw.text((left - 9 * s - tw, gy - th / 2 - 2 * s), text, font=font, fill=TEXT_COLOUR)

    # Points and curve on a layer of the plot area, so nothing spills over the axes.
    layer = Image.new("RGBA", (right - left, bottom - top), (255, 255, 255, 0))
    layer_draw = ImageDraw.Draw(layer)
    radius = 3.2 * s
    order = np.arange(x.size)
    if labels:  # draw the larger groups first so that small ones stay visible
        sizes = {k: labels.count(k) for k in kinds}
        order = np.array(sorted(order, key=lambda i: -sizes[labels[i]]), dtype=int)
    xs, ys = px(x) - left, py(y) - top
    for i in order:
        colour = colours[labels[i]] if labels else SINGLE_COLOUR
        cx, cy = float(xs[i]), float(ys[i])
        layer_draw.ellipse(
            [cx - radius, cy - radius, cx + radius, cy + radius],
            fill=(*colour, 150),
            outline=(*colour, 255),
            width=max(1, s // 2),
        )
    if fit_params is not None and x.size:
        grid = np.linspace(x0, x1, 400)
        curve = logistic4(grid, fit_params)
        points = [
            (float(px(gx)) - left, float(py(gy)) - top)
            for gx, gy in zip(grid, curve, strict=True)
            if np.isfinite(gy)
        ]
        if len(points) > 1:
            layer_draw.line(points, fill=(*CURVE_COLOUR, 255), width=3 * s, joint="curve")
    image.paste(layer, (left, top), layer)
    draw.rectangle([left, top, right, bottom], outline=AXIS_COLOUR, width=s)

    # Axis labels.
    tw, th = _text_size(draw, xlabel, font)
    draw.text(((left + right) / 2 - tw / 2, bottom + 34 * s), xlabel, font=font, fill=TEXT_COLOUR)
    label_width = _text_size(draw, ylabel, font)[0] + 8 * s
    label_image = Image.new("RGBA", (label_width, 30 * s), (255, 255, 255, 0))
    ImageDraw.Draw(label_image).text((4 * s, 4 * s), ylabel, font=font, fill=TEXT_COLOUR)
    rotated = label_image.rotate(90, expand=True)
    image.paste(rotated, (16 * s, int((top + bottom) / 2 - label_width / 2)), rotated)

    # Title and statistics.
    draw.text((left, 16 * s), title, font=title_font, fill=TEXT_COLOUR)
    stats_line = f"SROCC {_stat(srocc(x, y))}    PLCC {_stat(plcc(x, y))}"
    if fit_params is not None and x.size:
        stats_line += f"    PLCC after logistic fit {_stat(plcc(logistic4(x, fit_params), y))}"
    stats_line += f"    n = {x.size}"
    if x.size != x_all.size:
        stats_line += f" ({x_all.size - x.size} not shown: NaN or infinite)"
    draw.text((left, 44 * s), stats_line, font=font, fill=MUTED_COLOUR)

    # Legend.
    if kinds:
        lx = right + 16 * s
        ly = top
        draw.text((lx, ly), "type", font=small, fill=MUTED_COLOUR)
        ly += 22 * s
        for kind in kinds:
            colour = colours[kind]
            draw.ellipse([lx + 2 * s, ly + 3 * s, lx + 12 * s, ly + 13 * s], fill=colour)
            draw.text((lx + 20 * s, ly), kind, font=small, fill=TEXT_COLOUR)
            ly += 20 * s
        if fit_params is not None:
            ly += 6 * s
            draw.line([(lx, ly + 8 * s), (lx + 14 * s, ly + 8 * s)], fill=CURVE_COLOUR, width=3 * s)
            draw.text((lx + 20 * s, ly), "logistic fit", font=small, fill=TEXT_COLOUR)

    final = image.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    final.save(path, format="PNG", optimize=True)
