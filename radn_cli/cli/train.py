"""`radn train`: make weights from clean photos (synthetic KADID-10k distortions, human targets)."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..train.config import TrainConfig
from .console import load_torch, note, progress_shown, stderr, warn
from .options import DeviceOpt, TrainPrecisionOpt, VerboseOpt, precision_name

D = TrainConfig  # defaults shown in the help come from the settings' own definition


def train(
    *,
    photos: Annotated[
        Optional[Path], typer.Option("--photos", help="Folder of clean photos (searched recursively).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Run folder (checkpoint, log, exported weights).")
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", help="Settings file (.json or .toml, the settings' names); flags win."),
    ] = None,
    arch: Annotated[
        Optional[str],
        typer.Option(
            "--arch",
            help=f"radn, wresnet, or radn-lite (RADN on a pretrained EfficientNet-Lite0 trunk; needs "
            f"pip install 'radn[train]'). Default: {D.arch}.",
        ),
    ] = None,
    no_deformable: Annotated[
        bool, typer.Option("--no-deformable", help="Ablation: no deformable step.")
    ] = False,
    no_attention: Annotated[
        bool, typer.Option("--no-attention", help="Ablation: no patch attention.")
    ] = False,
    pretrain_steps: Annotated[
        Optional[int],
        typer.Option(
            "--pretrain-steps", min=0, help=f"Contrastive pretraining steps. Default: {D.pretrain_steps}."
        ),
    ] = None,
    steps: Annotated[
        Optional[int], typer.Option("--steps", min=0, help=f"Regression steps. Default: {D.steps}.")
    ] = None,
    photos_per_batch: Annotated[
        Optional[int],
        typer.Option("--photos-per-batch", min=1, help=f"Photos per batch. Default: {D.photos_per_batch}."),
    ] = None,
    per_photo: Annotated[
        Optional[int],
        typer.Option("--per-photo", min=1, help=f"Distorted versions per photo. Default: {D.per_photo}."),
    ] = None,
    patches: Annotated[
        Optional[int],
        typer.Option("--patches", min=1, help=f"32x32 patches per image. Default: {D.patches}."),
    ] = None,
    lr: Annotated[
        Optional[float],
        typer.Option(
            "--lr", min=0.0, help=f"Adam learning rate (cosine decay to a tenth). Default: {D.lr:g}."
        ),
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help=f"Random seed (batches, dropout). Default: {D.seed}.")
    ] = None,
    split_seed: Annotated[
        Optional[int],
        typer.Option(
            "--split-seed",
            help="Seed of the held-out photos and the validation set, to compare runs with other --seed "
            "values on one held-out set. Default: --seed.",
        ),
    ] = None,
    max_minutes: Annotated[
        Optional[float],
        typer.Option(
            "--max-minutes", min=0.0, help="Stop and export after this wall time. Default: no limit."
        ),
    ] = None,
    init: Annotated[
        Optional[Path],
        typer.Option("--init", help="Weights to fine-tune from. Default: a fresh initialisation."),
    ] = None,
    db: Annotated[
        Optional[Path],
        typer.Option(
            "--db",
            help="Human-rated database (any `radn eval` layout) for the regression stage. "
            "Default: synthetic targets.",
        ),
    ] = None,
    name: Annotated[
        Optional[str], typer.Option("--name", help=f"Name of the exported weights. Default: {D.name}.")
    ] = None,
    rank_weight: Annotated[
        Optional[float],
        typer.Option(
            "--rank-weight",
            min=0.0,
            help=f"Weight of the cross-type preference loss beside the MSE (0: MSE only). "
            f"Default: {D.rank_weight:g}.",
        ),
    ] = None,
    ema: Annotated[
        Optional[float],
        typer.Option(
            "--ema",
            min=0.0,
            max=0.9999,
            help="Decay of the moving average that is validated and exported (0: off). Default: 0.",
        ),
    ] = None,
    clean: Annotated[
        Optional[float],
        typer.Option(
            "--clean",
            min=0.0,
            max=1.0,
            help="Chance that a version is a clean copy of the photo, 0-2 px shifted. Default: 0.",
        ),
    ] = None,
    shift: Annotated[
        Optional[float],
        typer.Option(
            "--shift", min=0.0, max=1.0, help="Chance that a distorted version is shifted 0-2 px. Default: 0."
        ),
    ] = None,
    data_workers: Annotated[
        Optional[int],
        typer.Option(
            "--data-workers",
            min=0,
            help="Processes making the synthetic batches ahead (a GPU needs many: one per CPU core). "
            "Default: 0, in the training process.",
        ),
    ] = None,
    window: Annotated[
        Optional[int],
        typer.Option(
            "--window",
            min=0,
            help="Distort a KADID-shaped region this wide (512: KADID's 512x384 images) around each crop, "
            "then cut the crop out; 0 distorts the crop alone. Default: 0.",
        ),
    ] = None,
    focus: Annotated[
        Optional[str],
        typer.Option(
            "--focus",
            help="KADID distortion types (ids 1-25, comma-separated) drawn with --focus-weight times the "
            "others' weight in the regression stage (without replacement), e.g. 16,17,18,25. Default: none.",
        ),
    ] = None,
    focus_weight: Annotated[
        Optional[float],
        typer.Option(
            "--focus-weight",
            min=0.0,
            help="How much more weight the --focus types get in the draw. Default: 2.",
        ),
    ] = None,
    warp: Annotated[
        Optional[float],
        typer.Option(
            "--warp",
            min=0.0,
            max=1.0,
            help="Share of the clean copies rescaled by up to 1% or warped by up to 1 px instead of shifted "
            "(teaches tolerance of small geometric changes). Default: 0.",
        ),
    ] = None,
    folds: Annotated[
        Optional[int],
        typer.Option(
            "--folds",
            min=0,
            help="Split the --db references into this many folds (sorted, round robin); --fold is held out "
            "for validation and never trained on. Default: 0 (all references train).",
        ),
    ] = None,
    fold: Annotated[
        Optional[int], typer.Option("--fold", min=0, help="The held-out fold of --folds. Default: 0.")
    ] = None,
    stage: Annotated[
        Optional[str],
        typer.Option(
            "--stage",
            help="radn-lite: heads (trunk frozen, on per-patch statistics stored once per version) or "
            f"end-to-end (from --init). Default: {D.stage}.",
        ),
    ] = None,
    width: Annotated[
        Optional[int],
        typer.Option("--width", min=8, help=f"radn-lite: patch vector size. Default: {D.width}."),
    ] = None,
    compare_from: Annotated[
        Optional[int],
        typer.Option(
            "--compare-from",
            help="radn-lite: the finest stride (1 = pixels, 2, 4 ... 32) whose feature differences the heads "
            "see; coarser ignores what a 1-2 px misalignment changes. Default: 1.",
        ),
    ] = None,
    texture: Annotated[
        Optional[bool],
        typer.Option(
            "--texture/--no-texture",
            help="radn-lite: also compare the two images' patch means and variances of every feature "
            "channel (nearly blind to a 1-2 px misalignment, as DISTS). Default: off.",
        ),
    ] = None,
    features: Annotated[
        Optional[Path],
        typer.Option(
            "--features",
            help="radn-lite heads stage: folder of the stored statistics (shared by runs with the same "
            "data settings). Default: OUT/features.",
        ),
    ] = None,
    feature_visits: Annotated[
        Optional[int],
        typer.Option(
            "--feature-visits",
            min=1,
            help=f"radn-lite heads stage: photo visits to store (--per-photo versions each). "
            f"Default: {D.feature_visits}.",
        ),
    ] = None,
    trunk_lr: Annotated[
        Optional[float],
        typer.Option(
            "--trunk-lr",
            min=0.0,
            help=f"radn-lite end-to-end: the trunk's learning rate, relative to --lr. "
            f"Default: {D.trunk_lr:g}.",
        ),
    ] = None,
    db_pairs: Annotated[
        Optional[int],
        typer.Option(
            "--db-pairs",
            min=1,
            help=f"radn-lite: --db pairs per step beside the synthetic ones. Default: {D.db_pairs}.",
        ),
    ] = None,
    db_weight: Annotated[
        Optional[float],
        typer.Option(
            "--db-weight",
            min=0.0,
            help=f"radn-lite: weight of the --db pairs' loss. Default: {D.db_weight:g}.",
        ),
    ] = None,
    invariance: Annotated[
        Optional[float],
        typer.Option(
            "--invariance",
            min=0.0,
            help="radn-lite heads stage: weight of a loss that scores each clean copy (shifted, rescaled, "
            "warped) as the identical copy of its photo. Default: 0 (off).",
        ),
    ] = None,
    db_invariance: Annotated[
        Optional[float],
        typer.Option(
            "--db-invariance",
            min=0.0,
            help="radn-lite with --db: weight of a loss that keeps every rated distorted image at or below "
            "the score of its reference's identical copy. Default: 0 (off).",
        ),
    ] = None,
    db_copies: Annotated[
        Optional[int],
        typer.Option(
            "--db-copies",
            min=0,
            help="radn-lite with --db and --invariance: clean geometric copies of each trained --db "
            "reference (moved 1-2 px, rescaled up to 1%, warped up to 1 px), scored as its identical copy "
            "with --invariance's weight. Default: 0 (none).",
        ),
    ] = None,
    db_types: Annotated[
        Optional[int],
        typer.Option(
            "--db-types",
            min=0,
            help="radn-lite with --db: each step's --db pairs come from this many distortion types "
            "(--db-pairs / --db-types each), so the preference loss sees more pairs of one type across "
            "references. Default: 0 (any pairs).",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    device: DeviceOpt = "auto",
    precision: TrainPrecisionOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Train weights on synthetic KADID-10k distortions of clean photos (contrastive, then regression).

    Writes OUT/best.safetensors (best on held-out photos), OUT/last.safetensors, OUT/last.ckpt, OUT/log.jsonl.
    Data-parallel under torchrun: `torchrun --nproc-per-node N -m radn_cli train ...` (rank 0 writes).
    """
    options = locals()  # before any other name: the options as given (None: not given)
    flags = {
        f.name: _setting(options[f.name]) for f in fields(TrainConfig) if options.get(f.name) is not None
    }
    if focus is not None:
        flags["focus"] = _type_ids(focus)
    if no_deformable:
        flags["deformable"] = False
    if no_attention:
        flags["attention"] = False
    if config is not None:
        settings = TrainConfig.from_file(config, **flags)
    else:
        if "photos" not in flags or "out" not in flags:
            raise UsageError("give --photos and --out (or a --config file)")
        settings = TrainConfig(**flags)
    load_torch()  # the settings are checked: now PyTorch
    from ..devices import keep_freed_memory, precision_warning, resolve_device
    from ..train.distributed import from_environment
    from ..train.trainer import train as run_training

    warn(precision_warning(settings.precision, resolve_device(settings.device)))
    keep_freed_memory()
    with progress_shown() as progress:
        best = run_training(settings, resume=resume, on_event=show_training_event, progress=progress)
    if from_environment().main:  # under torchrun every rank returns here; one line is the answer
        sys.stdout.write(f"{best}\n")


def show_training_event(event: dict) -> None:
    kind = event["event"]
    if kind == "step":
        if "val_srocc" not in event and (
            stderr.is_terminal or (event["step"] % 10 and event["step"] != event["total"])
        ):
            return  # a terminal shows the steps in the progress bar; elsewhere a line every 10 steps
        line = (
            f"step {event['step']}/{event['total']} {event['stage']} loss {event['loss']:.4f} "
            f"lr {event['lr']:.2e} {event['images_per_s']:.1f} img/s"
        )
        if "val_srocc" in event:
            line += f" | held-out SROCC {event['val_srocc']:.4f}"
            if "val_rmse" in event:
                line += f" RMSE {event['val_rmse']:.4f}"
            if "db_srocc" in event:
                line += f" | held-out --db fold SROCC {event['db_srocc']:.4f}"
        note(line)
    elif kind == "data":
        note(
            f"radn: {event['train_photos']} training photos, {event['val_photos']} held out "
            f"({event['val_pairs']} validation pairs)"
        )
    elif kind == "signal":  # TrainingStopped says what was saved, in the error line
        return
    elif kind == "note":
        note(f"radn: {event['message']}")
    elif kind == "done":
        note(
            f"radn: done at step {event['step']}; best held-out SROCC {event['best_val_srocc']:.4f} "
            f"at step {event['best_step']} ({event['seconds'] / 60:.1f} min)"
        )
    else:
        note(f"radn: {kind} at step {event.get('step')}")


def _setting(value):
    """An option's value as the settings hold it: paths and choices as text."""
    if isinstance(value, Path):
        return str(value)
    return precision_name(value)


def _type_ids(text: str) -> tuple[int, ...]:
    """``"16,17, 18"`` -> (16, 17, 18); the range is checked by TrainConfig."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--focus takes comma-separated KADID type ids (1-25), not {text!r}") from None
