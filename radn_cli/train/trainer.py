"""`radn train`: the part of a training run that every architecture shares (:class:`Trainer`), and
:func:`train`, which gives it the architecture's :class:`Recipe` (:data:`RECIPES`).

The trainer owns the device and torchrun's ranks (:mod:`.distributed`), Adam with 20 warm-up steps
and a cosine decay to a tenth, an exponential moving average of the weights (``ema``: what is
validated and exported when on), the checkpoint (model, optimizer, schedule, generators: a resumed
run is bit-identical) with the settings a resume must keep, the time limit, validation every
``val_every`` steps with the best weights exported, OUT/log.jsonl, the ``on_event`` callback and the
``progress`` (:mod:`radn_cli.progress`: one stage, ``training``, of the steps left); it prints
nothing. Ctrl-C or SIGTERM ends the step in progress, saves the checkpoint and the last weights, then
raises ``TrainingStopped`` (:mod:`.stop`). The recipe owns the data, the model, the loss and the
validation (RADN's: :mod:`.radn_recipe`).

Under ``torchrun`` the model is wrapped in DistributedDataParallel: every rank draws its own batches
(the recipe's), gradients are averaged, and rank 0 alone validates, checkpoints, exports and emits
events. A step then trains on ``world`` times the images.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..atomic import atomic_write
from ..devices import check_precision, resolve_device
from ..errors import RadnError, UsageError
from ..progress import SILENT, Progress
from ..weights import save_weights
from . import distributed
from .config import TrainConfig
from .lite_recipe import LiteRecipe
from .radn_recipe import RADNRecipe
from .stop import StopRequests, TrainingStopped

CHECKPOINT = "last.ckpt"
BEST = "best.safetensors"
LAST = "last.safetensors"


class Recipe(Protocol):
    """What an architecture brings to training. Made once per run on every rank, before the model."""

    summary: dict  # the counts of the run's data, in the "data" event
    images_per_step: int  # images one rank trains on in a step (for images/s)

    def __init__(
        self,
        settings: TrainConfig,
        ranks: distributed.Ranks,
        device: torch.device,
        autocast: torch.autocast,
        on_event: Callable[[dict], None] | None = None,
    ) -> None:
        """Sets up the data (the validation data on rank 0 alone); ``on_event`` hears of long set-ups."""

    def build_model(self) -> torch.nn.Module:
        """The model to train: a fresh initialisation, or the ``init`` weights."""

    def parameter_groups(self, model: torch.nn.Module, lr: float) -> list[dict]:
        """Adam's parameter groups (learning rates relative to ``lr``)."""

    def stage(self, step: int) -> str:
        """The name of the step's stage, for the step events."""

    def batches(self, start: int, generator: torch.Generator) -> Iterator[Any]:
        """Each step's batch from ``start`` on. ``generator`` is in the checkpoint: what is drawn
        from it, or from the seed and the step alone, comes again when the run is resumed."""

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> torch.Tensor:
        """The step's loss; ``model`` is the trained one (a DDP wrapper under torchrun)."""

    def validate(self, model: torch.nn.Module) -> dict:
        """Rank 0 only: held-out metrics, with ``val_srocc`` (higher is better), which picks the best."""

    def export_metadata(self) -> tuple[str, str]:
        """The exported weights' ``training_data`` and ``score_scale``."""

    def notes(self) -> list[str]:
        """Lines for the person at the end of a run."""


# The recipe of each --arch (TrainConfig.arch); a new architecture registers its recipe here.
RECIPES: dict[str, type[Recipe]] = {"radn": RADNRecipe, "wresnet": RADNRecipe, "radn-lite": LiteRecipe}


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    on_event: Callable[[dict], None] | None = None,
    progress: Progress = SILENT,
) -> Path:
    """Run (or resume) training; returns the path of the exported best weights.

    ``stop_at`` ends this call after that many steps (counted from the run's start), as if it were
    interrupted there; ``resume=True`` continues from the last checkpoint. Started by ``torchrun``,
    each process calls this and joins the others (module doc).
    """
    ranks, device = distributed.setup(resolve_device(config.device))
    try:
        trainer = Trainer(config, RECIPES[config.arch], ranks, device, on_event, progress)
        if resume:
            trainer.restore()
        return trainer.run(stop_at)
    finally:
        distributed.teardown(ranks)


@dataclass
class TrainState:
    step: int = 0
    best_srocc: float = -2.0
    best_step: int = -1
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


class WeightAverage:
    """Exponential moving average of a model's parameters and buffers (a copy of the model)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = type(model)(model.config).to(next(model.parameters()).device)
        self.model.load_state_dict(model.state_dict())
        self.model.eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        mine = list(self.model.parameters())
        torch._foreach_lerp_(mine, [p.detach() for p in model.parameters()], 1 - self.decay)
        for a, b in zip(self.model.buffers(), model.buffers()):
            a.copy_(b)


def _lr_factor(step: int, total: int, warmup: int = 20) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """One run in its folder ``settings.out``: :meth:`restore`, :meth:`run` (which steps, validates,
    exports and stops), on one rank of ``ranks``."""

    def __init__(
        self,
        settings: TrainConfig,
        recipe: type[Recipe],
        ranks: distributed.Ranks,
        device: torch.device,
        on_event: Callable[[dict], None] | None = None,
        progress: Progress = SILENT,
    ) -> None:
        self.settings, self.ranks, self.device = settings, ranks, device
        self.emit = on_event if on_event is not None and ranks.main else (lambda event: None)
        self.progress = progress if ranks.main else SILENT
        self.out = Path(settings.out)
        self.out.mkdir(parents=True, exist_ok=True)
        dtype = check_precision(settings.precision, device)
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
        torch.manual_seed(settings.seed + ranks.rank)  # dropout differs between ranks
        self.recipe = recipe(settings, ranks, device, autocast, on_event=self.emit)
        self.emit({"event": "data", **self.recipe.summary, "ranks": ranks.world})
        self.model = self.recipe.build_model().to(device).train()
        self.optimizer = torch.optim.Adam(
            self.recipe.parameter_groups(self.model, settings.lr), lr=settings.lr
        )
        total = settings.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(s, total))
        self.average = WeightAverage(self.model, settings.ema) if settings.ema and ranks.main else None
        self.exported = self.average.model if self.average is not None else self.model  # validated, exported
        self.state = TrainState()
        self.generator = torch.Generator().manual_seed(settings.seed)  # in the checkpoint
        self.checkpoint = self.out / CHECKPOINT

    def restore(self) -> None:
        """Continue from the checkpoint in the run folder, if there is one; the run's settings and
        number of processes must be those it was started with."""
        if not self.checkpoint.is_file():
            return
        saved = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        if not self.settings.continues(saved["config"]):
            raise UsageError(f"{self.checkpoint}: the run was started with other settings; use another --out")
        world = saved.get("world", 1)
        if world != self.ranks.world:
            raise UsageError(
                f"{self.checkpoint}: the run was started with {world} process(es), not "
                f"{self.ranks.world}; resume it with as many (they decide the batches)"
            )
        self.model.load_state_dict(saved["model"])
        if self.average is not None:
            self.average.model.load_state_dict(saved.get("ema", saved["model"]))
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])  # dropout draws from the global generator
        if self.device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        self.state = TrainState(**saved["state"])
        if self.ranks.rank:  # the saved generator state is rank 0's: the others draw their own dropout
            torch.manual_seed(
                self.settings.seed * 1_000_003 + self.state.step * self.ranks.world + self.ranks.rank
            )
        self.emit({"event": "resumed", "step": self.state.step})

    def run(self, stop_at: int | None = None) -> Path:
        """Train to the last step, the time limit, a signal or ``stop_at`` steps; returns the path of
        the best weights."""
        ranks, device, total = self.ranks, self.device, self.settings.total_steps
        if not distributed.all_equal(self.state.step, ranks, device):
            raise RadnError(f"the ranks resumed at different steps: does every node see {self.checkpoint}?")
        self.trained = distributed.wrap(self.model, ranks, device)  # the model itself in one process
        if ranks.main:
            (self.out / "config.json").write_text(json.dumps(asdict(self.settings), indent=2))
        batches = self.recipe.batches(self.state.step, self.generator)
        self.started = time.perf_counter() - self.state.seconds
        self.progress.start("training", total - self.state.step)
        with StopRequests() as stops:  # Ctrl-C/SIGTERM: end the step, save, stop (module doc of .stop)
            while self.state.step < total:
                if distributed.agree(self._late(), ranks, device):
                    self.emit({"event": "time_limit", "step": self.state.step})
                    break
                if stop_at is not None and self.state.step >= stop_at:
                    return self._pause()
                if distributed.any_rank(stops.signum is not None, ranks, device):
                    self._stop(stops.signum or signal.SIGTERM)  # another rank's: torchrun signals them all
                self.step(batches)
        return self._finish()

    def _late(self) -> bool:
        minutes = self.settings.max_minutes
        return bool(minutes) and time.perf_counter() - self.started > 60 * minutes

    def step(self, batches: Iterator) -> None:
        """One optimisation step on the next batch; rank 0 then logs, validates and checkpoints."""
        step, tick = self.state.step, time.perf_counter()
        batch = next(batches)
        data_seconds = time.perf_counter() - tick
        loss = self.recipe.loss(self.trained, batch, step)
        logged = distributed.mean_over_ranks(loss.detach(), self.ranks)  # the same on every rank
        if not torch.isfinite(logged):
            raise RadnError(f"training diverged at step {step} (loss {float(logged)}); lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.average is not None:
            self.average.update(self.model)
        self.state.step += 1
        if not self.ranks.main:  # rank 0 alone validates, logs, checkpoints and exports
            return
        seconds = time.perf_counter() - tick
        self._record(
            {
                "event": "step",
                "step": self.state.step,
                "total": self.settings.total_steps,
                "stage": self.recipe.stage(step),
                "loss": float(logged),
                "lr": self.scheduler.get_last_lr()[0],
                "images_per_s": self.recipe.images_per_step * self.ranks.world / seconds,
                "data_fraction": data_seconds / seconds,
            }
        )

    def _record(self, event: dict) -> None:
        """Validate at its cadence (exporting a new best), then log, report and checkpoint the step."""
        state, settings = self.state, self.settings
        if state.step % settings.val_every == 0 or state.step == settings.total_steps:
            event.update(self.recipe.validate(self.exported))
            if event["val_srocc"] > state.best_srocc:
                state.best_srocc, state.best_step = event["val_srocc"], state.step
                self.export(self.out / BEST, event)
        state.seconds = time.perf_counter() - self.started
        state.history.append({k: v for k, v in event.items() if k != "event"})
        with open(self.out / "log.jsonl", "a") as log:
            log.write(json.dumps(event) + "\n")
        self.emit(event)
        self.progress.advance()
        if state.step % settings.checkpoint_every == 0 or state.step == settings.total_steps:
            self.save_checkpoint()

    def _pause(self) -> Path:
        """``stop_at`` reached: checkpoint, as if interrupted here."""
        if self.ranks.main:
            self.save_checkpoint()
        self.emit({"event": "stopped", "step": self.state.step})
        distributed.barrier(self.ranks)
        return self.out / BEST

    def _stop(self, signum: int) -> None:
        """A signal: checkpoint, export the last weights, raise TrainingStopped."""
        step, total = self.state.step, self.settings.total_steps
        if self.ranks.main:
            self.save_checkpoint()
            latest = next((h for h in reversed(self.state.history) if "val_srocc" in h), {})
            self.export(self.out / LAST, latest)
        name = signal.Signals(signum).name
        self.emit({"event": "signal", "step": step, "signal": name})
        distributed.barrier(self.ranks)
        raise TrainingStopped(
            f"stopped by {name} at step {step} of {total}; checkpoint and {self.out / LAST} "
            "written, `radn train --resume` continues",
            signum,
            step,
        )

    def _finish(self) -> Path:
        """The end (or the time limit): validate, export the best and the last weights, checkpoint."""
        state = self.state
        if not self.ranks.main:
            distributed.barrier(self.ranks)  # until rank 0 has exported
            return self.out / BEST
        final = self.recipe.validate(self.exported)
        if final["val_srocc"] > state.best_srocc or not (self.out / BEST).is_file():
            state.best_srocc, state.best_step = final["val_srocc"], state.step
            self.export(self.out / BEST, final)
        self.export(self.out / LAST, final)
        for message in self.recipe.notes():
            self.emit({"event": "note", "step": state.step, "message": message})
        self.save_checkpoint()
        self.emit(
            {
                "event": "done",
                "step": state.step,
                "best_step": state.best_step,
                "best_val_srocc": state.best_srocc,
                "seconds": state.seconds,
                **final,
            }
        )
        distributed.barrier(self.ranks)
        return self.out / BEST

    def save_checkpoint(self) -> None:
        """The run's state now (at each checkpoint, a stop, a signal and the end), written whole."""
        saved = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": asdict(self.state),
            "config": self.settings.fixed(),
            "world": self.ranks.world,
            **({"ema": self.average.model.state_dict()} if self.average is not None else {}),
            **({"cuda_rng": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {}),
        }
        with atomic_write(self.checkpoint, durable=True) as temporary:
            torch.save(saved, temporary)

    def export(self, path: Path, metrics: dict) -> None:
        """The validated model (the moving average when on) as radn weights."""
        training_data, score_scale = self.recipe.export_metadata()
        save_weights(
            self.exported,
            path,
            name=self.settings.name,
            dtype=torch.float32,
            training_data=training_data,
            score_scale=score_scale,
            score_direction="higher_is_better",
            metrics={
                "held_out_synthetic": {k: metrics[k] for k in ("val_srocc", "val_rmse") if k in metrics},
                **({"held_out_rated": {"srocc": metrics["db_srocc"]}} if "db_srocc" in metrics else {}),
                "step": self.state.step,
            },
            extra={
                "recipe": json.dumps(self.settings.recorded(), sort_keys=True),
                "device": str(self.device),
                "training_seconds": f"{self.state.seconds:.0f}",
                "steps": str(self.state.step),
            },
        )
