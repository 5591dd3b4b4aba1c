"""What `radn eval` hands back besides its table: the JSON report, per-pair scores as CSV, scatter plots.

Builds and writes; prints nothing (the CLI says which files it wrote).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .metrics import METRICS
from .plot import scatter_plot
from .runner import Evaluation


def evaluation_document(result: Evaluation, scorer=None) -> dict:
    """The full report as a JSON-ready document (`radn eval --json`)."""
    db = result.database
    return {
        "database": {
            "name": db.name,
            "root": str(db.root),
            "pairs": len(db.pairs),
            "scale": db.scale,
            "higher_is_better": db.higher_is_better,
        },
        "model": None
        if scorer is None
        else {"weights": scorer.info.weights_id, "precision": scorer.precision},
        "scale": result.scale,
        "failed": len(result.errors),
        "skipped": {
            name: {"pairs": count, "reason": reason} for name, (count, reason) in result.skipped.items()
        },
        "metrics": result.reports,
    }


def write_scores_csv(path: Path, result: Evaluation) -> None:
    """One row per pair: ref, dist, the human score, the distortion type, each metric's prediction."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "dist", "mos", "type", *result.metrics])
        for i, pair in enumerate(result.database.pairs):
            predictions = (repr(float(result.predictions[m][i])) for m in result.metrics)
            writer.writerow([pair.ref, pair.dist, repr(pair.mos), pair.dist_type, *predictions])


def write_plots(template: Path, result: Evaluation, scorer=None) -> list[Path]:
    """A scatter plot of each metric against the human scores (several: ``name_<metric>.png``)."""
    several = len(result.metrics) > 1
    written = []
    for name in result.metrics:
        out = template.with_name(f"{template.stem}_{name}{template.suffix}") if several else template
        report = result.reports[name]
        label = scorer.info.weights_id if METRICS[name].model and scorer is not None else name
        scatter_plot(
            result.predictions[name],
            result.human,
            out,
            title=f"{result.database.name}: {name} "
            f"(SROCC {report['srocc']:.3f}, PLCC {report['plcc_logistic']:.3f})",
            xlabel=label,
            ylabel=result.database.scale,
            fit_params=report["logistic_params"],
            types=[p.dist_type for p in result.database.pairs],
        )
        written.append(out)
    return written
