"""What the page shows, as plain data for the template: the summary, the failures, the histogram's
bars, the method table, and the rows as one JSON document that the page's script turns into the
pairs table, the per-reference rankings and the detail view.

The rows travel as data, not as 10,000 server-made table rows: the script shows one page of the
table at a time, so a large batch opens at once. Picture file names are keys (hashes), never paths
from the CSV; the paths themselves are only ever shown as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import __version__
from ..heatmap import MAP_LABELS
from ..heatmap.maps import direction_labels
from .assets import Assets
from .plan import Planned
from .summary import Bin, histogram, method_summaries, summarize
from .table import Results

if TYPE_CHECKING:
    from ..weights import WeightsInfo

MAX_FAILURES = 200  # failures listed in the summary; the table's "failed" filter shows them all
CHART_W, CHART_H, CHART_PAD = 640, 180, 28  # histogram drawing, in SVG units


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


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


def _row(plan: Planned, grouped: bool) -> dict[str, Any]:
    """A row for the page's script; ``grouped``: the CSV holds several weights or precisions, and
    ``g`` names the row's rank group (``table.rank_group``), which the per-reference list shows."""
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
    if grouped:
        shown["g"] = f"{row.ref} ({row.weights}, {row.precision})"
    return shown


def page_context(
    results: Results,
    plans: list[Planned],
    assets: Assets,
    *,
    info: WeightsInfo | None,
    kind: str,
    heatmaps: bool,
) -> dict[str, Any]:
    """Everything ``templates/report.html.j2`` shows."""
    higher = info.higher_is_better if info is not None else True
    overall = summarize("all", results.rows)
    failures = results.failures
    scores = [row.score for row in results.scored]
    bins = histogram(scores)
    low, high = direction_labels("scores", higher_is_better=higher)
    files = quote(assets.folder.name) + "/"
    grouped = len({(row.weights, row.precision) for row in results.rows}) > 1
    return {
        "title": f"radn report: {results.path.name}",
        "csv": str(results.path),
        "version": __version__,
        "overall": overall,
        "pairs": len(results.rows),
        "weights": results.weights.most_common(),
        "precisions": results.precisions.most_common(),
        "info": info.weights_id if info is not None else None,
        **_scale(info),
        "map_label": MAP_LABELS[kind],
        "heatmaps": sum(plan.heatmap_ready for plan in plans),
        "heatmaps_computed": heatmaps,
        "failures": [row.error or f"{row.dist}: no score" for row in failures[:MAX_FAILURES]],
        "failures_more": max(0, len(failures) - MAX_FAILURES),
        "bars": histogram_bars(bins),
        "axis": (_score(bins[0].low), _score(bins[-1].high)) if bins else None,
        "tallest": max((b.count for b in bins), default=0),
        "chart": {"w": CHART_W, "h": CHART_H, "pad": CHART_PAD},
        "worse_better": (low, high),
        "methods": method_summaries(results.rows, results.methods, higher_is_better=higher)
        if len(results.methods) > 1
        else [],
        "files": files,
        "score": _score,
        "data": {
            "files": files,
            "higherIsBetter": higher,
            "map": MAP_LABELS[kind],
            "methods": results.methods,
            "rows": [_row(plan, grouped) for plan in plans],
        },
    }
