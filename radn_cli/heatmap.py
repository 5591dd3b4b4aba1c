"""Per-patch heatmaps of a RADN score: image overlays, raw CSV dumps and terminal previews.

RADN scores the distorted image on a row-major grid of non-overlapping ``patch`` x ``patch`` squares
(``rows x cols``; the remainder pixels at the right and bottom edge are not covered). Each patch gets a
score ``s_i`` and a weight ``w_i > 0`` and the image score is ``sum(w_i s_i) / sum(w_i)``. This module
turns those per-patch values into

* a ``[rows, cols]`` map (:func:`patch_map`): the weights, the scores, or each patch's contribution
  ``w_i s_i / sum(w)`` to the image score (the contributions add up to the image score);
* an overlay image at input resolution with a colour-bar legend (:func:`render_overlay`);
* a CSV with one line per patch (:func:`write_raw_csv`);
* a Rich renderable for the terminal (:func:`terminal_heatmap`).

The colour map is a viridis-like ramp (dark purple -> blue -> green -> yellow), built here from ten
anchor colours interpolated in the perceptually uniform OKLab space; low values are dark, high values
bright. Only numpy, Pillow and Rich are used; nothing here imports torch or Typer, and nothing prints.
"""

from __future__ import annotations

import math
from os import PathLike
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich.color import Color
from rich.console import RenderableType
from rich.style import Style
from rich.text import Text

__all__ = [
    "MAPS",
    "MAP_LABELS",
    "COLORMAP",
    "patch_map",
    "render_overlay",
    "write_raw_csv",
    "terminal_heatmap",
    "legend_height",
]

MAPS = ("weights", "scores", "contribution")
"""The per-patch maps: patch weights, patch scores, and contributions ``w_i s_i / sum(w)``."""

MAP_LABELS = {
    "weights": "patch weight",
    "scores": "patch score",
    "contribution": "contribution to score",
}
"""Human-readable name of each map, used in legends."""

PATCH = 32

# --------------------------------------------------------------------------------------------------
# Colour map
# --------------------------------------------------------------------------------------------------

# Ten evenly spaced anchor colours of a viridis-like ramp (low -> high).
_ANCHORS_HEX = (
    "440154", "482878", "3e4989", "31688e", "26828e",
    "1f9e89", "35b779", "6ece58", "b5de2b", "fde725",
)  # fmt: skip

# OKLab (Ottosson 2020): linear sRGB -> LMS, then cube root, then LMS' -> Lab.
_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    lms = _srgb_to_linear(rgb) @ _RGB_TO_LMS.T
    return np.cbrt(lms) @ _LMS_TO_LAB.T


def _oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    lms = (lab @ np.linalg.inv(_LMS_TO_LAB).T) ** 3
    return _linear_to_srgb(lms @ np.linalg.inv(_RGB_TO_LMS).T)


def _build_lut(anchors_hex: tuple[str, ...], size: int = 256) -> np.ndarray:
    """A ``[size, 3]`` uint8 ramp through the anchors, linear in OKLab between neighbours."""
    rgb = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in anchors_hex], float) / 255.0
    lab = _srgb_to_oklab(rgb)
    pos = np.linspace(0.0, 1.0, len(anchors_hex))
    t = np.linspace(0.0, 1.0, size)
    lab_t = np.stack([np.interp(t, pos, lab[:, k]) for k in range(3)], axis=1)
    return np.round(_oklab_to_srgb(lab_t) * 255.0).astype(np.uint8)


COLORMAP: np.ndarray = _build_lut(_ANCHORS_HEX)
"""The ``[256, 3]`` uint8 viridis-like lookup table (index 0 = lowest value, 255 = highest)."""
COLORMAP.setflags(write=False)

_CONSTANT_INDEX = 128  # colour used for every patch when the map is constant

# --------------------------------------------------------------------------------------------------
# Maps
# --------------------------------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in MAPS:
        raise ValueError(f"unknown heatmap kind {kind!r}; expected one of {', '.join(MAPS)}")
    return kind


def patch_map(patch_scores: Any, patch_weights: Any, grid: tuple[int, int], kind: str) -> np.ndarray:
    """The ``[rows, cols]`` float64 map of one image's per-patch ``kind``.

    ``patch_scores`` and ``patch_weights`` hold one value per patch in row-major order (any shape with
    ``rows * cols`` elements, anything ``np.asarray`` takes). ``kind`` is one of :data:`MAPS`:
    ``"weights"`` (w_i), ``"scores"`` (s_i) or ``"contribution"`` (w_i s_i / sum(w), whose sum is the
    image score). Raises ``ValueError`` for an unknown kind, a size that does not match the grid, or
    weights that are not finite, negative, or sum to zero.
    """
    _check_kind(kind)
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be at least 1x1, got {rows}x{cols}")
    scores = np.asarray(patch_scores, dtype=np.float64).reshape(-1)
    weights = np.asarray(patch_weights, dtype=np.float64).reshape(-1)
    n = rows * cols
    if scores.size != n or weights.size != n:
        raise ValueError(
            f"a {rows}x{cols} grid has {n} patches, got {scores.size} scores and {weights.size} weights"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("patch weights must be finite and positive")
    if kind == "scores":
        out = scores
    elif kind == "weights":
        out = weights
    else:
        total = weights.sum()
        if not total > 0:
            raise ValueError("patch weights sum to zero")
        out = weights * scores / total
    return out.reshape(rows, cols).copy()


def _as_map(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"values must be a non-empty [rows, cols] array, got shape {arr.shape}")
    return arr


def _range(values: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values, or None when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def _color_index(values: np.ndarray, vrange: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """LUT indices (uint8) and a mask of the finite values; constant maps use the middle colour."""
    valid = np.isfinite(values)
    idx = np.full(values.shape, _CONSTANT_INDEX, dtype=np.uint8)
    if vrange is not None and vrange[1] > vrange[0]:
        lo, hi = vrange
        span = hi - lo
        t = np.where(valid, (values - lo) / span if math.isfinite(span) else 0.5, 0.0)
        idx = np.clip(np.round(t * 255.0), 0, 255).astype(np.uint8)
    return idx, valid


def _format_ticks(values: list[float]) -> list[str]:
    """Shortest '%g' formatting (>= 3 significant digits) that keeps distinct values distinct."""
    distinct = len(set(values))
    for digits in range(3, 18):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == distinct:
            return labels
    return [repr(v) for v in values]


# --------------------------------------------------------------------------------------------------
# Overlay image
# --------------------------------------------------------------------------------------------------

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
) -> Image.Image:
    """The distorted ``image`` with the ``[rows, cols]`` patch map ``values`` drawn over it.

    ``image`` is a PIL image or a uint8 ``HxWx3`` array at input resolution. Each patch is tinted with
    its colour from :data:`COLORMAP` (low = dark purple, high = yellow) at opacity ``alpha``; the
    remainder strip that no patch covers, and patches whose value is not finite, are dimmed and hatched
    instead. Thin dark lines separate patches of 16 px or more. Below the image a legend panel (of
    :func:`legend_height` px) holds the optional ``title``, the map name, and a colour bar with
    min/mid/max ticks; a constant map shows its single value. The result is an RGB image of width
    ``max(W, 320)`` and height ``H + legend_height(W, H, title)``; the image sits at the top left.
    Memory use stays at a few uint8 copies of the image, so 8K inputs are fine.
    """
    _check_kind(kind)
    patch = int(patch)
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    vals = _as_map(values)
    img = _as_rgb_array(image)
    height, width = img.shape[:2]
    rows, cols = vals.shape
    if rows * patch > height or cols * patch > width:
        raise ValueError(
            f"a {rows}x{cols} grid of {patch} px patches does not fit in a {width}x{height} image"
        )

    vrange = _range(vals)
    idx, valid = _color_index(vals, vrange)
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
    _draw_legend(canvas, height, geo, vals, vrange, kind, title, has_unscored, hatch_spacing, hatch_thick)
    return canvas


def _fit_text(font: Any, text: str, max_w: float) -> str:
    if font.getlength(text) <= max_w:
        return text
    while text and font.getlength(text + "...") > max_w:
        text = text[:-1]
    return text + "..."


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
) -> None:
    draw = ImageDraw.Draw(canvas)
    width = canvas.width
    pad, gap, fs = geo["pad"], geo["gap"], geo["fs"]
    font = _font(fs)
    inner_w = width - 2 * pad

    if title:
        tfont = _font(geo["title_fs"])
        draw.text((pad, top + geo["title_y"]), _fit_text(tfont, title, inner_w), font=tfont, fill=_TEXT)

    # Map name on the left; on the right a hatched swatch explaining the unscored area.
    label = MAP_LABELS[kind]
    if kind == "contribution" and vrange is not None:
        total = float(np.sum(vals[np.isfinite(vals)]))
        label += f" (sum = image score = {_format_ticks([total])[0]})"
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
        ramp = np.repeat(COLORMAP[_CONSTANT_INDEX][None, :], bar_w, axis=0)
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
        ticks = [(0.5, f"all = {_format_ticks([vrange[0]])[0]}")]
    else:
        lo, hi = vrange
        labels = _format_ticks([lo, (lo + hi) / 2, hi])
        ticks = list(zip((0.0, 0.5, 1.0), labels, strict=True))
    for frac, text in ticks:
        x = bx0 + frac * (bar_w - 1)
        draw.line([(round(x), tick_y0), (round(x), tick_y1)], fill=_OUTLINE, width=max(1, fs // 14))
        tw = font.getlength(text)
        tx = min(max(x - tw / 2, bx0), bx1 - tw)  # centred, but kept inside the bar's span
        draw.text((round(tx), text_y), text, font=font, fill=_TEXT)


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------


def write_raw_csv(path: str | PathLike[str], values: Any, *, patch: int = PATCH) -> None:
    """Write the ``[rows, cols]`` map to ``path`` as CSV: header ``row,col,x,y,value``, one line per
    patch in row-major order, ``x, y`` the pixel position of the patch's top-left corner and ``value``
    written with ``repr`` (shortest text that reads back to the same float64)."""
    vals = _as_map(values)
    patch = int(patch)
    rows, cols = vals.shape
    lines = ["row,col,x,y,value"]
    for r in range(rows):
        for c in range(cols):
            lines.append(f"{r},{c},{c * patch},{r * patch},{float(vals[r, c])!r}")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------------


def _block_mean(vals: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks (partial blocks at the edges included), ignoring NaNs."""
    rows, cols = vals.shape
    out_r, out_c = -(-rows // factor), -(-cols // factor)
    padded = np.full((out_r * factor, out_c * factor), np.nan)
    padded[:rows, :cols] = vals
    finite = np.isfinite(padded)
    blocks = np.where(finite, padded, 0.0).reshape(out_r, factor, out_c, factor)
    counts = finite.reshape(out_r, factor, out_c, factor).sum(axis=(1, 3))
    sums = blocks.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _rich_color(rgb: np.ndarray) -> Color:
    return Color.from_rgb(int(rgb[0]), int(rgb[1]), int(rgb[2]))


def terminal_heatmap(values: Any, *, max_width: int, title: str | None = None) -> RenderableType:
    """A Rich :class:`~rich.text.Text` drawing the ``[rows, cols]`` map with coloured half blocks.

    Each character cell shows two patches stacked vertically ("▀" with the upper patch as foreground
    and the lower as background colour), which keeps patches roughly square. Grids wider than
    ``max_width`` are shrunk by averaging square blocks of patches; small grids are enlarged a little.
    An optional title line comes first and a legend line (min, colour ramp, max) last. No line is
    wider than ``max_width``. Rich downgrades the truecolor styles on terminals with fewer colours.
    """
    vals = _as_map(values)
    max_width = max(1, int(max_width))
    rows, cols = vals.shape
    vrange = _range(vals)  # of the original patches, not of the block means

    factor = -(-cols // max_width)
    if factor > 1:
        grid = _block_mean(vals, factor)
        notes = [f"{factor}x{factor} patches per cell"]
    else:
        upscale = max(1, min(4, min(max_width, 40) // cols))
        grid = np.repeat(np.repeat(vals, upscale, axis=0), upscale, axis=1)
        notes = []
    idx, valid = _color_index(grid, vrange)
    colors = COLORMAP[idx]

    text = Text(no_wrap=True, overflow="crop", end="")
    if title:
        text.append(title if len(title) <= max_width else title[: max(0, max_width - 1)] + "…", "bold")
        text.append("\n")
    g_rows, g_cols = grid.shape
    for r in range(0, g_rows, 2):
        for c in range(g_cols):
            top_ok = bool(valid[r, c])
            bottom_ok = r + 1 < g_rows and bool(valid[r + 1, c])
            if top_ok and bottom_ok:
                style = Style(color=_rich_color(colors[r, c]), bgcolor=_rich_color(colors[r + 1, c]))
                text.append("▀", style)
            elif top_ok:
                text.append("▀", Style(color=_rich_color(colors[r, c])))
            elif bottom_ok:
                text.append("▄", Style(color=_rich_color(colors[r + 1, c])))
            else:
                text.append("·", "dim")  # no finite value here
        text.append("\n")
    if not valid.all():
        notes.append("· = no value")
    note = f" ({'; '.join(notes)})" if notes else ""
    text.append_text(_terminal_legend(vrange, max_width, note))
    return text


def _terminal_legend(vrange: tuple[float, float] | None, max_width: int, note: str) -> Text:
    legend = Text(no_wrap=True, overflow="crop", end="")
    if vrange is None:
        legend.append("no finite values"[:max_width], "dim")
        return legend
    lo, hi = vrange
    if hi <= lo:
        swatch = _rich_color(COLORMAP[_CONSTANT_INDEX])
        body = f" all = {_format_ticks([lo])[0]}"
        legend.append("  ", Style(bgcolor=swatch))
        legend.append(body[: max(0, max_width - 2)])
        return legend
    lo_s, hi_s = _format_ticks([lo, hi])
    if len(lo_s) + len(hi_s) + 2 + 8 + 8 <= max_width:  # room for "min ", " max " and a ramp
        lo_s, hi_s = f"min {lo_s}", f"max {hi_s}"
    fixed = len(lo_s) + len(hi_s) + 2
    if fixed + 8 + len(note) > max_width:
        note = ""
    ramp_w = min(24, max_width - fixed - len(note))
    if ramp_w < 2:  # too narrow for a ramp: just the numbers
        legend.append(f"{lo_s}..{hi_s}"[:max_width])
        return legend
    legend.append(lo_s + " ")
    for i in range(ramp_w):
        legend.append(" ", Style(bgcolor=_rich_color(COLORMAP[round(i * 255 / (ramp_w - 1))])))
    legend.append(" " + hi_s)
    if note:
        legend.append(note, "dim")
    return legend
