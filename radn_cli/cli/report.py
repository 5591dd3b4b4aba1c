"""`radn report`: the HTML report of a results CSV; also what `radn batch --report` runs at its end."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import RadnError, UsageError
from ..heatmap.choices import DEFAULT_MAP, DEFAULT_RANGE, ColorRange
from .console import load_torch, note, progress_shown, warn
from .inputs import check_outputs, make_scorer
from .options import (
    BatchOpt,
    DeviceOpt,
    MapOpt,
    Precision,
    PrecisionOpt,
    RangeOpt,
    VerboseOpt,
    WeightsOpt,
    WorkersOpt,
    check_map_options,
)

if TYPE_CHECKING:
    from ..report import Results
    from ..scoring import Scorer
    from ..weights import WeightsInfo


def report(
    results: Annotated[
        Path,
        typer.Argument(help="Results CSV written by `radn batch`.", show_default=False, metavar="SCORES.csv"),
    ],
    *,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="HTML page to write; its pictures and script go to the folder beside it named after it "
            "(report.html -> report_files/), which also keeps them for the next run.",
            dir_okay=False,
        ),
    ] = Path("report.html"),
    no_heatmaps: Annotated[
        bool,
        typer.Option(
            "--no-heatmaps",
            help="Do not load the model: pairs without a heatmap from an earlier run say it was not "
            "computed.",
        ),
    ] = False,
    kind: MapOpt = DEFAULT_MAP,
    value_range: RangeOpt = DEFAULT_RANGE,
    workers: WorkersOpt = 0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Write an HTML report of a results CSV: summary, histogram, methods, pairs with heatmaps.

    It works offline (open the page from disk). Heatmaps are computed with the model only for pairs
    whose heatmap is not in the report's folder yet (`radn batch --report` draws them as it scores),
    each at the --scale its row was scored at.
    """
    kind, spec = check_map_options(kind, value_range)
    check_report_output(output, results)
    from ..report import read_results

    table = read_results(results)  # a bad CSV is reported before PyTorch loads
    load_torch()
    info = _weights_info(weights)
    scorer = None if no_heatmaps else (lambda: make_scorer(weights, device, precision, batch_size))
    write_html_report(table, output, info=info, scorer=scorer, kind=kind, value_range=spec, workers=workers)


def check_report_output(output: Path, results: Path) -> None:
    """The page and its folder can be written, and the page would not replace the results CSV."""
    from ..report import files_folder

    if os.path.abspath(output) == os.path.abspath(results):
        raise UsageError("the report would replace the results CSV; give another --output")
    check_outputs(output)
    folder = files_folder(output)
    if folder.exists() and not folder.is_dir():
        raise RadnError("is in the way of the report's folder (not a folder)", folder)


def _weights_info(weights: Path | None) -> WeightsInfo | None:
    """The metadata of the weights the options name (score scale and direction); None when no
    weights are found and none were named."""
    from ..errors import WeightsError
    from ..weights import read_info, resolve_weights

    try:
        return read_info(resolve_weights(weights).path)
    except WeightsError:
        if weights is not None:
            raise
        return None


def write_html_report(
    results: Results,
    output: Path,
    *,
    info: WeightsInfo | None,
    scorer: Callable[[], Scorer] | None,
    kind: str,
    workers: int,
    value_range: str | ColorRange = DEFAULT_RANGE,
) -> None:
    """Build the report of ``results`` and say what was written (and what could not be drawn);
    ``kind`` and ``value_range``: the heatmaps' map and colour range (``check_map_options``)."""
    from ..report import build_report, weights_mismatch

    warn(weights_mismatch(results, info, heatmaps=scorer is not None))
    with progress_shown() as progress:
        built = build_report(
            results,
            output,
            info=info,
            scorer=scorer,
            kind=kind,
            value_range=value_range,
            workers=workers,
            progress=progress,
        )
    if built.problems:
        more = f" (and {len(built.problems) - 1} more)" if len(built.problems) > 1 else ""
        warn(f"{built.problems[0]}{more}")
    computed = f", {built.computed} computed now" if built.computed else ""
    note(
        f"radn: report of {built.rows} pairs ({built.heatmaps} with a heatmap{computed}) -> {output} "
        f"and {built.folder}{os.sep}"
    )
