"""`radn batch`: many pairs (two folders or a pairs list) scored into a crash-safe, resumable CSV.

On a terminal the bar counts pairs and moves within a pair as its patches are scored
(``PairsProgress``), so that a batch of big pairs does not sit still for minutes; piped, nothing is
drawn.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, RadnError, UsageError
from ..heatmap.choices import DEFAULT_MAP, DEFAULT_RANGE
from .console import ShownProgress, ctrl_c_deferred, note, warn
from .inputs import check_outputs, make_scorer
from .options import (
    BatchOpt,
    DeviceOpt,
    MapOpt,
    PairsPerStepOpt,
    Precision,
    PrecisionOpt,
    RangeOpt,
    ScaleOpt,
    VerboseOpt,
    WeightsOpt,
    WorkersOpt,
    check_map_options,
    check_scale,
    precision_name,
)
from .report import check_report_output, write_html_report


class EngineName(str, Enum):
    local = "local"
    ray = "ray"


# The options of `radn batch` alone (those shared with other commands are in options.py)
RefDirOpt = Annotated[
    Optional[Path], typer.Option("--ref-dir", help="Folder of reference images.", show_default=False)
]
DistDirOpt = Annotated[
    Optional[Path], typer.Option("--dist-dir", help="Folder of distorted images.", show_default=False)
]
PairsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--pairs",
        help="CSV with the header ref,dist (paths absolute or relative to the CSV's folder), "
        "instead of --ref-dir and --dist-dir.",
        show_default=False,
    ),
]
PairByOpt = Annotated[
    str,
    typer.Option(
        "--pair-by",
        help="How folders pair: path (same relative path), prefix (A0001_00_00.bmp -> A0001.bmp) or "
        "auto (whichever pairs more distorted images; path on a tie).",
    ),
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="CSV to write.", dir_okay=False)]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Continue an interrupted run: skip pairs done, retry failed ones."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")]
ReportOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--report",
        help="Also write an HTML report of the CSV (as `radn report` does), with the heatmaps drawn "
        "while scoring; only when the batch completes, not after Ctrl-C.",
        dir_okay=False,
        show_default=False,
    ),
]
EngineOpt = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="Who scores: local (this process) or ray (an actor pool on a Ray cluster; "
        "pip install 'radn[ray]'). The CSV is written here either way.",
    ),
]
RayAddressOpt = Annotated[
    Optional[str],
    typer.Option(
        "--ray-address",
        help="Ray cluster to join (as `ray start --head` prints it, auto, or ray://HOST:10001). "
        "Default: a local Ray instance for this run.",
        show_default=False,
    ),
]
ActorsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--actors",
        min=1,
        help="Ray actors, each loading the weights once. Default: one per GPU, else one per CPU.",
        show_default=False,
    ),
]
GpusPerActorOpt = Annotated[
    Optional[float],
    typer.Option(
        "--gpus-per-actor",
        min=0.0,
        help="GPUs per Ray actor (0: CPU actors). Default: 1 when the cluster has GPUs, else 0.",
        show_default=False,
    ),
]


def batch(
    *,
    ref_dir: RefDirOpt = None,
    dist_dir: DistDirOpt = None,
    pairs: PairsOpt = None,
    pair_by: PairByOpt = "auto",
    output: OutputOpt = Path("scores.csv"),
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    report: ReportOpt = None,
    kind: MapOpt = DEFAULT_MAP,
    value_range: RangeOpt = DEFAULT_RANGE,
    scale: ScaleOpt = "native",
    engine: EngineOpt = EngineName.local,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusPerActorOpt = None,
    workers: WorkersOpt = 0,
    pairs_per_step: PairsPerStepOpt = 0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Score many pairs to CSV (ref, dist, score, patches, width, height, weights, precision, error,
    scale).

    Rows are written as they are scored; Ctrl-C keeps them, and --resume goes on from there (the
    finished CSV in the input order). With --engine ray the pairs are scored on a Ray cluster with
    the same CSV, resume and error rows. --map and --range are those of the --report's heatmaps.
    """
    _check_options(pairs, ref_dir, dist_dir, resume, overwrite)
    kind, spec = check_map_options(kind, value_range)
    viewing = check_scale(scale)
    _check_engine_options(
        engine, ray_address, actors, gpus_per_actor, workers, pairs_per_step, device, precision
    )
    _check_outputs(output, report, kept=resume or overwrite)
    from ..pairing import pair_folders, read_pairs_csv

    pairing = read_pairs_csv(pairs) if pairs is not None else pair_folders(ref_dir, dist_dir, mode=pair_by)
    _report_unmatched(pairing)
    scorer, remote = None, None
    if engine is EngineName.ray:
        remote = _ray_engine(weights, ray_address, actors, gpus_per_actor, precision, batch_size, viewing)
        remote.connect()  # before the output opens: a wrong address or too few GPUs leave no file
    else:
        scorer = make_scorer(weights, device, precision, batch_size)
    scoring = remote if remote is not None else scorer
    info, scored_in = scoring.info, scoring.precision
    from ..batch import run_batch
    from ..report import BatchHeatmaps, read_results

    pictures = (
        BatchHeatmaps(report, info, scored_in, kind=kind, value_range=spec, scale=viewing.text)
        if report is not None
        else None
    )
    started = time.perf_counter()
    progress = PairsProgress()
    try:
        summary = run_batch(
            scorer,
            pairing.pairs,
            output,
            resume=resume,
            overwrite=overwrite,
            workers=workers,
            pairs_per_step=pairs_per_step,
            progress=progress,
            patches=progress.patches,
            on_item=pictures,
            engine=remote,
            scale=None if remote is not None else viewing,
        )
    finally:
        progress.stop()
    note(_summary_line(summary, time.perf_counter() - started, output))
    if summary.interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if pictures is not None:
        warn(pictures.error)
        write_html_report(
            read_results(output),
            report,
            info=info,
            scorer=lambda: scorer or make_scorer(weights, device, precision, batch_size),
            kind=kind,
            value_range=spec,
            workers=workers,
        )
    if summary.failed:
        raise typer.Exit(int(ExitCode.ERROR))


class PairsProgress(ShownProgress):
    """The batch's bar (on a terminal only): pairs done, and within the pair in hand the share of its
    patches scored (``patches``, the pipeline's step progress), so that the bar and its time left
    move during a big pair. A step of several small pairs (a GPU group) moves it by at most one pair
    before they land."""

    finished = 0  # pairs done in the stage

    def start(self, label: str, total: int) -> None:
        super().start(label, total)
        self.finished = 0

    def advance(self) -> None:
        self.finished += 1
        self._show(self.finished)

    def patches(self, done: int, total: int) -> None:
        if total > 0:
            self._show(self.finished + min(done / total, 0.999))

    def _show(self, completed: float) -> None:
        if self.bar is not None:
            self.bar.bar.update(self.bar.task, completed=completed)


def _check_options(pairs, ref_dir, dist_dir, resume: bool, overwrite: bool) -> None:
    if pairs is not None and (ref_dir is not None or dist_dir is not None):
        raise UsageError("give either --pairs or --ref-dir with --dist-dir, not both")
    if pairs is None and (ref_dir is None or dist_dir is None):
        raise UsageError("give --ref-dir and --dist-dir, or --pairs")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")


def _check_outputs(output: Path, report: Path | None, *, kept: bool) -> None:
    """The CSV (and the report) can be written, and an existing CSV is to be resumed or replaced
    (``kept``): the results writer refuses it too, but only after the pairs are read and the model
    loaded."""
    check_outputs(output)
    if report is not None:
        check_report_output(report, output)
    if not kept and output.is_file() and output.stat().st_size > 0:
        raise RadnError("exists; use --resume to continue it or --overwrite to replace it", output)


def _summary_line(summary, seconds: float, output: Path) -> str:
    interrupted = " (interrupted)" if summary.interrupted else ""
    return (
        f"radn: {summary.scored} scored, {summary.failed} failed, {summary.skipped} already done"
        f"{interrupted} in {seconds:.1f} s -> {output}"
    )


def _check_engine_options(
    engine, ray_address, actors, gpus_per_actor, workers, pairs_per_step, device, precision
):
    """The Ray options need --engine ray; the local engine's options do not apply to it."""
    if engine is not EngineName.ray:
        given = [
            flag
            for flag, value in (
                ("--ray-address", ray_address),
                ("--actors", actors),
                ("--gpus-per-actor", gpus_per_actor),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)} need --engine ray")
        return
    local = [flag for flag, value in (("--workers", workers), ("--pairs-per-step", pairs_per_step)) if value]
    if device != "auto":
        local.append("--device (the actors' device follows --gpus-per-actor)")
    if precision_name(precision) == "fp16" and gpus_per_actor == 0:
        local.append("--precision fp16 with --gpus-per-actor 0 (fp16 runs on GPUs only)")
    if local:
        raise UsageError(f"{', '.join(local)}: not with --engine ray")


def _ray_engine(weights, address, actors, gpus_per_actor, precision, batch_size, viewing):
    with ctrl_c_deferred():
        from ..engines.ray_engine import RayEngine

        return RayEngine(
            weights,
            address=address,
            actors=actors,
            gpus_per_actor=gpus_per_actor,
            precision=precision_name(precision),
            batch_size=batch_size,
            scale=viewing.text,
        )


def _report_unmatched(pairing) -> None:
    for label, paths in (
        ("distorted without reference", pairing.unmatched_dist),
        ("references without distorted", pairing.unused_refs),
    ):
        if paths:
            shown = ", ".join(str(p) for p in paths[:5])
            more = f" (and {len(paths) - 5} more)" if len(paths) > 5 else ""
            note(f"radn: {len(paths)} {label}: {shown}{more}")
