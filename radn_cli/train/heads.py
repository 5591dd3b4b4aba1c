"""RADN-Lite's first stage: the heads trained on stored per-patch statistics (trunk frozen).

Batches come from :class:`radn_cli.train.features.StatsSet`: P photo visits x K versions of the
synthetic set (each with all its N patches), and, with a human-rated set (``rated``), B of its pairs.
Losses as in RADN training (:mod:`.radn_recipe`): MSE on the KADID cell means plus the cross-type
preference loss; a rated pair adds the database's own signal, which has another scale: its scores
are matched through a per-batch least-squares line (a fit of the predictions to the scores, so only
their order and spacing matter) plus a preference loss between the rated pairs of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..evaluation.stats import srocc
from ..models.lite import RADNLite, identical_compare
from .features import StatsSet
from .labels import preference_probability

RATED_SPREAD = 0.5  # assumed standard deviation of a rated score (database units), for preferences
STD_FLOOR_RELATIVE, STD_FLOOR = 0.02, 0.01  # of the input standardisation (set_standardisation)
UNITS_PER_DMOS = 1.5  # a rough database-units-per-KADID-DMOS ratio (TID2013 MOS 0..9), for preferences


@dataclass
class StatsBatch:
    ref: torch.Tensor  # (P, N, 550)
    dist: torch.Tensor  # (P, K, N, 550)
    compare: torch.Tensor  # (P, K, N, 547 or 995)
    mean: torch.Tensor  # (P, K)
    sd: torch.Tensor  # (P, K)
    cells: torch.Tensor  # (P, K, 2)


def draw(
    stats: StatsSet,
    g: torch.Generator,
    count: int,
    index: torch.Tensor | None = None,
    patches: int = 0,
    versions: int = 0,
) -> StatsBatch:
    """``count`` visits (or rated pairs) drawn without replacement from ``index`` (default all); with
    ``patches``, that many of their patches at random (the same ones for a reference and its versions);
    with ``versions``, that many of each visit's versions at random (the same ones for every visit)."""
    pool = torch.arange(len(stats)) if index is None else index
    chosen = pool[torch.randperm(len(pool), generator=g)[:count]]
    s = stats.select(chosen)
    ref, dist, compare, mean, sd, cells = s.ref, s.dist, s.compare, s.mean, s.sd, s.cells
    if patches and patches < ref.shape[1]:
        keep = torch.randperm(ref.shape[1], generator=g)[:patches]
        ref, dist, compare = ref[:, keep], dist[:, :, keep], compare[:, :, keep]
    if versions and versions < dist.shape[1]:
        keep = torch.randperm(dist.shape[1], generator=g)[:versions]
        dist, compare, mean, sd, cells = (
            dist[:, keep],
            compare[:, keep],
            mean[:, keep],
            sd[:, keep],
            cells[:, keep],
        )
    return StatsBatch(ref.float(), dist.float(), compare.float(), mean.float(), sd.float(), cells)


def typed_choice(types: torch.Tensor, pool: torch.Tensor, g: torch.Generator, kinds: int, count: int):
    """``count`` indices of ``pool`` from ``kinds`` of its values of ``types`` (one per index) drawn at
    random, ``count // kinds`` of each (fewer where a type has fewer), without replacement."""
    pool_types = types[pool]
    present = torch.unique(pool_types)
    chosen = present[torch.randperm(len(present), generator=g)[:kinds]]
    picks = []
    for kind in chosen:
        of_kind = pool[pool_types == kind]
        picks.append(of_kind[torch.randperm(len(of_kind), generator=g)[: count // kinds]])
    return torch.cat(picks)


def forward(model: RADNLite, batch: StatsBatch, reference: torch.Tensor | None = None) -> torch.Tensor:
    """(P, K) scores: each reference embedded once (or ``reference``, the already embedded
    ``model.embed_reference(batch.ref)``), its K versions scored against it."""
    p, k, n = batch.dist.shape[:3]
    ref = model.embed_reference(batch.ref) if reference is None else reference  # (P, N, W)
    dist = model.embed_distorted(batch.dist.flatten(0, 1))  # (P*K, N, W)
    ref = ref.unsqueeze(1).expand(p, k, n, -1).flatten(0, 1)
    scores, weights = model.head(ref, dist, batch.compare.flatten(0, 1))
    return model.pool(scores, weights).view(p, k)


def identical_copies(
    model: RADNLite, batch: StatsBatch, reference: torch.Tensor | None = None
) -> torch.Tensor:
    """(P,) scores of each reference against itself, from its statistics alone: the distorted branch
    is the reference's and every comparison is "no difference"
    (:func:`~radn_cli.models.lite.identical_compare`); ``reference`` as for :func:`forward`."""
    ref = model.embed_reference(batch.ref) if reference is None else reference  # (P, N, W)
    compare = identical_compare(model.config).to(batch.ref.device).expand(*batch.ref.shape[:2], -1)
    scores, weights = model.head(ref, model.embed_distorted(batch.ref), compare)
    return model.pool(scores, weights)


def invariance_loss(scores: torch.Tensor, identical: torch.Tensor, batch: StatsBatch) -> torch.Tensor:
    """Mean squared distance of the clean copies' scores (cell (0, 0): shifted, rescaled, warped or
    identical) from their reference's identical copy (both sides learn); 0 without clean copies."""
    clean = (batch.cells == 0).all(-1)  # (P, K)
    if not clean.any():
        return scores.sum() * 0
    return ((scores - identical[:, None]) ** 2)[clean].mean()


def above_identical_loss(scores: torch.Tensor, identical: torch.Tensor) -> torch.Tensor:
    """Mean squared excess of distorted versions' scores (P, K) over their reference's identical copy
    (P,): 0 where a version scores at or below it."""
    return F.relu(scores - identical[:, None]).square().mean()


def _preference(scores, mean, sd, i, j) -> torch.Tensor:
    spread = torch.sqrt(sd[i] ** 2 + sd[j] ** 2)
    p = preference_probability(mean[i], sd[i], mean[j], sd[j])
    return F.binary_cross_entropy_with_logits(1.702 * (scores[i] - scores[j]) / spread, p)


def synthetic_loss(scores: torch.Tensor, batch: StatsBatch, rank_weight: float) -> torch.Tensor:
    """MSE on the cell means plus ``rank_weight`` x the preference loss over pairs of differing cells."""
    loss = F.mse_loss(scores, batch.mean)
    if rank_weight:
        flat = batch.cells.reshape(-1, 2)
        i, j = torch.triu_indices(flat.shape[0], flat.shape[0], 1)
        keep = (flat[i] != flat[j]).any(dim=1)
        i, j = i[keep], j[keep]
        if i.numel():
            loss = loss + rank_weight * _preference(
                scores.flatten(), batch.mean.flatten(), batch.sd.flatten(), i, j
            )
    return loss


def rated_loss(scores: torch.Tensor, batch: StatsBatch) -> torch.Tensor:
    """Scale-free loss on a database's own scores: residual of the least-squares line from the
    predictions to the scores (relative to the scores' variance), plus preferences between pairs."""
    x, y = scores.flatten(), batch.mean.flatten()
    xc, yc = x - x.mean(), y - y.mean()
    slope = (xc * yc).sum() / (xc * xc).sum().clamp_min(1e-8)
    fit = ((yc - slope.detach().clamp_min(0) * xc) ** 2).mean() / (yc * yc).mean().clamp_min(1e-8)
    i, j = torch.triu_indices(y.numel(), y.numel(), 1)
    keep = (y[i] - y[j]).abs() > 1e-6
    i, j = i[keep], j[keep]
    sd = torch.full_like(y, RATED_SPREAD)
    prefer = _preference(x * UNITS_PER_DMOS, y, sd, i, j) if i.numel() else x.sum() * 0
    return fit + prefer


@torch.no_grad()
def predict(model: RADNLite, stats: StatsSet, index: torch.Tensor | None = None, chunk: int = 64):
    """Scores (V, K) of stored statistics (all versions of the selected visits / pairs)."""
    was = model.training
    model.eval()
    pool = torch.arange(len(stats)) if index is None else index
    out = []
    for start in range(0, len(pool), chunk):
        s = stats.select(pool[start : start + chunk])
        batch = StatsBatch(s.ref.float(), s.dist.float(), s.compare.float(), s.mean, s.sd, s.cells)
        out.append(forward(model, batch))
    model.train(was)
    return torch.cat(out)


def evaluate(model: RADNLite, stats: StatsSet, index: torch.Tensor | None = None) -> dict:
    """SROCC overall and per type (cells[..., 0]) of stored statistics against their targets."""
    pool = torch.arange(len(stats)) if index is None else index
    pred = predict(model, stats, pool).flatten().double().numpy()
    s = stats.select(pool)
    target = s.mean.flatten().double().numpy()
    types = s.cells.reshape(-1, 2)[:, 0].numpy()
    per_type = {
        int(t): float(srocc(pred[types == t], target[types == t]))
        for t in sorted(set(types.tolist()))
        if (types == t).sum() > 2
    }
    return {"srocc": float(srocc(pred, target)), "per_type": per_type}


def set_standardisation(model: RADNLite, stats: StatsSet, samples: int = 256) -> None:
    """Fix the model's input standardisation from stored statistics (mean and sd per input).

    The statistics are stored in float16 (relative precision 5e-4), the scorer computes them in
    float32: an input that hardly varies (a dead channel's constant log(1e-6), say) must not have its
    rounding blown up into many standard deviations. So the sd is at least 2% of the input's size
    plus 0.01 (a rounding moves an input by at most 0.03 sd; measured: with a 1e-4 floor it moved a
    TID2013 pair's score from 3.92 to 3.63).
    """
    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(stats), generator=g)[:samples]
    s = stats.select(pick)
    branch = torch.cat([s.ref.flatten(0, -2), s.dist.flatten(0, -2)]).float()
    compare = s.compare.flatten(0, -2).float()
    with torch.no_grad():
        for values, mean, std in (
            (branch, model.branch_mean, model.branch_std),
            (compare, model.compare_mean, model.compare_std),
        ):
            mean.copy_(values.mean(0))
            std.copy_(torch.maximum(values.std(0), STD_FLOOR_RELATIVE * mean.abs() + STD_FLOOR))
