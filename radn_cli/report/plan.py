"""Each row of a report with its pictures: the keys of its images and heatmap in the report's folder
(``assets``), whether the heatmap is drawn already, or why the row has none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .assets import Assets
from .table import ResultRow, Results


@dataclass
class Planned:
    """A row and its pictures: keys into the asset folder, or why there is no heatmap."""

    row: ResultRow
    ref_path: Path
    dist_path: Path
    ref_key: str | None  # None: the file is not there
    dist_key: str | None
    heatmap_key: str | None = None  # the row's heatmap (drawn or not)
    heatmap_ready: bool = False
    heatmap_note: str = ""


def plan_rows(
    results: Results, assets: Assets, kind: str, colours: tuple[float, float] | None = None
) -> list[Planned]:
    """Each row with its image keys and heatmap key (its map, coloured over ``colours``, at its
    viewing scale), and whether that heatmap is drawn already."""
    keys: dict[Path, str | None] = {}
    plans = []
    for row in results.rows:
        ref, dist = assets.locate(row.ref), assets.locate(row.dist)
        for path in (ref, dist):
            if path not in keys:
                keys[path] = assets.image_key(path)
        plan = Planned(row, ref, dist, keys[ref], keys[dist])
        if not row.ok:
            plan.heatmap_note = "no heatmap: the pair was not scored"
        elif plan.ref_key is None or plan.dist_key is None:
            plan.heatmap_note = "no heatmap: image not found"
        else:
            plan.heatmap_key = assets.heatmap_key(
                plan.ref_key, plan.dist_key, row.weights, row.precision, kind, colours, row.scale
            )
            plan.heatmap_ready = assets.has_heatmap(plan.heatmap_key)
            if not plan.heatmap_ready:
                plan.heatmap_note = "heatmap not computed (radn report --no-heatmaps)"
        plans.append(plan)
    return plans


def missing_heatmaps(plans: list[Planned]) -> dict[str, list[Planned]]:
    """Rows whose heatmap is not drawn, by heatmap key (rows of one key share one picture)."""
    wanted: dict[str, list[Planned]] = {}
    for plan in plans:
        if plan.heatmap_key is not None and not plan.heatmap_ready:
            wanted.setdefault(plan.heatmap_key, []).append(plan)
    return wanted
