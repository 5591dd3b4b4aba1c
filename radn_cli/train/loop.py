"""`radn train`: contrastive pretraining then regression, checkpoints, resume, export to radn weights.

Stage 1 (the paper's pretraining, absent from the reference code): Siamese pairs of one photo's
versions from one KADID category; each image's score is computed once per batch and every pair of
the photo's K versions is compared (as RankIQA does). The target is the probability that people
prefer i over j, Phi((m_i - m_j) / sqrt(s_i^2 + s_j^2)); the prediction is the same expression with
the model's scores (Phi approximated by sigmoid(1.702 x)), so the loss is minimal when score
differences equal DMOS differences. Stage 2: MSE on the (type, level) mean DMOS, as the reference
code regresses MOS, plus (``rank_weight``) the same preference loss over every pair of the batch
whose cells differ, across photos and distortion types: the errors that hurt rankings on human-rated
sets are across types, which within-photo, within-category pairs never see. Optional invariance
versions (identical and 1-2 px shifted clean copies, shifted distorted versions; ``clean``,
``shift``) and an exponential moving average of the weights (``ema``), which is what is validated
and exported when on. Prints nothing: progress goes to the ``on_event`` callback. Ctrl-C or SIGTERM
ends the step in progress, saves the checkpoint and the last weights, then raises ``TrainingStopped``
(:mod:`.stop`).

Under ``torchrun`` (:mod:`.distributed`) the model is wrapped in DistributedDataParallel: every rank
draws its own batches (batch ``step * world + rank`` of the seed's stream, so a resumed run sees the
batches it would have seen), gradients are averaged, and rank 0 alone validates, checkpoints,
exports and emits events. A step then trains on ``world`` times the images.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from ..devices import check_precision, resolve_device
from ..errors import RadnError, UsageError
from ..models.radn import RADN
from ..tiling import tile
from ..weights import load_weights, save_weights
from . import distributed
from .config import TrainConfig
from .data import (
    PhotoBank,
    RatedPairs,
    SyntheticStream,
    ValidationSet,
    find_photos,
    make_validation_set,
    split_photos,
    stream_loader,
)
from .labels import SCORE_SCALE, preference_probability
from .stop import StopRequests, TrainingStopped

CHECKPOINT = "last.ckpt"
BEST = "best.safetensors"
LAST = "last.safetensors"


@dataclass
class TrainState:
    step: int = 0
    best_srocc: float = -2.0
    best_step: int = -1
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


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


OFFSET_LR_FACTOR = 0.1  # the offset branch learns slower, as usual for deformable convolutions


def parameter_groups(model: RADN, lr: float) -> list[dict]:
    offsets = [p for n, p in model.named_parameters() if n.startswith("conv_offset.")]
    others = [p for n, p in model.named_parameters() if not n.startswith("conv_offset.")]
    groups = [{"params": others, "lr": lr}]
    if offsets:
        groups.append({"params": offsets, "lr": lr * OFFSET_LR_FACTOR})
    return groups


def srocc(x: torch.Tensor, y: torch.Tensor) -> float:
    from ..evaluation.stats import srocc as _srocc

    return float(_srocc(x.double().cpu().numpy(), y.double().cpu().numpy()))


def _lr_factor(step: int, total: int, warmup: int = 20) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _preference_loss(scores: torch.Tensor, batch, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
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
    model: RADN, batch, contrastive: bool, autocast: torch.autocast, rank_weight: float = 0.0
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


class WeightAverage:
    """Exponential moving average of a model's parameters and buffers (a copy of the model)."""

    def __init__(self, model: RADN, decay: float) -> None:
        self.decay = decay
        self.model = RADN(model.config).to(next(model.parameters()).device)
        self.model.load_state_dict(model.state_dict())
        self.model.eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: RADN) -> None:
        mine = list(self.model.parameters())
        torch._foreach_lerp_(mine, [p.detach() for p in model.parameters()], 1 - self.decay)
        for a, b in zip(self.model.buffers(), model.buffers()):
            a.copy_(b)


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
    return {"val_srocc": srocc(pred, target), "val_rmse": float(torch.sqrt(F.mse_loss(pred, target)))}


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    on_event: Callable[[dict], None] | None = None,
) -> Path:
    """Run (or resume) training; returns the path of the exported best weights.

    ``stop_at`` ends this call after that many steps (counted from the run's start), as if it were
    interrupted there; ``resume=True`` continues from the last checkpoint. Started by ``torchrun``,
    each process calls this and joins the others (module doc).
    """
    ranks, device = distributed.setup(resolve_device(config.device))
    try:
        return _train(config, ranks, device, resume=resume, stop_at=stop_at, on_event=on_event)
    finally:
        distributed.teardown(ranks)


def _train(
    config: TrainConfig,
    ranks: distributed.Ranks,
    device: torch.device,
    *,
    resume: bool,
    stop_at: int | None,
    on_event: Callable[[dict], None] | None,
) -> Path:
    emit = on_event if on_event is not None and ranks.main else (lambda event: None)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = check_precision(config.precision, device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    torch.manual_seed(config.seed + ranks.rank)  # dropout differs between ranks

    photos = find_photos(config.photos)
    if len(photos) < 2:
        raise RadnError("need at least two photos to train and validate", config.photos)
    train_photos, val_photos = split_photos(photos, config.val_fraction, config.held_out_seed)
    bank = PhotoBank(train_photos, config.crop)
    val = None  # rank 0 validates
    if ranks.main:
        val = make_validation_set(PhotoBank(val_photos, config.val_crop), config, device)
    rated = None
    if config.db:
        from ..evaluation.databases import load_database

        rated = RatedPairs(load_database(Path(config.db)))
    emit(
        {
            "event": "data",
            "train_photos": len(train_photos),
            "val_photos": len(val_photos),
            "val_pairs": int(val.mean.numel()) if val is not None else 0,
            "rated_pairs": len(rated) if rated else 0,
            "ranks": ranks.world,
        }
    )

    model = RADN(config.model_config)
    if config.init:
        model.load_state_dict(load_weights(config.init).model.state_dict())
    else:
        init_weights(model)
    model.to(device).train()
    optimizer = torch.optim.Adam(parameter_groups(model, config.lr), lr=config.lr)
    total = config.total_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total))
    average = WeightAverage(model, config.ema) if config.ema and ranks.main else None
    state = TrainState()
    g = torch.Generator().manual_seed(config.seed)
    checkpoint = out / CHECKPOINT
    if resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        current = _comparable(config)
        defaults = {k: v for k, v in _DEFAULTS.items() if k in current}  # for settings added since
        if {**defaults, **saved["config"]} != current:
            raise UsageError(f"{checkpoint}: the run was started with other settings; use another --out")
        if saved.get("world", 1) != ranks.world:
            raise UsageError(
                f"{checkpoint}: the run was started with {saved.get('world', 1)} process(es), not "
                f"{ranks.world}; resume it with as many (they decide the batches)"
            )
        model.load_state_dict(saved["model"])
        if average is not None:
            average.model.load_state_dict(saved.get("ema", saved["model"]))
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        g.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])  # dropout draws from the global generator
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        state = TrainState(**saved["state"])
        if ranks.rank:  # the saved generator state is rank 0's: the others draw their own dropout
            torch.manual_seed(config.seed * 1_000_003 + state.step * ranks.world + ranks.rank)
        emit({"event": "resumed", "step": state.step})
    if not distributed.all_equal(state.step, ranks, device):
        raise RadnError(f"the ranks resumed at different steps: does every node see {checkpoint}?")
    trained = distributed.wrap(model, ranks, device)  # the model itself in one process
    if ranks.main:
        (out / "config.json").write_text(json.dumps(asdict(config), indent=2))

    exported = average.model if average is not None else model  # what is validated and exported

    def save_checkpoint() -> None:  # the run's state now: at each checkpoint, a stop, a signal and the end
        _save_checkpoint(checkpoint, model, optimizer, scheduler, g, state, config, average, ranks.world)

    keyed = SyntheticStream(train_photos, config, start=state.step, rank=ranks.rank, world=ranks.world)
    stream = None
    if config.data_workers and rated is None:
        stream = stream_loader(keyed, config.data_workers, device)
    started = time.perf_counter() - state.seconds
    images = config.photos_per_batch * config.per_photo
    with StopRequests() as stops:  # Ctrl-C/SIGTERM: end the step, save, stop (module doc of .stop)
        while state.step < total:
            late = bool(config.max_minutes) and time.perf_counter() - started > 60 * config.max_minutes
            if distributed.agree(late, ranks, device):
                emit({"event": "time_limit", "step": state.step})
                break
            if stop_at is not None and state.step >= stop_at:
                if ranks.main:
                    save_checkpoint()
                emit({"event": "stopped", "step": state.step})
                distributed.barrier(ranks)
                return out / BEST
            if distributed.any_rank(stops.signum is not None, ranks, device):
                signum = stops.signum or signal.SIGTERM  # another rank's: torchrun signals them all
                if ranks.main:
                    save_checkpoint()
                    latest = next((h for h in reversed(state.history) if "val_srocc" in h), {})
                    _export(exported, out / LAST, config, state, device, latest)
                name = signal.Signals(signum).name
                emit({"event": "signal", "step": state.step, "signal": name})
                distributed.barrier(ranks)
                raise TrainingStopped(
                    f"stopped by {name} at step {state.step} of {total}; checkpoint and {out / LAST} "
                    "written, `radn train --resume` continues",
                    signum,
                    state.step,
                )
            contrastive = state.step < config.pretrain_steps
            tick = time.perf_counter()
            if rated is not None and not contrastive:
                draw = g if not ranks.distributed else keyed.generator(state.step)
                batch = rated.batch(draw, pairs=images, patches=config.patches, device=device)
            elif stream is not None:
                batch = next(stream).to(device)
            else:  # in this process: a rank's own keyed batch, or one process's checkpointed generator's
                batch = keyed.batch(bank, state.step, device, None if ranks.distributed else g)
            data_seconds = time.perf_counter() - tick
            loss = batch_loss(trained, batch, contrastive, autocast, config.rank_weight)
            logged = distributed.mean_over_ranks(loss.detach(), ranks)  # the same on every rank
            if not torch.isfinite(logged):
                raise RadnError(f"training diverged at step {state.step} (loss {float(logged)}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(model)
            state.step += 1
            if not ranks.main:  # rank 0 alone validates, logs, checkpoints and exports
                continue
            seconds = time.perf_counter() - tick
            event = {
                "event": "step",
                "step": state.step,
                "total": total,
                "stage": "contrastive" if contrastive else "regression",
                "loss": float(logged),
                "lr": scheduler.get_last_lr()[0],
                "images_per_s": images * ranks.world / seconds,
                "data_fraction": data_seconds / seconds,
            }
            if state.step % config.val_every == 0 or state.step == total:
                event.update(validate(exported, val, autocast))
                if event["val_srocc"] > state.best_srocc:
                    state.best_srocc, state.best_step = event["val_srocc"], state.step
                    _export(exported, out / BEST, config, state, device, event)
            state.seconds = time.perf_counter() - started
            state.history.append({k: v for k, v in event.items() if k != "event"})
            with open(out / "log.jsonl", "a") as log:
                log.write(json.dumps(event) + "\n")
            emit(event)
            if state.step % config.checkpoint_every == 0 or state.step == total:
                save_checkpoint()

    if not ranks.main:
        distributed.barrier(ranks)  # until rank 0 has exported
        return out / BEST
    final = validate(exported, val, autocast)
    if final["val_srocc"] > state.best_srocc or not (out / BEST).is_file():
        state.best_srocc, state.best_step = final["val_srocc"], state.step
        _export(exported, out / BEST, config, state, device, final)
    _export(exported, out / LAST, config, state, device, final)
    if rated is not None:
        emit(
            {
                "event": "note",
                "step": state.step,
                "message": f"scores are on the scale of {rated.database.name}: {rated.database.scale}",
            }
        )
    save_checkpoint()
    emit(
        {
            "event": "done",
            "step": state.step,
            "best_step": state.best_step,
            "best_val_srocc": state.best_srocc,
            "seconds": state.seconds,
            **final,
        }
    )
    distributed.barrier(ranks)
    return out / BEST


_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _comparable(config: TrainConfig) -> dict:
    """Settings that must not change when a run is resumed (time limit, device and the number of data
    workers may: with workers the batches depend on the seed and the step only)."""
    return {
        k: v for k, v in asdict(config).items() if k not in ("max_minutes", "device", "out", "data_workers")
    }


def _save_checkpoint(
    path: Path,
    model,
    optimizer,
    scheduler,
    g,
    state: TrainState,
    config: TrainConfig,
    average=None,
    world: int = 1,
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": g.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": asdict(state),
            "config": _comparable(config),
            "world": world,
            **({"ema": average.model.state_dict()} if average is not None else {}),
            **({"cuda_rng": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {}),
        },
        tmp,
    )
    tmp.replace(path)


def _export(model: RADN, path: Path, config: TrainConfig, state: TrainState, device, metrics: dict) -> None:
    recipe = {k: v for k, v in asdict(config).items() if k not in ("out", "photos", "init", "db")}
    training_data = (
        f"synthetic: KADID-10k's 25 distortions x 5 levels applied to clean photos "
        f"({Path(config.photos).name}); targets: KADID-10k mean DMOS per (type, level)"
    )
    scale = SCORE_SCALE
    if config.db:
        training_data += f"; regression on the human-rated database at {Path(config.db).name}"
        scale = f"the human scores of the database {Path(config.db).name}, oriented higher is better"
    save_weights(
        model,
        path,
        name=config.name,
        dtype=torch.float32,
        training_data=training_data,
        score_scale=scale,
        score_direction="higher_is_better",
        metrics={
            "held_out_synthetic": {k: metrics[k] for k in ("val_srocc", "val_rmse") if k in metrics},
            "step": state.step,
        },
        extra={
            "recipe": json.dumps(recipe, sort_keys=True),
            "device": str(device),
            "training_seconds": f"{state.seconds:.0f}",
            "steps": str(state.step),
        },
    )
