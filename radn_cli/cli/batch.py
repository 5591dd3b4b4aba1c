"""`radn batch`: many pairs (two folders or a pairs list) scored into a crash-safe, resumable CSV."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, RadnError, UsageError
from .console import ProgressBar, ctrl_c_deferred, error, note, progress_bar, warn
from .inputs import check_outputs, make_scorer
from .options import (
    BatchOpt,
    DeviceOpt,
    PairsPerStepOpt,
    Precision,
    PrecisionOpt,
    VerboseOpt,
    WeightsOpt,
    WorkersOpt,
    precision_name,
)
from .report import check_report_output, write_html_report


class EngineName(str, Enum):
    local = "local"
    ray = "ray"


def batch(
    *,
    ref_dir: Annotated[
        Optional[Path], typer.Option("--ref-dir", help="Folder of reference images.", show_default=False)
    ] = None,
    dist_dir: Annotated[
        Optional[Path], typer.Option("--dist-dir", help="Folder of distorted images.", show_default=False)
    ] = None,
    pairs: Annotated[
        Optional[Path],
        typer.Option(
            "--pairs",
            help="CSV with the header ref,dist (paths absolute or relative to the CSV's folder), "
            "instead of --ref-dir and --dist-dir.",
            show_default=False,
        ),
    ] = None,
    pair_by: Annotated[
        str,
        typer.Option(
            "--pair-by",
            help="How folders pair: path (same relative path), prefix (A0001_00_00.bmp -> A0001.bmp) or "
            "auto (whichever pairs more distorted images; path on a tie).",
        ),
    ] = "auto",
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write.", dir_okay=False)] = Path(
        "scores.csv"
    ),
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run: skip pairs done, retry failed ones."),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    report: Annotated[
        Optional[Path],
        typer.Option(
            "--report",
            help="Also write an HTML report of the CSV (as `radn report` does), with the heatmaps drawn "
            "while scoring; only when the batch completes, not after Ctrl-C.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        EngineName,
        typer.Option(
            "--engine",
            help="Who scores: local (this process) or ray (an actor pool on a Ray cluster; "
            "pip install 'radn[ray]'). The CSV is written here either way.",
        ),
    ] = EngineName.local,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            "--ray-address",
            help="Ray cluster to join (as `ray start --head` prints it, auto, or ray://HOST:10001). "
            "Default: a local Ray instance for this run.",
            show_default=False,
        ),
    ] = None,
    actors: Annotated[
        Optional[int],
        typer.Option(
            "--actors",
            min=1,
            help="Ray actors, each loading the weights once. Default: one per GPU, else one per CPU.",
            show_default=False,
        ),
    ] = None,
    gpus_per_actor: Annotated[
        Optional[float],
        typer.Option(
            "--gpus-per-actor",
            min=0.0,
            help="GPUs per Ray actor (0: CPU actors). Default: 1 when the cluster has GPUs, else 0.",
            show_default=False,
        ),
    ] = None,
    workers: WorkersOpt = 0,
    pairs_per_step: PairsPerStepOpt = 0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Score many pairs to CSV (ref, dist, score, patches, width, height, weights, precision, error).

    Rows are written as they are scored; Ctrl-C keeps them, and --resume goes on from there. With
    --engine ray the pairs are scored on a Ray cluster with the same CSV, resume and error rows.
    """
    from ..pairing import pair_folders, read_pairs_csv

    if pairs is not None and (ref_dir is not None or dist_dir is not None):
        raise UsageError("give either --pairs or --ref-dir with --dist-dir, not both")
    if pairs is None and (ref_dir is None or dist_dir is None):
        raise UsageError("give --ref-dir and --dist-dir, or --pairs")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    _check_engine_options(
        engine, ray_address, actors, gpus_per_actor, workers, pairs_per_step, device, precision
    )
    check_outputs(output)
    if report is not None:
        check_report_output(report, output)
    if not (resume or overwrite) and output.is_file() and output.stat().st_size > 0:
        # the results writer refuses this too, but only after the folders are paired and the model loaded
        raise RadnError("exists; use --resume to continue it or --overwrite to replace it", output)
    pairing = read_pairs_csv(pairs) if pairs is not None else pair_folders(ref_dir, dist_dir, mode=pair_by)
    _report_unmatched(pairing)
    scorer, remote = None, None
    if engine is EngineName.ray:
        remote = _ray_engine(weights, ray_address, actors, gpus_per_actor, precision, batch_size)
        remote.connect()  # before the output opens: a wrong address or too few GPUs leave no file
        info, scored_in = remote.info, remote.precision
    else:
        scorer = make_scorer(weights, device, precision, batch_size)
        info, scored_in = scorer.info, scorer.precision
    from ..batch import run_batch
    from ..report import BatchHeatmaps

    pictures = BatchHeatmaps(report, info, scored_in) if report is not None else None
    started = time.perf_counter()
    bars: list[ProgressBar | None] = []
    try:
        summary = run_batch(
            scorer,
            pairing.pairs,
            output,
            resume=resume,
            overwrite=overwrite,
            workers=workers,
            pairs_per_step=pairs_per_step,
            on_start=lambda total: bars.append(progress_bar(total, "scoring")),
            on_row=lambda: bars[-1] and bars[-1].advance(),
            on_error=lambda message: error(message),
            on_item=pictures,
            engine=remote,
        )
    finally:
        for bar in bars:
            if bar is not None:
                bar.stop()
    elapsed = time.perf_counter() - started
    note(
        f"radn: {summary.scored} scored, {summary.failed} failed, {summary.skipped} already done"
        f"{' (interrupted)' if summary.interrupted else ''} in {elapsed:.1f} s -> {output}"
    )
    if summary.interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if pictures is not None:
        from ..report import read_results

        warn(pictures.error)
        write_html_report(
            read_results(output),
            report,
            info=info,
            scorer=lambda: scorer or make_scorer(weights, device, precision, batch_size),
            kind=pictures.kind,
            workers=workers,
        )
    if summary.failed:
        raise typer.Exit(int(ExitCode.ERROR))


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


def _ray_engine(weights, address, actors, gpus_per_actor, precision, batch_size):
    with ctrl_c_deferred():
        from ..engines.ray_engine import RayEngine

        return RayEngine(
            weights,
            address=address,
            actors=actors,
            gpus_per_actor=gpus_per_actor,
            precision=precision_name(precision),
            batch_size=batch_size,
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
