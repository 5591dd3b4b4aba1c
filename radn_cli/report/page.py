"""What the page shows, as plain data for the template: the summary, the failures, the histogram's
bars, the method table, and the rows as one JSON document that the page's script turns into the
pairs table, the per-reference rankings and the detail view.

The rows travel as data, not as 10,000 server-made table rows: the script shows one page of the
table at a time, so a large batch opens at once. Picture file names are keys (hashes), never paths
from the CSV; the paths themselves are only ever shown as text.

A heatmap's legend is text on the page, not part of its picture (where it shrank with the picture
below reading size): the map's name, the colour bar (``ramp.png``), the numbers at its ends and
middle, what low and high mean, and whether the range is fixed, from the facts stored with the
picture (``assets.legend_facts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import __version__
from ..heatmap import MAP_LABELS, direction_labels, scale_range
from .assets import RAMP, Assets
from .plan import Planned
from .summary import MIN_INTERVAL, Bin, histogram, method_summaries, summarize
from .table import Results

if TYPE_CHECKING:
    from ..weights import WeightsInfo

MAX_FAILURES = 200  # failures listed in the summary; the table's "failed" filter shows them all
CHART_W, CHART_H, CHART_PAD = 640, 180, 28  # histogram drawing, in SVG units


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def interval_text(summary: Any) -> str:
    """A summary's confidence interval, ``low .. high``, an end cut at the score scale marked with a
    dagger (the footnote of the table says so)."""
    low = _score(summary.low) + (" \u2020" if summary.low_clipped else "")
    high = _score(summary.high) + (" \u2020" if summary.high_clipped else "")
    return f"{low} .. {high}"


def histogram_bars(bins: Sequence[Bin]) -> list[dict[str, Any]]:
    """The bins as SVG rectangles in a CHART_W x CHART_H drawing (bars from the bottom axis)."""
    if not bins:
        return []
    tallest = max(b.count for b in bins) or 1
    width = (CHART_W - 2 * CHART_PAD) / len(bins)
    bars = []
    for i, b in enumerate(bins):
        height = (CHART_H - 2 * CHART_PAD) * b.count / tallest
        bars.append(
            {
                "x": round(CHART_PAD + i * width, 2),
                "y": round(CHART_H - CHART_PAD - height, 2),
                "w": round(max(width - 1, 1), 2),
                "h": round(height, 2),
                "label": f"{_score(b.low)} .. {_score(b.high)}: {b.count}",
            }
        )
    return bars


def _scale(info: WeightsInfo | None) -> dict[str, str]:
    if info is None:
        return {"scale": "unknown (no weights found)", "direction": "unknown"}
    direction = "higher is better" if info.higher_is_better else "lower is better"
    return {"scale": info.metadata.get("score_scale", "unknown"), "direction": direction}


def _bounds(info: WeightsInfo | None) -> tuple[float, float] | None:
    """The weights' score scale (low, high), where confidence intervals are clipped; None unknown."""
    return scale_range(info.metadata) if info is not None else None


def _number(value: float) -> str:
    """A number of a legend: 4 significant digits (``1``, ``3``, ``0.01234``)."""
    return f"{value:.4g}"


def legend_text(facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """A heatmap's legend facts (``assets.legend_facts``) as the page shows them: ``t``, the numbers
    at the low end, middle and high end of the colour bar (one, ``all = x``, for a constant map; none
    without finite values), ``f`` fixed range, ``b`` patches beyond it, ``s`` the sum of a product
    map, ``u`` part of the image not scored."""
    if not facts:
        return None
    lo, hi = facts.get("lo"), facts.get("hi")
    if lo is None or hi is None:
        ticks = []
    elif hi <= lo:
        ticks = [f"all = {_number(lo)}"]
    else:
        ticks = [_number(lo), _number((lo + hi) / 2), _number(hi)]
    total = facts.get("sum")
    return {
        "t": ticks,
        "f": bool(facts.get("fixed")),
        "b": int(facts.get("beyond") or 0),
        "s": None if total is None else _number(total),
        "u": bool(facts.get("unscored")),
    }


def _row(plan: Planned, grouped: bool, scaled: bool, legends: dict[str, Any]) -> dict[str, Any]:
    """A row for the page's script; ``grouped``: the CSV holds several weights, precisions or
    viewing scales, and ``g`` names the row's rank group (``table.rank_group``), which the
    per-reference list shows; ``scaled``: some rows were scored at a --scale other than native
    (``sc``). ``legends``: the heatmap legends by key."""
    row = plan.row
    shown = {
        "ref": row.ref,
        "dist": row.dist,
        "m": row.method,
        "s": row.score,
        "p": row.patches,
        "w": row.width,
        "h": row.height,
        "e": row.error,
        "r": row.rank,
        "ri": plan.ref_key or "",
        "di": plan.dist_key or "",
        "hk": plan.heatmap_key if plan.heatmap_ready else "",
        "hn": plan.heatmap_note,
    }
    if plan.heatmap_ready:
        shown["hl"] = legends.get(plan.heatmap_key)
    if scaled:
        shown["sc"] = row.scale
    if grouped:
        shown["g"] = f"{row.ref} ({row.weights}, {row.precision}{', scale ' + row.scale if scaled else ''})"
    return shown


def page_context(
    results: Results,
    plans: list[Planned],
    assets: Assets,
    *,
    info: WeightsInfo | None,
    kind: str,
    heatmaps: bool,
    colours: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Everything ``templates/report.html.j2`` shows; ``colours``: the range the heatmaps were
    coloured over (None: each its own)."""
    higher = info.higher_is_better if info is not None else True
    bounds = _bounds(info)
    overall = summarize("all", results.rows, bounds)
    failures = results.failures
    scores = [row.score for row in results.scored]
    bins = histogram(scores)
    low, high = direction_labels("scores", higher_is_better=higher)
    files = quote(assets.folder.name) + "/"
    grouped = len({(row.weights, row.precision, row.scale) for row in results.rows}) > 1
    scaled = any(row.scale != "native" for row in results.rows)
    legends = {
        plan.heatmap_key: legend_text(assets.read_legend(plan.heatmap_key))
        for plan in plans
        if plan.heatmap_ready
    }
    map_low, map_high = direction_labels(kind, higher_is_better=higher)
    return {
        "title": f"radn report: {results.path.name}",
        "csv": str(results.path),
        "version": __version__,
        "overall": overall,
        "pairs": len(results.rows),
        "weights": results.weights.most_common(),
        "precisions": results.precisions.most_common(),
        "scales": results.scales.most_common(),
        "info": info.weights_id if info is not None else None,
        **_scale(info),
        "map_label": MAP_LABELS[kind],
        "map_range": _range_words(kind, colours),
        "heatmaps": sum(plan.heatmap_ready for plan in plans),
        "heatmaps_computed": heatmaps,
        "failures": [row.error or f"{row.dist}: no score" for row in failures[:MAX_FAILURES]],
        "failures_more": max(0, len(failures) - MAX_FAILURES),
        "bars": histogram_bars(bins),
        "axis": (_score(bins[0].low), _score(bins[-1].high)) if bins else None,
        "tallest": max((b.count for b in bins), default=0),
        "chart": {"w": CHART_W, "h": CHART_H, "pad": CHART_PAD},
        "worse_better": (low, high),
        "methods": method_summaries(results.rows, results.methods, higher_is_better=higher, bounds=bounds)
        if len(results.methods) > 1
        else [],
        "bounds": bounds,
        "min_interval": MIN_INTERVAL,
        "files": files,
        "score": _score,
        "interval": interval_text,
        "data": {
            "files": files,
            "higherIsBetter": higher,
            "map": MAP_LABELS[kind],
            "mapWords": [map_low, map_high],
            "ramp": files + RAMP,
            "methods": results.methods,
            "rows": [_row(plan, grouped, scaled, legends) for plan in plans],
        },
    }


def _range_words(kind: str, colours: tuple[float, float] | None) -> str:
    """How the heatmaps' colours span, for the summary."""
    if colours is None:
        return "each map over its own min..max"
    span = f"{_number(colours[0])} .. {_number(colours[1])}"
    return f"fixed, {span}: the same colours for every pair, so that the maps compare"
