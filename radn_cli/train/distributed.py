"""Data-parallel training under ``torchrun``: which process this is, and the few collective steps the
training loop needs.

``torchrun --nproc-per-node N -m radn_cli train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment. :func:`setup` joins
them into one process group (gloo on the CPU, NCCL on CUDA, one GPU per process by local rank);
without those variables it returns a single-process :class:`Ranks` and nothing else changes.
The trainer wraps the model in DistributedDataParallel, gives each rank its own batches, and lets rank 0
alone validate, checkpoint, export and log (see :mod:`.trainer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import UsageError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, checkpoints, exports and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def from_environment() -> Ranks:
    """The ranks torchrun put in the environment (one process: rank 0 of 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise UsageError(f"bad torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK): {exc}") from exc
    return Ranks(rank, world, local_rank)


def setup(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun prepared; returns the ranks and this rank's device.

    On CUDA each process takes the GPU of its local rank and NCCL; on the CPU, gloo.
    """
    ranks = from_environment()
    if not ranks.distributed:
        return ranks, device
    if device.type == "cuda":
        if device.index is not None:
            raise UsageError(
                "under torchrun each process takes the GPU of its local rank: "
                f"give --device cuda, not {device}"
            )
        if ranks.local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"local rank {ranks.local_rank} has no GPU of its own ({torch.cuda.device_count()} on "
                "this node): start at most one process per GPU (--nproc-per-node)"
            )
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return ranks, device


def teardown(ranks: Ranks) -> None:
    if ranks.distributed and dist.is_initialized():
        dist.destroy_process_group()


def agree(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """Rank 0's decision (stop now, say), the same on every rank, so no rank waits on a missing one."""
    if not ranks.distributed:
        return flag
    decision = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(decision, src=0)
    return bool(decision.item())


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """Whether the flag is set on any rank (a signal that reached one of them), the same on every rank."""
    if not ranks.distributed:
        return flag
    raised = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(raised, op=dist.ReduceOp.MAX)
    return bool(raised.item())


def all_equal(value: int, ranks: Ranks, device: torch.device) -> bool:
    """Whether every rank holds the same integer (a resumed step, say); the same answer on all."""
    if not ranks.distributed:
        return True
    low = torch.tensor([float(value)], device=device)
    high = low.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(low.item() == high.item())


def mean_over_ranks(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The mean of a scalar over all ranks (the loss that is logged and checked)."""
    if not ranks.distributed:
        return value
    total = value.detach().clone().float()
    dist.all_reduce(total)
    return total / ranks.world


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()


class _SharedReference(torch.nn.Module):
    """RADN's training forward (one reference pass per photo) as ``forward``, which DDP hooks."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, dist: torch.Tensor, ref: torch.Tensor):
        return self.model.forward_shared_reference(dist, ref)


class _DistributedRADN(torch.nn.parallel.DistributedDataParallel):
    def forward_shared_reference(self, dist: torch.Tensor, ref: torch.Tensor):
        return self(dist, ref)


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """What the loop trains: the model itself in one process, else a DDP wrapper (its weights are
    rank 0's from here on) with the same ``forward_shared_reference``."""
    if not ranks.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return _DistributedRADN(_SharedReference(model), device_ids=ids)
