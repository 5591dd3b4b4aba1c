"""Overlay image: a patch map drawn over the image at input resolution, with a legend panel below."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..constants import PATCH
from .choices import canonical_map
from .colormap import COLORMAP, CONSTANT_INDEX, color_index
from .maps import MAP_LABELS, as_map, direction_words, finite_range, format_ticks, range_words

_BACKGROUND = (255, 255, 255)
_TEXT = (24, 24, 24)
_MUTED = (96, 96, 96)
_OUTLINE = (64, 64, 64)
_MIN_CANVAS_WIDTH = 320


def _as_rgb_array(image: Any) -> np.ndarray:
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image must be an HxWx3 array, got shape {arr.shape}")
    return arr[:, :, :3]


def _font_size(width: int, height: int) -> int:
    """Legend font size in px: grows with the image so the legend stays readable when it is fitted
    to a screen, but never below 13 px."""
    return max(13, round(0.018 * max(width, height)))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_height(font: Any) -> int:
    left, top, right, bottom = font.getbbox("Ag(0.9)")
    return int(math.ceil(bottom))


def _layout(width: int, height: int, title: str | None) -> dict[str, int]:
    """Geometry of the legend panel below the image (all in px)."""
    fs = _font_size(width, height)
    title_fs = round(fs * 1.2)
    pad = max(6, round(fs * 0.8))
    gap = max(3, round(fs * 0.4))
    bar_h = max(10, round(fs * 1.1))
    tick = max(3, round(fs * 0.35))
    line_h = _text_height(_font(fs))
    title_h = _text_height(_font(title_fs)) if title else 0
    y = pad
    geo = {"fs": fs, "title_fs": title_fs, "pad": pad, "gap": gap, "tick": tick, "line_h": line_h}
    geo["title_y"] = y
    if title:
        y += title_h + gap
    geo["label_y"] = y
    y += line_h + gap
    geo["bar_y"] = y
    geo["bar_h"] = bar_h
    y += bar_h + tick + max(1, gap // 2)
    geo["ticks_y"] = y
    y += line_h + max(1, gap // 2)
    geo["words_y"] = y  # what the low and the high end of the scale mean
    y += line_h + pad
    geo["height"] = y
    return geo


def legend_height(width: int, height: int, title: str | None = None) -> int:
    """Height in px of the legend panel :func:`render_overlay` adds below a ``width x height`` image."""
    return _layout(width, height, title)["height"]


def _hatch(band: np.ndarray, y0: int, x0: int, spacing: int, thick: int) -> None:
    """Dim ``band`` (a view, in place) and draw diagonal hatch lines anchored to image coordinates."""
    np.right_shift(band, 1, out=band)  # halve the brightness ...
    band += 48  # ... and lift it towards grey so a bright photo and a dark one both read as "off"
    h, w = band.shape[:2]
    ys = (np.arange(h) + y0)[:, None]
    xs = (np.arange(w) + x0)[None, :]
    band[(xs + ys) % spacing < thick] = 200


def _blend_band(img: np.ndarray, colors: np.ndarray, patch: int, alpha256: int) -> np.ndarray:
    """Blend one band of patch rows (``img``: [k*patch, cols*patch, 3]) with its patch colours."""
    col_px = np.repeat(np.repeat(colors, patch, axis=0), patch, axis=1)  # [k*p, cols*p, 3] uint8
    out = img.astype(np.uint16)
    out *= 256 - alpha256
    out += col_px.astype(np.uint16) * alpha256
    out += 128
    out >>= 8
    return out.astype(np.uint8)


def render_overlay(
    image: Any,
    values: Any,
    *,
    kind: str,
    patch: int = PATCH,
    alpha: float = 0.55,
    title: str | None = None,
    higher_is_better: bool = True,
    value_range: tuple[float, float] | None = None,
) -> Image.Image:
    """The distorted ``image`` with the ``[rows, cols]`` patch map ``values`` drawn over it.

    ``image`` is a PIL image or a uint8 ``HxWx3`` array at input resolution. Each patch is tinted with
    its colour from :data:`COLORMAP` (low = dark purple, high = yellow) at opacity ``alpha``; the
    remainder strip that no patch covers, and patches whose value is not finite, are dimmed and hatched
    instead. Thin dark lines separate patches of 16 px or more. Below the image a legend panel (of
    :func:`legend_height` px) holds the optional ``title``, the map name, a colour bar with
    min/mid/max ticks (a constant map shows its single value), and under the bar's ends what low and
    high values mean in words (:func:`~.maps.direction_labels`): for ``"scores"`` and
    ``"product"`` which way is better quality, given by ``higher_is_better`` (the weights'
    ``score_direction``; the default suits the shipped weights), for ``"weights"`` that a higher
    weight counts more, i.e. shows where the model looks. Colours span ``value_range`` (``(lo, hi)``,
    e.g. the weights' score scale: values beyond it get the colour of its end, and the legend counts
    them) or, with None, the map's own min..max; the legend's label says which. The result is an RGB
    image of width ``max(W, 320)`` and height ``H + legend_height(W, H, title)``; the image sits at
    the top left.
    Memory use stays at a few uint8 copies of the image, so 8K inputs are fine.
    """
    kind = canonical_map(kind)
    patch = int(patch)
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    vals = as_map(values)
    img = _as_rgb_array(image)
    height, width = img.shape[:2]
    rows, cols = vals.shape
    if rows * patch > height or cols * patch > width:
        raise ValueError(
            f"a {rows}x{cols} grid of {patch} px patches does not fit in a {width}x{height} image"
        )

    if value_range is not None and not float(value_range[0]) < float(value_range[1]):
        raise ValueError(f"value_range must be (lo, hi) with lo < hi, got {value_range}")
    vrange = finite_range(vals) if value_range is None else (float(value_range[0]), float(value_range[1]))
    idx, valid = color_index(vals, vrange)
    colors = COLORMAP[idx]  # [rows, cols, 3] uint8
    alpha256 = int(round(float(alpha) * 256))
    geo = _layout(width, height, title)
    canvas_w = max(width, _MIN_CANVAS_WIDTH)
    canvas = Image.new("RGB", (canvas_w, height + geo["height"]), _BACKGROUND)

    fs = geo["fs"]
    hatch_spacing = max(6, round(fs * 0.6))
    hatch_thick = max(1, round(fs / 14))
    grid_lines = patch >= 16
    covered_w = cols * patch
    # Bands of whole patch rows, about 1 Mpx each, so no full-size intermediate is ever made.
    band_rows = max(1, (1 << 20) // max(1, patch * patch * cols))
    for r0 in range(0, rows, band_rows):
        r1 = min(rows, r0 + band_rows)
        y0, y1 = r0 * patch, r1 * patch
        band = np.empty((y1 - y0, width, 3), dtype=np.uint8)
        band[:, :covered_w] = _blend_band(img[y0:y1, :covered_w], colors[r0:r1], patch, alpha256)
        # Patches without a finite value: same treatment as the uncovered remainder.
        for rr, cc in zip(*np.nonzero(~valid[r0:r1]), strict=True):
            ys, xs = rr * patch, cc * patch
            cell = band[ys : ys + patch, xs : xs + patch]
            cell[...] = img[y0 + ys : y0 + ys + patch, xs : xs + patch]
            _hatch(cell, y0 + ys, xs, hatch_spacing, hatch_thick)
        if grid_lines:
            # Darken the first pixel row/column of every patch but the first, i.e. between patches.
            for rr in range(r0, r1):
                if rr > 0:
                    line = band[(rr - r0) * patch, :covered_w]
                    line[...] = (line.astype(np.uint16) * 180 >> 8).astype(np.uint8)
            if cols > 1:
                line = band[:, patch:covered_w:patch]
                line[...] = (line.astype(np.uint16) * 180 >> 8).astype(np.uint8)
        if covered_w < width:
            band[:, covered_w:] = img[y0:y1, covered_w:]
            _hatch(band[:, covered_w:], y0, covered_w, hatch_spacing, hatch_thick)
        canvas.paste(Image.fromarray(band), (0, y0))
    covered_h = rows * patch
    for y0 in range(covered_h, height, 256):
        y1 = min(height, y0 + 256)
        band = np.array(img[y0:y1], dtype=np.uint8, copy=True)
        _hatch(band, y0, 0, hatch_spacing, hatch_thick)
        canvas.paste(Image.fromarray(band), (0, y0))

    has_unscored = covered_w < width or covered_h < height or not bool(valid.all())
    _draw_legend(
        canvas,
        height,
        geo,
        vals,
        vrange,
        kind,
        title,
        has_unscored,
        hatch_spacing,
        hatch_thick,
        higher_is_better,
        value_range is not None,
    )
    return canvas


def _fit_text(font: Any, text: str, max_w: float) -> str:
    if font.getlength(text) <= max_w:
        return text
    while text and font.getlength(text + "...") > max_w:
        text = text[:-1]
    return text + "..."


def _fit_pair(
    font: Any, lows: tuple[str, ...], highs: tuple[str, ...], max_w: float, space: float
) -> tuple[str, str]:
    """The longest high-end words, then the longest low-end words, that fit side by side in ``max_w``
    px at least ``space`` px apart: the low end is shortened, then left out, before the high end is."""
    for high in highs:
        for low in (*lows, ""):
            if font.getlength(low) + (space if low else 0) + font.getlength(high) <= max_w:
                return low, high
    return "", _fit_text(font, highs[-1], max_w)


def _draw_legend(
    canvas: Image.Image,
    top: int,
    geo: dict[str, int],
    vals: np.ndarray,
    vrange: tuple[float, float] | None,
    kind: str,
    title: str | None,
    has_unscored: bool,
    hatch_spacing: int,
    hatch_thick: int,
    higher_is_better: bool,
    fixed: bool,
) -> None:
    draw = ImageDraw.Draw(canvas)
    width = canvas.width
    pad, gap, fs = geo["pad"], geo["gap"], geo["fs"]
    font = _font(fs)
    inner_w = width - 2 * pad

    if title:
        tfont = _font(geo["title_fs"])
        draw.text((pad, top + geo["title_y"]), _fit_text(tfont, title, inner_w), font=tfont, fill=_TEXT)

    # Map name and its colour range on the left; on the right a hatched swatch explaining the
    # unscored area.
    label = f"{MAP_LABELS[kind]} ({range_words(vals, vrange, fixed)}"
    if kind == "product" and np.isfinite(vals).any():
        total = float(np.sum(vals[np.isfinite(vals)]))
        label += f"; sum = image score = {format_ticks([total])[0]}"
    label += ")"
    label_y = top + geo["label_y"]
    right_edge = width - pad
    if has_unscored:
        note = "not scored"
        note_w = font.getlength(note)
        sw = geo["line_h"]
        sx = int(right_edge - note_w - gap - sw)
        if sx > pad + font.getlength(MAP_LABELS[kind]) + 2 * gap:
            swatch = np.full((sw, sw, 3), 140, dtype=np.uint8)
            _hatch(swatch, 0, 0, max(4, hatch_spacing // 2), hatch_thick)
            canvas.paste(Image.fromarray(swatch), (sx, label_y))
            draw.rectangle([sx, label_y, sx + sw - 1, label_y + sw - 1], outline=_OUTLINE)
            draw.text((sx + sw + gap, label_y), note, font=font, fill=_MUTED)
            right_edge = sx - 2 * gap
    draw.text((pad, label_y), _fit_text(font, label, right_edge - pad), font=font, fill=_TEXT)

    # Colour bar.
    bx0, bx1 = pad, width - pad
    by0, by1 = top + geo["bar_y"], top + geo["bar_y"] + geo["bar_h"]
    bar_w = bx1 - bx0
    constant = vrange is None or vrange[1] <= vrange[0]
    if constant:
        ramp = np.repeat(COLORMAP[CONSTANT_INDEX][None, :], bar_w, axis=0)
    else:
        ramp = COLORMAP[np.round(np.linspace(0, 255, bar_w)).astype(np.intp)]
    bar = np.broadcast_to(ramp[None, :, :], (by1 - by0, bar_w, 3))
    canvas.paste(Image.fromarray(np.ascontiguousarray(bar)), (bx0, by0))
    draw.rectangle([bx0 - 1, by0 - 1, bx1, by1], outline=_OUTLINE)

    # Ticks and their labels.
    tick_y0, tick_y1 = by1 + 1, by1 + geo["tick"]
    text_y = top + geo["ticks_y"]
    if vrange is None:
        ticks = [(0.5, "no finite values")]
    elif constant:
        ticks = [(0.5, f"all = {format_ticks([vrange[0]])[0]}")]
    else:
        lo, hi = vrange
        labels = format_ticks([lo, (lo + hi) / 2, hi])
        ticks = list(zip((0.0, 0.5, 1.0), labels, strict=True))
    for frac, text in ticks:
        x = bx0 + frac * (bar_w - 1)
        draw.line([(round(x), tick_y0), (round(x), tick_y1)], fill=_OUTLINE, width=max(1, fs // 14))
        tw = font.getlength(text)
        tx = min(max(x - tw / 2, bx0), bx1 - tw)  # centred, but kept inside the bar's span
        draw.text((round(tx), text_y), text, font=font, fill=_TEXT)

    # Under the bar's ends, what low and high values mean, in words.
    lows, highs = direction_words(kind, higher_is_better)
    low, high = _fit_pair(font, lows, highs, bar_w, 2 * gap)
    words_y = top + geo["words_y"]
    if low:
        draw.text((bx0, words_y), low, font=font, fill=_MUTED)
    draw.text((round(bx1 - font.getlength(high)), words_y), high, font=font, fill=_MUTED)
