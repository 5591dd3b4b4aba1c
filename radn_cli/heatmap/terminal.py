"""Terminal preview: a patch map as coloured half blocks in a Rich :class:`~rich.text.Text`."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.color import Color
from rich.console import RenderableType
from rich.style import Style
from rich.text import Text

from .colormap import COLORMAP, CONSTANT_INDEX, color_index
from .maps import as_map, direction_words, finite_range, format_ticks, range_words


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


def terminal_heatmap(
    values: Any,
    *,
    max_width: int,
    title: str | None = None,
    kind: str | None = None,
    higher_is_better: bool = True,
    value_range: tuple[float, float] | None = None,
) -> RenderableType:
    """A Rich :class:`~rich.text.Text` drawing the ``[rows, cols]`` map with coloured half blocks.

    Each character cell shows two patches stacked vertically ("▀" with the upper patch as foreground
    and the lower as background colour), which keeps patches roughly square. Grids wider than
    ``max_width`` are shrunk by averaging square blocks of patches; small grids are enlarged a little.
    An optional title line comes first and a legend line (min, colour ramp, max) last. With ``kind``
    (one of :data:`~.maps.MAPS`) the legend also says in words what high values mean
    (:func:`~.maps.direction_labels`): "higher = better quality" (or worse, with
    ``higher_is_better=False``, the weights' ``score_direction``) for scores and contributions,
    "higher = more weight" for weights; a shorter form, or none, where the width is short. No line is
    wider than ``max_width``. Colours span ``value_range`` (``(lo, hi)``; values beyond it get the
    colour of its end) or, with None, the map's own min..max (the legend then says "min" and "max").
    Rich downgrades the truecolor styles on terminals with fewer colours.
    """
    highs = direction_words(kind, higher_is_better)[1] if kind is not None else ()
    vals = as_map(values)
    max_width = max(1, int(max_width))
    rows, cols = vals.shape
    fixed = value_range is not None
    # of the original patches, not of the block means
    vrange = (float(value_range[0]), float(value_range[1])) if fixed else finite_range(vals)

    factor = -(-cols // max_width)
    if factor > 1:
        grid = _block_mean(vals, factor)
        notes = [f"{factor}x{factor} patches per cell"]
    else:
        upscale = max(1, min(4, min(max_width, 40) // cols))
        grid = np.repeat(np.repeat(vals, upscale, axis=0), upscale, axis=1)
        notes = []
    idx, valid = color_index(grid, vrange)
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
    if fixed:
        notes.insert(0, range_words(vals, vrange, fixed))
    note = f" ({'; '.join(notes)})" if notes else ""
    text.append_text(_terminal_legend(vrange, max_width, note, highs, fixed))
    return text


def _terminal_legend(
    vrange: tuple[float, float] | None,
    max_width: int,
    note: str,
    highs: tuple[str, ...] = (),
    fixed: bool = False,
) -> Text:
    """``min lo <ramp> max hi  <what high values mean> (note)``, fitted to ``max_width``: the words
    ``highs`` (longest first) and the note are shortened or left out before the ramp gets below 8.
    A ``fixed`` range's ends are not the map's min and max: ``lo <ramp> hi``."""
    legend = Text(no_wrap=True, overflow="crop", end="")
    if vrange is None:
        legend.append("no finite values"[:max_width], "dim")
        return legend
    lo, hi = vrange
    if hi <= lo:
        swatch = _rich_color(COLORMAP[CONSTANT_INDEX])
        body = f" all = {format_ticks([lo])[0]}"
        legend.append("  ", Style(bgcolor=swatch))
        legend.append(body[: max(0, max_width - 2)])
        words = next((f"  {h}" for h in highs if 2 + len(body) + 2 + len(h) <= max_width), "")
        legend.append(words)
        return legend
    lo_s, hi_s = format_ticks([lo, hi])
    if not fixed and len(lo_s) + len(hi_s) + 2 + 8 + 8 <= max_width:  # room for "min ", " max ", a ramp
        lo_s, hi_s = f"min {lo_s}", f"max {hi_s}"
    fixed = len(lo_s) + len(hi_s) + 2
    # the longest words that leave room for a ramp of 8, with the note if it still fits
    fits = (
        (w, n)
        for w in (*(f"  {h}" for h in highs), "")
        for n in (note, "")
        if fixed + 8 + len(w) + len(n) <= max_width
    )
    words, note = next(fits, ("", ""))
    ramp_w = min(24, max_width - fixed - len(words) - len(note))
    if ramp_w < 2:  # too narrow for a ramp: just the numbers
        legend.append(f"{lo_s}..{hi_s}"[:max_width])
        return legend
    legend.append(lo_s + " ")
    for i in range(ramp_w):
        legend.append(" ", Style(bgcolor=_rich_color(COLORMAP[round(i * 255 / (ramp_w - 1))])))
    legend.append(" " + hi_s)
    legend.append(words)
    if note:
        legend.append(note, "dim")
    return legend
