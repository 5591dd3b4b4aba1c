"""`radn score` (one reference, one or more distorted images) and `radn heatmap` (one pair's map)."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, RadnError, UsageError
from .console import error, note, stderr
from .inputs import check_inputs, check_outputs, load_checked, load_pair, make_scorer, print_notes
from .options import BatchOpt, DeviceOpt, Precision, PrecisionOpt, VerboseOpt, WeightsOpt


def score(
    ref: Annotated[Path, typer.Argument(help="Reference (pristine) image.", show_default=False)],
    dist: Annotated[
        list[Path],
        typer.Argument(help="One or more distorted images.", show_default=False, metavar="DIST"),
    ],
    *,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document with per-patch values.")
    ] = False,
    heatmap: Annotated[
        Optional[Path],
        typer.Option(
            "--heatmap",
            help="Write a weight-heatmap PNG (several images: name_<image>.png; images that share a "
            "name also get their folder: name_<folder>_<image>.png).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No heatmap or ranking on the terminal.")
    ] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Score distorted images against one reference: `score<TAB>path` per image on stdout.

    Several distorted images are ranked; the reference branch is computed once.
    """
    check_inputs(ref)  # a missing reference is reported at once; missing distorted images get a row
    check_outputs(heatmap)
    ref_image = load_checked(ref)  # a bad reference is reported before the model is loaded
    scorer = make_scorer(weights, device, precision, batch_size)
    from ..pairing import Pair
    from ..pipeline import score_pairs
    from ..records import (
        error_record,
        format_score,
        heatmap_paths,
        score_document,
        score_record,
        summary_record,
    )

    heatmap_outputs = heatmap_paths(heatmap, dist) if heatmap is not None else {}
    records: list[dict] = []
    interactive = stderr.is_terminal and not quiet and not json_out
    pairs = [Pair(ref, path) for path in dist]
    with closing(score_pairs(scorer, pairs, known={ref: ref_image})) as scored:
        for item in scored:
            path = item.pair.dist
            if item.error:
                error(item.error, verbose, item.exception)
                records.append(error_record(path, item.error))
                continue
            print_notes(item.dist)
            records.append(score_record(path, item.result))
            if not json_out:
                sys.stdout.write(f"{format_score(item.result.score)}\t{path}\n")
                sys.stdout.flush()
            if heatmap is not None:
                _write_heatmap(heatmap_outputs[path], path, item.dist, item.result, "weights", None, scorer)
            if interactive:
                _show_terminal_heatmap(path, item.result)
    summary = summary_record(records, higher_is_better=scorer.info.higher_is_better)
    if json_out:
        sys.stdout.write(json.dumps(score_document(ref, scorer, records, summary), indent=2) + "\n")
    elif interactive and summary["scored"] > 1:
        _show_ranking(records, scorer.info.higher_is_better)
    if summary["failed"]:
        raise typer.Exit(int(ExitCode.ERROR))


def heatmap(
    ref: Annotated[Path, typer.Argument(help="Reference image.", show_default=False)],
    dist: Annotated[Path, typer.Argument(help="Distorted image.", show_default=False)],
    *,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="PNG to write.", dir_okay=False, show_default=False)
    ],
    kind: Annotated[
        str,
        typer.Option(
            "--map",
            help="weights (where the model looks), scores (per-patch quality) or contribution "
            "(w_i * s_i / sum w: what each patch adds to the score).",
        ),
    ] = "weights",
    raw: Annotated[
        Optional[Path],
        typer.Option(
            "--raw", help="Also write the raw per-patch values as CSV.", dir_okay=False, show_default=False
        ),
    ] = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Draw the per-patch map over the distorted image at input resolution, with a colour legend."""
    from ..constants import HEATMAP_MAPS

    if kind not in HEATMAP_MAPS:
        raise UsageError(f"--map must be one of {', '.join(HEATMAP_MAPS)}, not {kind!r}")
    check_inputs(ref, dist)
    check_outputs(output, raw)
    ref_image, dist_image = load_pair(ref, dist)  # bad images are reported before the model loads
    scorer = make_scorer(weights, device, precision, batch_size)
    from ..records import format_score

    result = scorer.score_pair(ref_image.tensor, dist_image.tensor)
    sys.stdout.write(f"{format_score(result.score)}\t{dist}\n")
    _write_heatmap(output, dist, dist_image, result, kind, raw, scorer)


def _show_terminal_heatmap(path: Path, result) -> None:
    from ..heatmap import terminal_heatmap

    about = f"patch weights ({result.grid[0]}x{result.grid[1]} patches), score {result.score:.4f}"
    title = f"{path}: {about}"
    if len(title) > stderr.width:  # a long path would push what the map shows off the line: name only
        title = f"{path.name}: {about}"
    map_ = terminal_heatmap(result.patch_weights.numpy(), max_width=stderr.width, title=title, kind="weights")
    stderr.print(map_)
    stderr.print()  # a blank line between the maps of several images


def _show_ranking(records: list[dict], higher_is_better: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    scored = sorted(
        (r for r in records if r["error"] is None), key=lambda r: r["score"], reverse=higher_is_better
    )
    table = Table(title=f"ranking ({'higher' if higher_is_better else 'lower'} is better)")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("image")
    for rank, record in enumerate(scored, 1):
        table.add_row(str(rank), f"{record['score']:.4f}", Text(record["dist"]))  # a file name is not markup
    stderr.print(table)


def _write_heatmap(out: Path, dist: Path, image, result, kind: str, raw: Path | None, scorer) -> None:
    from ..heatmap import save_heatmap

    try:
        save_heatmap(
            out,
            image,
            result,
            kind=kind,
            raw=raw,
            title=f"{dist.name}: score {result.score:.4f}",
            higher_is_better=scorer.info.higher_is_better,
        )
    except OSError as exc:
        raise RadnError(f"cannot write heatmap: {exc.strerror or exc}", out) from exc
    note(f"radn: wrote {out}" + (f" and {raw}" if raw is not None else ""))
