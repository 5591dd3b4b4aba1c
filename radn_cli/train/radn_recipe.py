"""RADN's training recipe (``--arch radn`` and its WResNet baseline): 32x32 patches of synthetic
versions, contrastive pretraining then regression; the :class:`~.trainer.Trainer` does the rest.

Stage 1 (the paper's pretraining, absent from the reference code): Siamese pairs of one photo's
versions from one KADID category; each image's score is computed once per batch and every pair of
the photo's K versions is compared (as RankIQA does). The target is the probability that people
prefer i over j, Phi((m_i - m_j) / sqrt(s_i^2 + s_j^2)); the prediction is the same expression with
the model's scores (Phi approximated by sigmoid(1.702 x)), so the loss is minimal when score
differences equal DMOS differences. Stage 2: MSE on the (type, level) mean DMOS, as the reference
code regresses MOS, plus (``rank_weight``) the same preference loss over every pair of the batch
whose cells differ, across photos and distortion types: the errors that hurt rankings on human-rated
sets are across types, which within-photo, within-category pairs never see. With ``db`` the
regression stage trains on a human-rated database instead (:class:`.data.RatedPairs`). Optional
invariance versions (``clean``, ``shift``) and the distortion window come with the data
(:mod:`.data`). Validation: fixed distorted crops of held-out photos, every patch scored.

Batches: one process draws them from the trainer's checkpointed generator; under torchrun each
rank draws batch ``step * world + rank`` of the seed's stream, and data workers batch ``step``
(:class:`.data.SyntheticStream`), so a resumed run sees the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import RadnError
from ..evaluation.databases import load_database
from ..evaluation.stats import srocc
from ..models.radn import RADN
from ..tiling import tile
from ..weights import load_weights, rated_training_note
from .config import TrainConfig
from .data import (
    Batch,
    PhotoBank,
    RatedPairs,
    SyntheticStream,
    ValidationSet,
    find_photos,
    make_validation_set,
    split_photos,
    stream_loader,
)
from .distributed import Ranks
from .labels import SCORE_SCALE, preference_probability

OFFSET_LR_FACTOR = 0.1  # the offset branch learns slower, as usual for deformable convolutions


class RADNRecipe:
    """The data, model, losses, validation and weights description of a RADN run (the
    :class:`~.trainer.Recipe` interface)."""

    def __init__(
        self,
        settings: TrainConfig,
        ranks: Ranks,
        device: torch.device,
        autocast: torch.autocast,
        on_event=None,
    ) -> None:
        self.settings, self.ranks, self.device, self.autocast = settings, ranks, device, autocast
        photos = find_photos(settings.photos)
        if len(photos) < 2:
            raise RadnError("need at least two photos to train and validate", settings.photos)
        self.photos, val_photos = split_photos(photos, settings.val_fraction, settings.held_out_seed)
        self.val: ValidationSet | None = None  # rank 0 validates
        if ranks.main:
            self.val = make_validation_set(PhotoBank(val_photos, settings.val_crop), settings, device)
        self.rated: RatedPairs | None = None
        if settings.db:
            self.rated = RatedPairs(load_database(Path(settings.db)))
        self.images_per_step = settings.photos_per_batch * settings.per_photo
        self.summary = {
            "train_photos": len(self.photos),
            "val_photos": len(val_photos),
            "val_pairs": int(self.val.mean.numel()) if self.val is not None else 0,
            "rated_pairs": len(self.rated) if self.rated else 0,
        }

    def build_model(self) -> RADN:
        model = RADN(self.settings.model_config)
        if self.settings.init:
            model.load_state_dict(load_weights(self.settings.init).model.state_dict())
        else:
            init_weights(model)
        return model

    @staticmethod
    def parameter_groups(model: RADN, lr: float) -> list[dict]:
        offsets = [p for n, p in model.named_parameters() if n.startswith("conv_offset.")]
        others = [p for n, p in model.named_parameters() if not n.startswith("conv_offset.")]
        groups = [{"params": others, "lr": lr}]
        if offsets:
            groups.append({"params": offsets, "lr": lr * OFFSET_LR_FACTOR})
        return groups

    def stage(self, step: int) -> str:
        return "contrastive" if step < self.settings.pretrain_steps else "regression"

    def batches(self, start: int, generator: torch.Generator) -> Iterator[Batch]:
        """This rank's batch of each step from ``start`` on (module doc); data workers start now."""
        keyed = SyntheticStream(
            self.photos, self.settings, start=start, rank=self.ranks.rank, world=self.ranks.world
        )
        workers = None
        if self.settings.data_workers and self.rated is None:
            workers = stream_loader(keyed, self.settings.data_workers, self.device)
        own = None if self.ranks.distributed else generator  # one process: the checkpointed generator
        return self._draw(keyed, workers, start, own)

    def _draw(
        self, keyed: SyntheticStream, workers, start: int, own: torch.Generator | None
    ) -> Iterator[Batch]:
        bank = PhotoBank(self.photos, self.settings.crop)
        for step in range(start, self.settings.total_steps):
            if self.rated is not None and step >= self.settings.pretrain_steps:
                draw = own if own is not None else keyed.generator(step)
                yield self.rated.batch(
                    draw, pairs=self.images_per_step, patches=self.settings.patches, device=self.device
                )
            elif workers is not None:
                yield next(workers).to(self.device)
            else:
                yield keyed.batch(bank, step, self.device, own)

    def loss(self, model: RADN, batch: Batch, step: int) -> torch.Tensor:
        contrastive = step < self.settings.pretrain_steps
        return batch_loss(model, batch, contrastive, self.autocast, self.settings.rank_weight)

    def validate(self, model: RADN) -> dict:
        return validate(model, self.val, self.autocast)

    def export_metadata(self) -> tuple[str, str]:
        """What the weights were trained on, and the scale of their scores."""
        photos, db = Path(self.settings.photos).name, self.settings.db
        training_data = (
            f"synthetic: KADID-10k's 25 distortions x 5 levels applied to clean photos "
            f"({photos}); targets: KADID-10k mean DMOS per (type, level)"
        )
        if not db:
            return training_data, SCORE_SCALE
        training_data += "; " + rated_training_note(Path(db).name, "regression on its scores")
        return training_data, f"the human scores of the database {Path(db).name}, oriented higher is better"

    def notes(self) -> list[str]:
        """Lines for the person at the end of a run."""
        if self.rated is None:
            return []
        database = self.rated.database
        return [f"scores are on the scale of {database.name}: {database.scale}"]


def init_weights(model: RADN) -> None:
    """Signal-preserving start: Kaiming-normal convs with the last conv of each residual branch scaled
    down (each block starts close to its identity path, so activations stay O(1) through the trunk),
    zero offsets (a plain conv at first), and heads that start near the middle of the DMOS scale with
    all patches weighted alike."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and not name.startswith("Nonlocal"):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    with torch.no_grad():
        for last in (4, 8, 12, 16, 20):
            getattr(model, f"conv{last}").weight.mul_(0.2)
    if model.config.deformable:
        torch.nn.init.zeros_(model.conv_offset.weight)
        torch.nn.init.zeros_(model.conv_offset.bias)
        for layer in (model.deform, model.deform2):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            torch.nn.init.zeros_(layer.bias)
    torch.nn.init.constant_(model.fc2_q.bias, 3.0)
    torch.nn.init.constant_(model.fc2_w.bias, 1.0)


def _preference_loss(scores: torch.Tensor, batch: Batch, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between the model's and people's preference of image i over image j."""
    mean, sd = batch.mean.flatten(), batch.sd.flatten()
    spread = torch.sqrt(sd[i] ** 2 + sd[j] ** 2)
    p = preference_probability(mean[i], sd[i], mean[j], sd[j])
    logits = 1.702 * (scores[i] - scores[j]) / spread
    return F.binary_cross_entropy_with_logits(logits, p)


def cross_pairs(cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into the flattened batch) of every pair of images whose (type, level) cells differ."""
    flat = cells.reshape(-1, 2)
    i, j = torch.triu_indices(flat.shape[0], flat.shape[0], 1)
    keep = (flat[i] != flat[j]).any(dim=1)
    return i[keep], j[keep]


def batch_loss(
    model: RADN, batch: Batch, contrastive: bool, autocast: torch.autocast, rank_weight: float = 0.0
) -> torch.Tensor:
    with autocast:
        out = model.forward_shared_reference(batch.dist, batch.ref)
    scores = out.score.float()  # (P, K)
    if contrastive:  # every pair within each photo
        k = scores.shape[1]
        a, b = torch.triu_indices(k, k, 1)
        rows = torch.arange(scores.shape[0])[:, None] * k
        return _preference_loss(scores.flatten(), batch, (rows + a).flatten(), (rows + b).flatten())
    loss = F.mse_loss(scores, batch.mean)
    if rank_weight:
        i, j = (index.to(scores.device) for index in cross_pairs(batch.cells))
        if i.numel():
            loss = loss + rank_weight * _preference_loss(scores.flatten(), batch, i, j)
    return loss


@torch.no_grad()
def validate(model: RADN, val: ValidationSet, autocast: torch.autocast) -> dict:
    model.eval()
    predictions = []
    for v in range(val.ref.shape[0]):
        ref, _ = tile(val.ref[v][None])  # (1, N, 3, 32, 32)
        dist, _ = tile(val.dist[v])  # (K, N, 3, 32, 32)
        with autocast:
            predictions.append(model.forward_shared_reference(dist[None], ref).score[0].float())
    model.train()
    pred = torch.cat(predictions)
    target = val.mean.flatten().to(pred.device)
    ranked = float(srocc(pred.double().cpu().numpy(), target.double().cpu().numpy()))
    return {"val_srocc": ranked, "val_rmse": float(torch.sqrt(F.mse_loss(pred, target)))}
