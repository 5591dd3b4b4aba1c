"""`radn eval`: RADN and classical metrics against the human scores of a rated database."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, UsageError
from ..evaluation.databases import LAYOUTS
from ..evaluation.metrics import METRICS
from .console import ctrl_c_deferred, load_torch, note, progress_shown, warn
from .inputs import check_outputs, make_scorer
from .options import (
    BatchOpt,
    DeviceOpt,
    PairsPerStepOpt,
    Precision,
    PrecisionOpt,
    ScaleOpt,
    VerboseOpt,
    WeightsOpt,
    WorkersOpt,
    check_scale,
)

_LAYOUT_HELP = "\n\n".join(f"{name}: {layout.structure}" for name, layout in LAYOUTS.items())


def eval_command(
    database: Annotated[
        Path,
        typer.Argument(
            help="Folder of a human-rated database in one of the layouts described above, or a "
            "ref,dist,mos CSV file.",
            show_default=False,
        ),
    ],
    *,
    layout: Annotated[
        str, typer.Option("--layout", help=f"auto (detected from the files) or one of: {', '.join(LAYOUTS)}.")
    ] = "auto",
    metric: Annotated[
        str, typer.Option("--metric", help=f"Comma-separated: {', '.join(METRICS)}.")
    ] = ",".join(METRICS),
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot",
            help="Scatter plot PNG against the human scores (several metrics: name_<metric>.png).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    scores: Annotated[
        Optional[Path],
        typer.Option("--scores", help="Per-pair predictions as CSV.", dir_okay=False, show_default=False),
    ] = None,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="csv layout: its mos column is lower-is-better (DMOS).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    scale: ScaleOpt = "native",
    workers: WorkersOpt = 0,
    pairs_per_step: PairsPerStepOpt = 0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    metrics = tuple(m.strip().lower() for m in metric.split(",") if m.strip())
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise UsageError(f"--metric takes {', '.join(METRICS)}; got {metric!r}")
    viewing = check_scale(scale)
    check_outputs(plot, scores)
    from ..evaluation.databases import load_database

    with ctrl_c_deferred():  # the LIVE layout reads .mat files with scipy (compiled modules)
        db = load_database(
            database,
            None if layout == "auto" else layout,
            **({"higher_is_better": False} if lower_is_better else {}),
        )
    model = any(METRICS[m].model for m in metrics)
    scorer = make_scorer(weights, device, precision, batch_size) if model else None
    load_torch()
    from ..evaluation.outputs import evaluation_document, write_plots, write_scores_csv
    from ..evaluation.runner import evaluate

    seen = scorer.info.trained_on(database.name, database.stem, db.name) if scorer is not None else None
    if seen:
        warn(
            f"{scorer.info.weights_id} trained on the human ratings of {seen}: its correlations on "
            f"{database} are in-sample, not a validation figure (its model card gives a fold estimate)"
        )
    at = "" if viewing.native else f", scored at --scale {viewing.text}"
    note(f"radn: {db.name}: {len(db.pairs)} pairs, human scores {db.scale}{at}")
    with progress_shown() as progress:
        result = evaluate(
            db,
            metrics,
            scorer=scorer,
            workers=workers,
            pairs_per_step=pairs_per_step,
            progress=progress,
            scale=viewing,
        )
    for name, (count, reason) in result.skipped.items():
        note(f"radn: note: {name} skipped on {count} pair(s): {reason}")
    if scores is not None:
        write_scores_csv(scores, result)
        note(f"radn: wrote {scores}")
    if plot is not None:
        for path in write_plots(plot, result, scorer):
            note(f"radn: wrote {path}")
    if json_out:
        sys.stdout.write(json.dumps(evaluation_document(result, scorer), indent=2, default=float) + "\n")
    else:
        _print_table(result)
    if result.errors:
        raise typer.Exit(int(ExitCode.ERROR))


eval_command.__doc__ = f"""Agreement with human scores: SROCC, KRCC, PLCC (raw and logistic), RMSE, per type.

RADN and the classical PSNR, SSIM and MS-SSIM are computed on the same pairs, side by side (higher
SROCC is better); with --scale, all of them on the pairs resized alike. The database's layout is
detected from its files:

{_LAYOUT_HELP}
"""


def _print_table(result) -> None:
    columns = ("srocc", "krcc", "plcc", "plcc_logistic", "rmse_logistic")
    lines = ["metric\tn\t" + "\t".join(columns)]
    for name, report in result.reports.items():
        lines.append(f"{name}\t{report['n']}\t" + "\t".join(f"{report[c]:.4f}" for c in columns))
    types = sorted({t for report in result.reports.values() for t in report["per_type"]})
    if types:
        lines.append("")
        lines.append("srocc by type\t" + "\t".join(result.reports))
        for t in types:
            cells = [
                f"{r['per_type'][t]['srocc']:.4f}" if t in r["per_type"] else "-"
                for r in result.reports.values()
            ]
            lines.append(f"{t}\t" + "\t".join(cells))
    sys.stdout.write("\n".join(lines) + "\n")
