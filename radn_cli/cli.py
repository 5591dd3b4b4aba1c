"""The `radn` command line: parse, call the library, print. Data on stdout, everything for humans on stderr.

Heavy modules (torch and everything that imports it) are imported inside the commands, so that
`radn --help` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
import time
import traceback
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import ExitCode, RadnError, UsageError, first_line

if TYPE_CHECKING:
    from .scoring import Scorer

app = typer.Typer(
    name="radn",
    help="Perceptual full-reference image quality with RADN: scores, rankings, heatmaps, batches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
weights_app = typer.Typer(help="List, inspect, convert and install model weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")

stderr = Console(stderr=True, highlight=False)

# ---- shared options ------------------------------------------------------------------------------

WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--weights",
        "-w",
        help="Weights file (default: $RADN_WEIGHTS, user data dir, shipped).",
        dir_okay=False,
        show_default=False,
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
BatchOpt = Annotated[
    Optional[int],
    typer.Option(
        "--batch-size",
        "-b",
        min=1,
        help="Patches per forward pass (bounds memory; default 256 on the CPU, 2048 on CUDA).",
        show_default=False,
    ),
]


class Precision(str, Enum):
    """--precision values; a choice, so that a typo is a usage error (exit 2) listing the valid values."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


PrecisionOpt = Annotated[
    Precision,
    typer.Option("--precision", "-p", help="fp32, bf16 (CPU/GPU) or fp16 (GPU).", case_sensitive=False),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and details.")]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"radn {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Perceptual full-reference image quality with RADN."""


def handle_errors(func):
    """Turn errors into one line on stderr and an exit code; tracebacks only with --verbose."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = bool(kwargs.get("verbose")) or bool(os.environ.get("RADN_VERBOSE"))
        try:
            with _ctrl_c_deferred():  # every command needs PyTorch: load it where Ctrl-C is safe
                import torch  # noqa: F401
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # the reader of stdout went away (`radn score ... | head -1`): stop quietly
            _silence_stdout()
            raise typer.Exit(int(ExitCode.ERROR)) from None
        except RadnError as exc:
            _error(str(exc), verbose)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            _error("interrupted", verbose)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except MemoryError:
            _error("out of memory; try a smaller --batch-size", verbose)
            raise typer.Exit(int(ExitCode.ERROR)) from None
        except Exception as exc:  # the last line of defence: never a bare traceback
            message = first_line(exc)
            if "out of memory" in message.lower():
                _error("out of memory on the device; try a smaller --batch-size", verbose)
            else:
                _error(
                    f"unexpected {type(exc).__name__}: {message} (run with --verbose for details)", verbose
                )
            raise typer.Exit(int(ExitCode.ERROR)) from None

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's last flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (tests, embedding)
        pass


def _error(message: str, verbose: bool) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    _say(f"radn: error: {_one_line(message)}", prefix_style="bold red", prefix_len=len("radn: error:"))


def _note(message: str) -> None:
    _say(_one_line(message))


def _one_line(message: str) -> str:
    """Messages are one line on stderr, whatever a path or an exception text contains."""
    return " ".join(str(message).splitlines())


def _say(line: str, *, prefix_style: str | None = None, prefix_len: int = 0) -> None:
    """One line on stderr: plain text when stderr is not a terminal (never wrapped, no markup parsing,
    no escape codes), Rich with a coloured prefix on a terminal."""
    if not stderr.is_terminal:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        return
    from rich.text import Text

    text = Text(line)
    if prefix_style:
        text.stylize(prefix_style, 0, prefix_len)
    stderr.print(text, soft_wrap=True)


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Hold Ctrl-C while PyTorch loads (imports, weights, model to device), then act on it.

    A KeyboardInterrupt raised inside code that PyTorch's import runs through the C API (pybind11's
    exec) makes CPython remember it as unhandled even after we catch it, and the process then ends
    by the signal itself (exit -2) instead of 130; now and then pybind11 aborts instead (-6).
    Measured with `radn batch` interrupted 0.9-2.1 s after its start: about 1 run in 10. So while
    loading, SIGINT only records itself; once loading is done a recorded Ctrl-C is raised here, in
    our own code, and handled like any other. Main thread only (where Python runs signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _make_scorer(
    weights: Path | None, device: str, precision: Precision | str, batch_size: int | None
) -> Scorer:
    with _ctrl_c_deferred():
        from .scoring import Scorer, keep_freed_memory, precision_warning
        from .weights import load_weights, resolve_weights

        resolved = resolve_weights(weights)
        precision = precision.value if isinstance(precision, Precision) else precision
        keep_freed_memory()
        scorer = Scorer(
            load_weights(resolved.path), device=device, precision=precision, batch_size=batch_size
        )
        if scorer.device.type == "cuda":
            import torchvision.ops  # noqa: F401  (the deformable kernel; imported on first use otherwise)
    _warn_precision(precision_warning(precision, scorer.device))
    return scorer


def _warn_precision(warning: str | None) -> None:
    if warning:
        line = _one_line(f"radn: warning: {warning}")
        _say(line, prefix_style="bold yellow", prefix_len=len("radn: warning:"))


def _load_pair_images(ref: Path, dist: Path):
    from .images import check_pair, load_image

    ref_image = load_image(ref)
    dist_image = load_image(dist)
    check_pair(ref_image, dist_image, ref_path=ref, dist_path=dist)
    _print_notes(ref_image)
    _print_notes(dist_image)
    return ref_image, dist_image


def _check_outputs(*paths: Path | None) -> None:
    """Refuse an output that cannot be written (missing or read-only folder) before any work is done."""
    from .results import check_writable

    for path in paths:
        if path is not None:
            check_writable(path)


def _print_notes(image) -> None:
    for note in image.notes:
        _note(f"radn: note: {image.path}: {note}")


# ---- radn score ----------------------------------------------------------------------------------


@app.command()
@handle_errors
def score(
    ref: Annotated[Path, typer.Argument(help="Reference (pristine) image.", show_default=False)],
    dist: Annotated[list[Path], typer.Argument(help="One or more distorted images.", show_default=False)],
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
    from .images import check_pair, load_image
    from .report import error_record, format_score, heatmap_paths, model_record, score_record, summary_record

    _check_outputs(heatmap)
    ref_image = load_image(ref)  # a bad reference is reported before the model is loaded
    check_pair(ref_image, ref_image, ref_path=ref, dist_path=ref)  # too small: once, not once per image
    _print_notes(ref_image)
    scorer = _make_scorer(weights, device, precision, batch_size)
    heatmap_outputs = heatmap_paths(heatmap, dist) if heatmap is not None else {}
    reference = None
    records: list[dict] = []
    interactive = stderr.is_terminal and not quiet and not json_out
    for path in dist:
        try:
            dist_image = load_image(path)
            check_pair(ref_image, dist_image, ref_path=ref, dist_path=path)
        except RadnError as exc:
            _error(str(exc), verbose)
            records.append(error_record(path, str(exc)))
            continue
        _print_notes(dist_image)
        if reference is None:
            reference = scorer.encode_reference(ref_image.tensor)
        result = scorer.score(reference, dist_image.tensor)
        records.append(score_record(path, result))
        if not json_out:
            sys.stdout.write(f"{format_score(result.score)}\t{path}\n")
            sys.stdout.flush()
        if heatmap is not None:
            _write_heatmap(heatmap_outputs[path], path, dist_image, result, "weights", None)
        if interactive:
            _show_terminal_heatmap(path, result)
    summary = summary_record(records, higher_is_better=scorer.info.higher_is_better)
    if json_out:
        document = {
            "schema": 1,
            "reference": str(ref),
            "model": model_record(scorer.info, device=str(scorer.device), precision=scorer.precision),
            "results": records,
            "summary": summary,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif interactive and summary["scored"] > 1:
        _show_ranking(records, scorer.info.higher_is_better)
    if summary["failed"]:
        raise typer.Exit(int(ExitCode.ERROR))


def _show_terminal_heatmap(path: Path, result) -> None:
    from .heatmap import terminal_heatmap

    about = f"patch weights ({result.grid[0]}x{result.grid[1]} patches), score {result.score:.4f}"
    title = f"{path}: {about}"
    if len(title) > stderr.width:  # a long path would push what the map shows off the line: name only
        title = f"{path.name}: {about}"
    stderr.print(terminal_heatmap(result.patch_weights.numpy(), max_width=stderr.width, title=title))
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


def _write_heatmap(out: Path, dist: Path, image, result, kind: str, raw: Path | None) -> None:
    import numpy as np
    import torch

    from .heatmap import patch_map, render_overlay, write_raw_csv

    values = patch_map(result.patch_scores.numpy(), result.patch_weights.numpy(), result.grid, kind)
    pixels = (image.tensor.permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8)).numpy()
    title = f"{dist.name}: score {result.score:.4f}"
    try:
        render_overlay(np.ascontiguousarray(pixels), values, kind=kind, title=title).save(out)
        if raw is not None:
            write_raw_csv(raw, values)
    except OSError as exc:
        raise RadnError(f"cannot write heatmap: {exc.strerror or exc}", out) from exc
    _note(f"radn: wrote {out}" + (f" and {raw}" if raw is not None else ""))


# ---- radn heatmap --------------------------------------------------------------------------------


@app.command("heatmap")
@handle_errors
def heatmap_command(
    ref: Annotated[Path, typer.Argument(help="Reference image.", show_default=False)],
    dist: Annotated[Path, typer.Argument(help="Distorted image.", show_default=False)],
    *,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG to write.", dir_okay=False)],
    kind: Annotated[
        str, typer.Option("--map", help="weights, scores, or contribution (w_i * s_i / sum w).")
    ] = "weights",
    raw: Annotated[
        Optional[Path],
        typer.Option("--raw", help="Also write the raw per-patch values as CSV.", dir_okay=False),
    ] = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Draw the per-patch map over the distorted image at input resolution, with a colour legend."""
    from .heatmap import MAPS
    from .report import format_score

    if kind not in MAPS:
        raise UsageError(f"--map must be one of {', '.join(MAPS)}, not {kind!r}")
    _check_outputs(output, raw)
    ref_image, dist_image = _load_pair_images(ref, dist)  # bad images are reported before the model loads
    scorer = _make_scorer(weights, device, precision, batch_size)
    result = scorer.score_pair(ref_image.tensor, dist_image.tensor)
    sys.stdout.write(f"{format_score(result.score)}\t{dist}\n")
    _write_heatmap(output, dist, dist_image, result, kind, raw)


# ---- radn batch ----------------------------------------------------------------------------------


@app.command()
@handle_errors
def batch(
    *,
    ref_dir: Annotated[Optional[Path], typer.Option("--ref-dir", help="Folder of reference images.")] = None,
    dist_dir: Annotated[
        Optional[Path], typer.Option("--dist-dir", help="Folder of distorted images.")
    ] = None,
    pairs: Annotated[
        Optional[Path], typer.Option("--pairs", help="CSV with header ref,dist (paths relative to the CSV).")
    ] = None,
    pair_by: Annotated[
        str,
        typer.Option("--pair-by", help="auto, path (same relative path) or prefix (A0001_00_00 -> A0001)."),
    ] = "auto",
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write.", dir_okay=False)] = Path(
        "scores.csv"
    ),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run: skip pairs done.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=0, help="Threads decoding images ahead (0: 2 on the CPU, up to 8 on CUDA)."
        ),
    ] = 0,
    pairs_per_step: Annotated[
        int,
        typer.Option(
            "--pairs-per-step",
            min=0,
            help="Pairs scored together (0: 1 on the CPU, on CUDA enough to fill --batch-size, up to 64).",
        ),
    ] = 0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Score many pairs to CSV (ref, dist, score, patches, width, height, weights, precision, error)."""
    from .batch import run_batch
    from .pairing import pair_folders, read_pairs_csv
    from .results import check_writable

    if pairs is not None and (ref_dir is not None or dist_dir is not None):
        raise UsageError("give either --pairs or --ref-dir with --dist-dir, not both")
    if pairs is None and (ref_dir is None or dist_dir is None):
        raise UsageError("give --ref-dir and --dist-dir, or --pairs")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    check_writable(output)
    if not (resume or overwrite) and output.is_file() and output.stat().st_size > 0:
        # the results writer refuses this too, but only after the folders are paired and the model loaded
        raise RadnError("exists; use --resume to continue it or --overwrite to replace it", output)
    pairing = read_pairs_csv(pairs) if pairs is not None else pair_folders(ref_dir, dist_dir, mode=pair_by)
    _report_unmatched(pairing)
    scorer = _make_scorer(weights, device, precision, batch_size)
    started = time.perf_counter()
    bars: list[_Bar | None] = []
    try:
        summary = run_batch(
            scorer,
            pairing.pairs,
            output,
            resume=resume,
            overwrite=overwrite,
            workers=workers,
            pairs_per_step=pairs_per_step,
            on_start=lambda total: bars.append(_progress_bar(total, "scoring")),
            on_row=lambda: bars[-1] and bars[-1].advance(),
            on_error=lambda message: _error(message, False),
        )
    finally:
        for bar in bars:
            if bar is not None:
                bar.stop()
    elapsed = time.perf_counter() - started
    _note(
        f"radn: {summary.scored} scored, {summary.failed} failed, {summary.skipped} already done"
        f"{' (interrupted)' if summary.interrupted else ''} in {elapsed:.1f} s -> {output}"
    )
    if summary.interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if summary.failed:
        raise typer.Exit(int(ExitCode.ERROR))


def _report_unmatched(pairing) -> None:
    for label, paths in (
        ("distorted without reference", pairing.unmatched_dist),
        ("references without distorted", pairing.unused_refs),
    ):
        if paths:
            shown = ", ".join(str(p) for p in paths[:5])
            more = f" (and {len(paths) - 5} more)" if len(paths) > 5 else ""
            _note(f"radn: {len(paths)} {label}: {shown}{more}")


# ---- radn weights ... ----------------------------------------------------------------------------


@weights_app.command("list")
@handle_errors
def weights_list(verbose: VerboseOpt = False) -> None:
    """Every weights file radn can see, in lookup order (the first is used)."""
    from .weights import list_weights, read_info

    found = list_weights()
    if not found:
        raise RadnError("no RADN weights are installed; see `radn weights --help`")
    for source, path in found:
        try:
            info = read_info(path)
            sys.stdout.write(f"{info.weights_id}\t{info.config.arch}\t{source}\t{path}\n")
        except RadnError as exc:
            sys.stdout.write(f"(unreadable)\t-\t{source}\t{path}\n")
            _error(str(exc), verbose)


@weights_app.command("info")
@handle_errors
def weights_info(
    path: Annotated[Optional[Path], typer.Argument(help="Weights file (default: the one in use).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Metadata of a weights file as JSON: model, training data, score scale and direction, metrics."""
    from .weights import load_weights, resolve_weights

    if path is None:
        resolved = resolve_weights(None)
        path, found_by = resolved.path, resolved.source
    else:  # read as named (resolve_weights would call a missing file "given with --weights")
        found_by = "argument"
    loaded = load_weights(path)  # verifies the checksum
    info = loaded.info
    document = {
        "weights": info.weights_id,
        "path": str(info.path),
        "found_by": found_by,
        "checksum": "ok",
        **{k: v for k, v in info.metadata.items() if k not in ("config", "metrics")},
        "config": json.loads(info.metadata["config"]),
        "metrics": info.metrics,
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@weights_app.command("convert")
@handle_errors
def weights_convert(
    checkpoint: Annotated[Path, typer.Argument(help="Authors' checkpoint (torch.save state dict).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="safetensors file to write.", dir_okay=False)
    ],
    name: Annotated[Optional[str], typer.Option("--name", help="Weights name (default: file name).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Convert a reference-code checkpoint (RADN or WResNet, legacy format, `module.` prefix) to radn weights.

    Loads with torch.load(weights_only=True): no arbitrary code from the file is run.
    """
    from .weights import convert_checkpoint

    info = convert_checkpoint(checkpoint, output, name=name)
    sys.stdout.write(f"{info.weights_id}\t{info.config.arch}\t{output}\n")


@weights_app.command("install")
@handle_errors
def weights_install(
    path: Annotated[Path, typer.Argument(help="radn weights file to make the user's default.")],
    verbose: VerboseOpt = False,
) -> None:
    """Verify a weights file and copy it to the user data dir, where it becomes the default."""
    from .weights import install_weights

    target = install_weights(path)
    sys.stdout.write(f"{target}\n")


# ---- radn eval -----------------------------------------------------------------------------------


@app.command("eval")
@handle_errors
def eval_command(
    database: Annotated[
        Path, typer.Argument(help="Folder of a human-rated database (or a ref,dist,mos CSV).")
    ],
    *,
    layout: Annotated[
        str, typer.Option("--layout", help="auto, tid2013, kadid10k, pipal, live, csiq or csv.")
    ] = "auto",
    metric: Annotated[
        str, typer.Option("--metric", help="Comma-separated: radn, psnr, ssim, ms-ssim.")
    ] = "radn,psnr,ssim,ms-ssim",
    plot: Annotated[
        Optional[Path],
        typer.Option("--plot", help="Scatter plot PNG (several metrics: name_<metric>.png).", dir_okay=False),
    ] = None,
    scores: Annotated[
        Optional[Path], typer.Option("--scores", help="Per-pair predictions as CSV.", dir_okay=False)
    ] = None,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="CSV layout: its mos column is lower-is-better (DMOS).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = None,
    precision: PrecisionOpt = Precision.fp32,
    verbose: VerboseOpt = False,
) -> None:
    """Agreement with human scores: SROCC, KRCC, PLCC (raw and 4-parameter logistic), RMSE, per-type SROCC.

    RADN and the classical PSNR, SSIM and MS-SSIM are computed on the same pairs, side by side.
    """
    from .evaluation.databases import load_database
    from .evaluation.runner import METRICS, evaluate

    metrics = tuple(m.strip().lower() for m in metric.split(",") if m.strip())
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise UsageError(f"--metric takes {', '.join(METRICS)}; got {metric!r}")
    _check_outputs(plot, scores)
    db = load_database(
        database,
        None if layout == "auto" else layout,
        **({"higher_is_better": False} if lower_is_better else {}),
    )
    scorer = _make_scorer(weights, device, precision, batch_size) if "radn" in metrics else None
    _note(f"radn: {db.name}: {len(db.pairs)} pairs, human scores {db.scale}")
    progress = _progress_bar(len(db.pairs), "evaluating")
    try:
        result = evaluate(
            db,
            metrics,
            scorer=scorer,
            on_pair=lambda done, total: progress and progress.advance(),
            on_error=lambda message: _error(message, False),
        )
    finally:
        if progress:
            progress.stop()
    for name, (count, reason) in result.skipped.items():
        _note(f"radn: note: {name} skipped on {count} pair(s): {reason}")
    if scores is not None:
        _write_eval_scores(scores, result)
    if plot is not None:
        _write_eval_plots(plot, result, scorer)
    document = {
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
        "failed": len(result.errors),
        "skipped": {
            name: {"pairs": count, "reason": reason} for name, (count, reason) in result.skipped.items()
        },
        "metrics": result.reports,
    }
    if json_out:
        sys.stdout.write(json.dumps(document, indent=2, default=float) + "\n")
    else:
        _print_eval_table(result)
    if result.errors:
        raise typer.Exit(int(ExitCode.ERROR))


class _Bar:
    def __init__(self, total: int, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr
        )
        self.task = self.bar.add_task(label, total=total)
        self.bar.start()

    def advance(self) -> None:
        self.bar.advance(self.task)

    def stop(self) -> None:
        self.bar.stop()


def _progress_bar(total: int, label: str) -> _Bar | None:
    return _Bar(total, label) if stderr.is_terminal and total else None


def _print_eval_table(result) -> None:
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


def _write_eval_scores(path: Path, result) -> None:
    import csv

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "dist", "mos", "type", *result.metrics])
        for i, pair in enumerate(result.database.pairs):
            writer.writerow(
                [
                    pair.ref,
                    pair.dist,
                    repr(pair.mos),
                    pair.dist_type,
                    *(repr(float(result.predictions[m][i])) for m in result.metrics),
                ]
            )
    _note(f"radn: wrote {path}")


def _write_eval_plots(template: Path, result, scorer) -> None:
    from .evaluation.plot import scatter_plot

    several = len(result.metrics) > 1
    for name in result.metrics:
        out = template.with_name(f"{template.stem}_{name}{template.suffix}") if several else template
        report = result.reports[name]
        label = scorer.info.weights_id if name == "radn" and scorer is not None else name
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
        _note(f"radn: wrote {out}")


# ---- radn train ----------------------------------------------------------------------------------


@app.command()
@handle_errors
def train(
    *,
    photos: Annotated[Optional[Path], typer.Option("--photos", help="Folder of clean photos.")] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Run folder (checkpoint, log, weights).")
    ] = None,
    config: Annotated[
        Optional[Path], typer.Option("--config", help="Settings file (.json or .toml); flags override it.")
    ] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help="radn or wresnet.")] = None,
    no_deformable: Annotated[
        bool, typer.Option("--no-deformable", help="Ablation: no deformable step.")
    ] = False,
    no_attention: Annotated[
        bool, typer.Option("--no-attention", help="Ablation: no patch attention.")
    ] = False,
    pretrain_steps: Annotated[
        Optional[int], typer.Option("--pretrain-steps", min=0, help="Contrastive pretraining steps.")
    ] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=0, help="Regression steps.")] = None,
    photos_per_batch: Annotated[Optional[int], typer.Option("--photos-per-batch", min=1)] = None,
    per_photo: Annotated[
        Optional[int], typer.Option("--per-photo", min=1, help="Distorted versions per photo.")
    ] = None,
    patches: Annotated[
        Optional[int], typer.Option("--patches", min=1, help="32x32 patches per image.")
    ] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0.0)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    max_minutes: Annotated[
        Optional[float], typer.Option("--max-minutes", min=0.0, help="Stop and export after this wall time.")
    ] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Weights to fine-tune from.")] = None,
    db: Annotated[
        Optional[Path],
        typer.Option("--db", help="Human-rated database (any `radn eval` layout) for the regression stage."),
    ] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Name of the exported weights.")] = None,
    rank_weight: Annotated[
        Optional[float],
        typer.Option(
            "--rank-weight",
            min=0.0,
            help="Cross-type preference loss weight (default 1; 0: MSE only).",
        ),
    ] = None,
    ema: Annotated[
        Optional[float],
        typer.Option(
            "--ema",
            min=0.0,
            max=0.9999,
            help="Moving-average decay of exported weights (default 0: off).",
        ),
    ] = None,
    clean: Annotated[
        Optional[float],
        typer.Option("--clean", min=0.0, max=1.0, help="Chance a version is a clean copy (default 0)."),
    ] = None,
    shift: Annotated[
        Optional[float],
        typer.Option("--shift", min=0.0, max=1.0, help="Chance a version is shifted 0-2 px (default 0)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    device: DeviceOpt = "auto",
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32 or bf16.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Train weights on synthetic KADID-10k distortions of clean photos (contrastive, then regression).

    Writes OUT/best.safetensors (best on held-out photos), OUT/last.safetensors, OUT/last.ckpt, OUT/log.jsonl.
    """
    from .train.loop import TrainConfig
    from .train.loop import train as run_training

    flags = {
        "photos": None if photos is None else str(photos),
        "out": None if out is None else str(out),
        "arch": arch,
        "pretrain_steps": pretrain_steps,
        "steps": steps,
        "photos_per_batch": photos_per_batch,
        "per_photo": per_photo,
        "patches": patches,
        "lr": lr,
        "seed": seed,
        "max_minutes": max_minutes,
        "init": None if init is None else str(init),
        "db": None if db is None else str(db),
        "name": name,
        "rank_weight": rank_weight,
        "ema": ema,
        "clean": clean,
        "shift": shift,
        "precision": precision,
        "device": device,
        "deformable": False if no_deformable else None,
        "attention": False if no_attention else None,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    if config is not None:
        settings = TrainConfig.from_file(config, **flags)
    else:
        if "photos" not in flags or "out" not in flags:
            raise UsageError("give --photos and --out (or a --config file)")
        settings = TrainConfig(**flags)
    from .scoring import keep_freed_memory, precision_warning, resolve_device

    _warn_precision(precision_warning(settings.precision, resolve_device(settings.device)))
    keep_freed_memory()
    best = run_training(settings, resume=resume, on_event=_show_training_event)
    sys.stdout.write(f"{best}\n")


def _show_training_event(event: dict) -> None:
    kind = event["event"]
    if kind == "step":
        if event["step"] % 10 and "val_srocc" not in event and event["step"] != event["total"]:
            return
        line = (
            f"step {event['step']}/{event['total']} {event['stage']} loss {event['loss']:.4f} "
            f"lr {event['lr']:.2e} {event['images_per_s']:.1f} img/s"
        )
        if "val_srocc" in event:
            line += f" | held-out SROCC {event['val_srocc']:.4f} RMSE {event['val_rmse']:.4f}"
        _note(line)
    elif kind == "data":
        _note(
            f"radn: {event['train_photos']} training photos, {event['val_photos']} held out "
            f"({event['val_pairs']} validation pairs)"
        )
    elif kind == "note":
        _note(f"radn: {event['message']}")
    elif kind == "done":
        _note(
            f"radn: done at step {event['step']}; best held-out SROCC {event['best_val_srocc']:.4f} "
            f"at step {event['best_step']} ({event['seconds'] / 60:.1f} min)"
        )
    else:
        _note(f"radn: {kind} at step {event.get('step')}")


def _click_usage_error() -> type[Exception]:
    try:  # Typer 0.2x vendors Click; earlier versions use the click package
        from typer._click.exceptions import UsageError as ClickUsageError
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click.exceptions import UsageError as ClickUsageError
    return ClickUsageError


def main() -> None:
    """The `radn` entry point. Usage errors (a missing argument, an unknown option or value) are one
    `radn: error:` line like every other error, with the command's --help to try, and exit 2."""
    try:
        usage_error = _click_usage_error()
        try:
            code = app(standalone_mode=False, prog_name="radn")
        except usage_error as exc:
            if not exc.format_message().strip():  # a group called without a command: its help was shown
                sys.exit(exc.exit_code)
            command = exc.ctx.command_path if exc.ctx is not None else "radn"
            _say(
                f"radn: error: {_one_line(exc.format_message())} (try '{command} --help')",
                prefix_style="bold red",
                prefix_len=len("radn: error:"),
            )
            code = int(ExitCode.USAGE)
        sys.exit(code if isinstance(code, int) else 0)
    except (KeyboardInterrupt, typer.Abort):  # outside a command (inside one, handle_errors deals with it)
        sys.stderr.write("radn: interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
