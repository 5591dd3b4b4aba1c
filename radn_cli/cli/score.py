"""`radn score` (one reference, one or more distorted images) and `radn heatmap` (one pair's map).

On a terminal both show progress while they work (``WorkProgress``: after 2 s, on stderr) and, after
the scores, a line that says what they mean (``scale_line``: the weights' scale and direction). The
maps they draw are the per-patch scores unless --map says otherwise, coloured over the weights' score
scale unless --range says otherwise (``heatmap.choices``), so that the maps of two images compare,
and drawn over the image at its input resolution also when --scale had it scored smaller
(``viewing``).
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import ExitCode, RadnError
from ..heatmap.choices import DEFAULT_MAP, DEFAULT_RANGE
from .console import WorkProgress, error, note, stderr
from .inputs import check_inputs, check_outputs, load_checked, load_pair, make_scorer, print_notes
from .options import (
    BatchOpt,
    DeviceOpt,
    MapOpt,
    Precision,
    PrecisionOpt,
    RangeOpt,
    ScaleOpt,
    VerboseOpt,
    WeightsOpt,
    check_map_options,
    check_scale,
)

if TYPE_CHECKING:
    from ..viewing import Scale
    from ..weights import WeightsInfo


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
            help="Write a heatmap PNG (the --map) of each image (several images: name_<image>.png; "
            "images that share a name also get their folder: name_<folder>_<image>.png).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    kind: MapOpt = DEFAULT_MAP,
    value_range: RangeOpt = DEFAULT_RANGE,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Nothing on the terminal but errors: no progress, map, ranking or scale."
        ),
    ] = False,
    scale: ScaleOpt = "native",
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Score distorted images against one reference: `score<TAB>path` per image on stdout.

    Several distorted images are ranked; the reference branch is computed once. On a terminal, on
    stderr: progress while it works, each image's map, the ranking, and the score scale.
    """
    kind, spec = check_map_options(kind, value_range)
    viewing = check_scale(scale)
    check_inputs(ref)  # a missing reference is reported at once; missing distorted images get a row
    check_outputs(heatmap)
    records: list[dict] = []
    interactive = stderr.is_terminal and not quiet and not json_out
    with WorkProgress("loading", enabled=not quiet) as progress:
        ref_image = load_checked(ref)  # a bad reference is reported before the model is loaded
        scored_size = viewing.size(ref_image.width, ref_image.height, str(ref))  # and one it cannot scale
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
        colours = _colours(scorer.info, kind, spec, drawn=heatmap is not None)
        pairs = [Pair(ref, path) for path in dist]
        patches = _patches(*scored_size)
        progress.begin("scoring", patches * (1 + len(pairs)), "patches")
        step = _StepCounter(progress) if progress.active else None
        scored_pairs = score_pairs(scorer, pairs, known={ref: ref_image}, scale=viewing, progress=step)
        with closing(scored_pairs) as scored:
            for done, item in enumerate(scored, 1):
                progress.update(patches * (1 + done))  # a pair that failed is done too
                if step is not None:
                    step.restart()
                path = item.pair.dist
                if item.error:
                    error(item.error, verbose, item.exception)
                    records.append(error_record(path, item.error))
                    continue
                print_notes(item.dist)
                records.append(score_record(path, item.result))
                if not json_out:
                    with progress.paused():
                        sys.stdout.write(f"{format_score(item.result.score)}\t{path}\n")
                        sys.stdout.flush()
                if heatmap is not None:
                    out = heatmap_outputs[path]
                    _write_heatmap(out, path, item.dist, item.result, kind, [], scorer.info, colours)
                if interactive:
                    _show_terminal_heatmap(path, item.result, kind, colours, scorer.info.higher_is_better)
    summary = summary_record(records, higher_is_better=scorer.info.higher_is_better)
    if json_out:
        document = score_document(ref, scorer, records, summary, scale=viewing.text)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif interactive and summary["scored"] > 1:
        _show_ranking(records, scorer.info.higher_is_better)
    if stderr.is_terminal and not quiet and summary["scored"]:
        note(scale_line(scorer.info))
    if summary["failed"]:
        raise typer.Exit(int(ExitCode.ERROR))


def heatmap(
    ref: Annotated[Path, typer.Argument(help="Reference image.", show_default=False)],
    dist: Annotated[Path, typer.Argument(help="Distorted image.", show_default=False)],
    *,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="PNG to write.", dir_okay=False, show_default=False)
    ],
    kind: MapOpt = DEFAULT_MAP,
    value_range: RangeOpt = DEFAULT_RANGE,
    raw: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--raw",
            metavar="<file>",
            help="Also write the map's raw per-patch values: NAME.npy as a NumPy [rows, cols] array, "
            "any other name as CSV (row,col,x,y,value). Give it twice for both.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    scale: ScaleOpt = "native",
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Draw the per-patch map over the distorted image at input resolution, with a colour legend."""
    kind, spec = check_map_options(kind, value_range)
    viewing = check_scale(scale)
    raw = raw or []
    check_inputs(ref, dist)
    check_outputs(output, *raw)
    with WorkProgress("loading") as progress:
        ref_image, dist_image = load_pair(ref, dist)  # bad images are reported before the model loads
        ref_pixels, dist_pixels = _scaled(ref_image, viewing), _scaled(dist_image, viewing)
        scorer = make_scorer(weights, device, precision, batch_size)
        from ..records import format_score

        progress.begin("scoring", 2 * _patches(ref_pixels.shape[2], ref_pixels.shape[1]), "patches")
        result = scorer.score_pair(ref_pixels, dist_pixels, progress=(lambda done, _: progress.update(done)))
        colours = _colours(scorer.info, kind, spec, drawn=True)
    sys.stdout.write(f"{format_score(result.score)}\t{dist}\n")
    _write_heatmap(output, dist, dist_image, result, kind, raw, scorer.info, colours)
    if stderr.is_terminal:
        note(scale_line(scorer.info))


def scale_line(info: WeightsInfo) -> str:
    """What the scores mean, for a terminal: ``radn: score scale: <the weights' score_scale>`` with the
    direction when the scale text does not say it, and what an identical copy scores when the
    metadata says (``identical_copy_score``, in the metadata or its metrics)."""
    scale = info.metadata.get("score_scale") or "unknown"
    line = f"radn: score scale: {scale}"
    if "is better" not in scale:
        line += f", {'higher' if info.higher_is_better else 'lower'} is better"
    identical = info.metadata.get("identical_copy_score", info.metrics.get("identical_copy_score"))
    try:
        line += f"; an identical copy scores about {float(identical):.2g}" if identical is not None else ""
    except (TypeError, ValueError):
        pass
    return line


class _StepCounter:
    """``score_pairs``' progress (patches done of each step, from 0) on the bar of all patches: a step
    starts where the bar stood when the pairs before it were done (``restart``)."""

    def __init__(self, progress: WorkProgress) -> None:
        self.progress = progress
        self.base = 0

    def __call__(self, done: int, total: int) -> None:
        self.progress.update(self.base + done)

    def restart(self) -> None:
        self.base = self.progress.done


def _patches(width: int, height: int) -> int:
    from ..tiling import grid_shape

    rows, cols = grid_shape(height, width)
    return rows * cols


def _scaled(image, viewing: Scale):
    """The pixels of ``image`` to score at the viewing scale (its own at native)."""
    from ..viewing import scaled_pixels

    pixels = scaled_pixels(image, viewing)
    return image.tensor if pixels is None else pixels


def _colours(info: WeightsInfo, kind: str, spec, *, drawn: bool) -> tuple[float, float] | None:
    """The colour range of the maps (None: each map's own min..max); a note when a fixed range of
    scores was asked for (the default) and the weights state no scale to fix it to."""
    from ..heatmap import color_range, scale_range

    scale = scale_range(info.metadata)
    if drawn and kind == "scores" and spec == "fixed" and scale is None:
        note(
            "radn: note: the weights state no score scale: map colours span each map's own min..max "
            "(--range LO,HI fixes them)"
        )
    return color_range(kind, spec, scale)


def _show_terminal_heatmap(path: Path, result, kind: str, colours, higher_is_better: bool) -> None:
    from ..heatmap import MAP_LABELS, result_map, terminal_heatmap

    grid = f"{result.grid[0]}x{result.grid[1]} patches"
    about = f"{MAP_LABELS[kind]} map ({grid}), score {result.score:.4f}"
    title = f"{path}: {about}"
    if len(title) > stderr.width:  # a long path would push what the map shows off the line: name only
        title = f"{path.name}: {about}"
    values = result_map(result, kind)
    map_ = terminal_heatmap(
        values,
        max_width=stderr.width,
        title=title,
        kind=kind,
        higher_is_better=higher_is_better,
        value_range=colours,
    )
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


def _write_heatmap(
    out: Path, dist: Path, image, result, kind: str, raw: list[Path], info: WeightsInfo, colours
) -> None:
    """The map over ``image`` at its input resolution (``viewing.heatmap_at_input``: also for a pair
    scored at another --scale) and its raw per-patch values."""
    from ..heatmap import result_map, write_raw
    from ..viewing import heatmap_at_input

    try:
        heatmap_at_input(
            image,
            result,
            kind=kind,
            title=f"{dist.name}: score {result.score:.4f}",
            higher_is_better=info.higher_is_better,
            value_range=colours,
        ).save(out)
        values = result_map(result, kind)
        for path in raw:
            write_raw(path, values)
    except OSError as exc:
        raise RadnError(f"cannot write heatmap: {exc.strerror or exc}", out) from exc
    written = [str(path) for path in (out, *raw)]
    note(f"radn: wrote {', '.join(written[:-1])} and {written[-1]}" if raw else f"radn: wrote {out}")
