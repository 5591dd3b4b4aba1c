"""The settings of a training run (`radn train` flags, a --config file) and their checks.

One :class:`TrainConfig` is made per run and handed whole to the trainer, the recipe and the data
(:func:`.data.make_batch`, :class:`.data.SyntheticStream`), so a new setting is one field here plus
its `radn train` option. Imports no torch: the CLI shows these defaults in `radn train --help` and
checks the settings before PyTorch loads.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..constants import TRAINING_PRECISIONS
from ..errors import RadnError, UsageError

if TYPE_CHECKING:
    from ..models import ModelConfig

# Settings a resumed run may change: with data workers the batches depend on the seed and step only
MAY_CHANGE_ON_RESUME = ("max_minutes", "device", "out", "data_workers")
# Paths on this machine, left out of the settings recorded in exported weights
LOCAL_PATHS = ("out", "photos", "init", "db", "features")
ARCHES = ("radn", "wresnet", "radn-lite")
LITE_STAGES = ("heads", "end-to-end")


@dataclass
class TrainConfig:
    photos: str  # folder of clean photos (searched recursively)
    out: str  # run folder: checkpoint, log.jsonl, exported weights
    arch: str = "radn"  # ARCHES: radn, wresnet, or radn-lite (RADN's ideas on a pretrained trunk)
    deformable: bool = True  # radn, radn-lite: the reference-oriented deformable step
    attention: bool = True  # radn, radn-lite: patch attention
    pretrain_steps: int = 0  # contrastive stage (pairs within one photo and KADID category)
    steps: int = 1000  # regression stage
    photos_per_batch: int = 2  # P
    per_photo: int = 4  # K distorted versions of each photo
    patches: int = 32  # N random 32x32 patches per image, same positions in all versions
    crop: int = 192  # side of the random crop the patches come from
    lr: float = 1e-4  # Adam, cosine decay to lr/10 over all steps after 20 warm-up steps
    clip: float = 1.0  # gradient norm clip (0: off)
    seed: int = 0
    split_seed: int | None = None  # held-out photos and validation set; None: seed (so runs with
    # other seeds, i.e. other batches, can be compared on one held-out set)
    device: str = "auto"
    precision: str = "fp32"  # TRAINING_PRECISIONS (autocast; deformable sampling positions stay fp32)
    val_fraction: float = 0.1  # photos held out for validation
    val_photos: int = 16  # held-out photos in the validation set
    val_per_photo: int = 6  # distorted versions of each
    val_crop: int = 128
    val_every: int = 100
    checkpoint_every: int = 25
    max_minutes: float = 0.0  # stop (and export) after this wall time; 0: no limit
    init: str = ""  # radn weights to start from (fine-tuning); "" = fresh initialisation
    db: str = ""  # human-rated database (any layout radn eval reads) for the regression stage; "" = synthetic
    name: str = "radn-kadid-synthetic"
    rank_weight: float = 1.0  # regression stage: weight of the cross-type preference loss beside the MSE
    ema: float = 0.0  # decay of the weights' moving average (validated and exported); 0: off
    clean: float = 0.0  # regression stage: probability that a version is a clean (shifted) copy
    shift: float = 0.0  # regression stage: probability that a distorted version is shifted 1-2 px
    data_workers: int = 0  # processes making synthetic batches (data.SyntheticStream); 0: in-process
    window: int = 0  # long side of the KADID-shaped (4:3) region distorted around each crop; 0: the crop
    focus: tuple[int, ...] = ()  # KADID types 1-25 with focus_weight times the weight in the draw
    focus_weight: float = 2.0  # (regression stage; no effect without focus)
    warp: float = (
        0.0  # share of the clean copies rescaled (up to 1%) or warped (up to 1 px) instead of shifted
    )
    folds: int = 0  # with db: its references split in this many folds (sorted, round robin) ...
    fold: int = 0  # ... and this fold held out: trained on the others, validated on it; 0 folds: all train
    # radn-lite only
    stage: str = "heads"  # LITE_STAGES: heads (trunk frozen, on stored per-patch statistics), end-to-end
    width: int = 256  # patch vector size (attention and heads)
    compare_from: int = 1  # the finest stride (1 = pixels, 2 ... 32) whose differences the heads see
    texture: bool = False  # add the texture comparison (patch-mean and variance per channel) to the heads
    features: str = ""  # heads stage: folder of the stored statistics; "": OUT/features
    feature_visits: int = 3000  # heads stage: photo visits stored (per_photo versions each)
    trunk_lr: float = 0.1  # end-to-end stage: the trunk's learning rate, relative to lr
    db_pairs: int = 16  # rated pairs per step beside the synthetic versions (with db)
    db_weight: float = 1.0  # weight of the rated pairs' loss (with db)
    invariance: float = 0.0  # heads stage: weight of clean copies' squared distance to the identical copy
    db_invariance: float = 0.0  # with db: weight of rated distorted images' squared excess over the identical
    db_copies: int = 0  # with db and invariance: clean geometric copies of each training reference, held
    # to its identical copy's score with the invariance weight (0: none)
    db_types: int = 0  # with db: each step's rated pairs come from this many distortion types, db_pairs /
    # db_types each (more pairs of one type across references in the preference loss); 0: any pairs

    def __post_init__(self) -> None:
        if self.steps < 0 or self.pretrain_steps < 0 or self.steps + self.pretrain_steps == 0:
            raise UsageError("give a positive number of --steps and/or --pretrain-steps")
        if self.per_photo < 2 and self.pretrain_steps:
            raise UsageError("contrastive pretraining needs --per-photo of at least 2")
        if self.precision not in TRAINING_PRECISIONS:
            raise UsageError(f"training runs in {' or '.join(TRAINING_PRECISIONS)}, not {self.precision!r}")
        if not 0.0 <= self.ema < 1.0:
            raise UsageError("--ema must be in [0, 1)")
        for name in ("clean", "shift"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"--{name} must be a probability in [0, 1]")
        if self.data_workers < 0:
            raise UsageError("--data-workers must not be negative")
        if self.rank_weight < 0:
            raise UsageError("--rank-weight must not be negative")
        if self.invariance < 0 or self.db_invariance < 0:
            raise UsageError("--invariance and --db-invariance must not be negative")
        if self.db_invariance and not self.db:
            raise UsageError("--db-invariance needs a rated database: give --db")
        if self.db_copies < 0:
            raise UsageError("--db-copies must not be negative")
        if self.db_copies and not (self.db and self.invariance):
            raise UsageError(
                "--db-copies are held to their reference's identical copy with --invariance's weight: "
                "give --db and --invariance"
            )
        focus = self.focus if isinstance(self.focus, (list, tuple)) else [self.focus]
        if any(isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 25 for t in focus):
            raise UsageError(f"--focus takes a list of KADID distortion types 1-25, not {self.focus!r}")
        self.focus = tuple(sorted(set(focus)))
        if self.focus_weight <= 0:
            raise UsageError("--focus-weight must be positive")
        self._check_lite()
        if (
            self.arch != "radn-lite"
            and self.window
            and self.window * 3 // 4 < max(self.crop, self.val_crop) + 4
        ):
            raise UsageError(
                f"--window {self.window} is too small: its short side must hold the {self.crop}-px crop"
            )

    def _check_lite(self) -> None:
        if self.arch not in ARCHES:
            raise UsageError(f"unknown --arch {self.arch!r}; expected one of {', '.join(ARCHES)}")
        if not 0.0 <= self.warp <= 1.0:
            raise UsageError("--warp must be a probability in [0, 1]")
        if self.folds < 0 or (self.folds and not 0 <= self.fold < self.folds):
            raise UsageError(f"--fold must be one of 0..{self.folds - 1} of the --folds")
        if self.folds and not self.db:
            raise UsageError("--folds splits the references of a --db database; give one")
        if self.invariance and (self.arch != "radn-lite" or self.stage != "heads"):
            raise UsageError(
                "--invariance trains radn-lite's heads stage only (--arch radn-lite --stage heads)"
            )
        if self.db_types < 0:
            raise UsageError("--db-types must not be negative")
        if self.db_types and not self.db:
            raise UsageError("--db-types draws the pairs of a rated database: give --db")
        if self.db_types and self.arch != "radn-lite":
            raise UsageError("--db-types is radn-lite's (--arch radn-lite)")
        if self.db_types and self.db_pairs % self.db_types:
            raise UsageError(f"--db-pairs {self.db_pairs} must split evenly over --db-types {self.db_types}")
        if self.arch != "radn-lite":
            return
        if self.stage not in LITE_STAGES:
            raise UsageError(f"--stage is {' or '.join(LITE_STAGES)}, not {self.stage!r}")
        if self.pretrain_steps:
            raise UsageError("radn-lite has no contrastive stage: give --steps only")
        if self.window < 64:
            raise UsageError("radn-lite distorts whole regions: give --window (e.g. 256 or 512)")
        if self.stage == "end-to-end" and not self.init:
            raise UsageError("the end-to-end stage starts from a heads-stage run: give --init WEIGHTS")
        if self.stage == "end-to-end" and self.db:
            raise UsageError("--db trains radn-lite's heads stage only (--stage heads)")
        if self.width < 8 or self.width % 2:
            raise UsageError("--width must be an even number of at least 8")

    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.steps

    @property
    def held_out_seed(self) -> int:
        """The seed that chooses the held-out photos and makes the validation set."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def model_config(self) -> ModelConfig:
        from ..models import RADNConfig, RADNLiteConfig  # here: `radn train --help` imports no torch

        if self.arch == "wresnet":
            return RADNConfig.wresnet()
        if self.arch == "radn-lite":
            return RADNLiteConfig(
                deformable=self.deformable,
                attention=self.attention,
                width=self.width,
                compare_from=self.compare_from,
                texture=self.texture,
            )
        return RADNConfig(arch=self.arch, deformable=self.deformable, attention=self.attention)

    def fixed(self) -> dict:
        """The settings a resumed run must keep (a checkpoint stores them)."""
        return {k: v for k, v in asdict(self).items() if k not in MAY_CHANGE_ON_RESUME}

    def continues(self, saved: dict) -> bool:
        """Whether a checkpoint's :meth:`fixed` settings are this run's; a setting added after the
        checkpoint was written counts as its default there."""
        current = self.fixed()
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING and f.name in current}
        return {**defaults, **saved} == current

    def recorded(self) -> dict:
        """The settings stored in exported weights (no paths of this machine)."""
        return {k: v for k, v in asdict(self).items() if k not in LOCAL_PATHS}

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> TrainConfig:
        """Settings from a JSON or TOML file; keyword overrides win."""
        path = Path(path)
        try:
            if path.suffix == ".toml":
                try:
                    import tomllib  # Python 3.11+
                except ImportError:
                    raise UsageError(f"{path}: TOML settings need Python 3.11; give a .json file") from None

                data = tomllib.loads(path.read_text())
            else:
                data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RadnError(f"cannot read training config: {exc}", path) from exc
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"{path}: unknown training settings: {', '.join(unknown)}")
        return cls(**{**data, **overrides})
