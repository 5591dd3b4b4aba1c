"""RADN-Lite's frozen-trunk stage: per-patch statistics of training pairs, computed once and stored.

With the trunk frozen (and the deformable step still the identity), everything the trainable part of
RADN-Lite sees of a (reference, distorted) pair is its per-patch statistics
(:func:`radn_cli.models.lite.branch_stats` and :func:`~radn_cli.models.lite.compare_stats`: 550 +
550 + 547 numbers per 32x32 patch, 995 comparison numbers with ``texture``). They are
computed once per image version and kept (float16), so that a CPU hour of training spends its time
on the heads instead of on distortions and the trunk: building costs a distortion and a trunk pass
per version, an epoch over the stored statistics costs seconds.

Storage: a folder of chunks ``chunk_NNNNN.pt``, each holding ``visits`` photo visits (one region of a
photo and its K versions; :func:`radn_cli.train.data.make_versions`), made from a generator seeded by
(seed, chunk): chunks are independent, so a build can be interrupted, resumed and split across
processes (``part``/``parts``) and gives the same chunks. A human-rated database (the TID2013 dev
set, folds by reference) is stored the same way, one pair per version (:func:`rated_stats`), and so
are clean geometric copies of its references (:func:`reference_copies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..images import load_image
from ..models.lite import RADNLite
from .data import PhotoBank, geometric_copy, make_versions

CHUNK = "chunk_{:05d}.pt"


@dataclass
class StatsSet:
    """Per-patch statistics of V references with K versions each (all with N patches)."""

    ref: torch.Tensor  # (V, N, 550) float16
    dist: torch.Tensor  # (V, K, N, 550) float16
    compare: torch.Tensor  # (V, K, N, 547 or 995) float16
    mean: torch.Tensor  # (V, K) target (KADID DMOS mean, or the database's score)
    sd: torch.Tensor  # (V, K)
    cells: torch.Tensor  # (V, K, 2) KADID (type, level); (0, 0) clean; rated sets: (type, 0)
    group: torch.Tensor  # (V,) photo index (synthetic) or reference index (rated)

    def __len__(self) -> int:
        return self.ref.shape[0]

    def select(self, index: torch.Tensor) -> StatsSet:
        return StatsSet(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @staticmethod
    def cat(sets: list[StatsSet]) -> StatsSet:
        return StatsSet(*(torch.cat([getattr(s, f) for s in sets]) for f in StatsSet.__dataclass_fields__))

    def state(self) -> dict[str, torch.Tensor]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@torch.inference_mode()
def pair_stats(model: RADNLite, ref: torch.Tensor, dists: torch.Tensor):
    """A reference (3, h, w) and K versions (K, 3, h, w) -> (ref (N, 550), dist (K, N, 550),
    compare (K, N, 547 or 995)) through the model's (frozen) trunk and deformable step."""
    ref_stats, dist_stats, compare = model.shared_reference_stats(dists, ref)
    return ref_stats[0], dist_stats, compare


def build_chunk(
    model: RADNLite,
    bank: PhotoBank,
    chunk: int,
    *,
    seed: int,
    visits: int,
    indices: list[int] | None = None,
    **versions,
) -> StatsSet:
    """``visits`` photo visits of the synthetic stream (random photos, or the photos ``indices``), as
    per-patch statistics (module doc)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + chunk)
    refs, dists, compares, means, sds, cells, groups = [], [], [], [], [], [], []
    for visit in range(visits if indices is None else len(indices)):
        if indices is None:
            state = g.get_state()
            index = int(torch.randint(len(bank), (), generator=g))
            g.set_state(state)  # make_versions draws the same photo index
        else:
            index = indices[visit]
        v = make_versions(bank, g, index=None if indices is None else index, **versions)
        r, d, c = pair_stats(model, v.ref, v.dist)
        refs.append(r.half())
        dists.append(d.half())
        compares.append(c.half())
        means.append(v.mean)
        sds.append(v.sd)
        cells.append(v.cells)
        groups.append(index)
    return StatsSet(
        torch.stack(refs),
        torch.stack(dists),
        torch.stack(compares),
        torch.stack(means),
        torch.stack(sds),
        torch.stack(cells),
        torch.tensor(groups),
    )


def build(
    model: RADNLite,
    photos: list[Path],
    folder: str | Path,
    *,
    chunks: int,
    seed: int,
    visits: int,
    part: int = 0,
    parts: int = 1,
    on_chunk=None,
    **versions,
) -> None:
    """Make the missing chunks ``part``, ``part + parts``, ... of ``chunks`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bank = PhotoBank(photos, 0)
    model.eval()
    for chunk in range(part, chunks, parts):
        path = folder / CHUNK.format(chunk)
        if path.is_file():
            continue
        save(build_chunk(model, bank, chunk, seed=seed, visits=visits, **versions), path)
        if on_chunk is not None:
            on_chunk(chunk)


def save(stats: StatsSet, path: Path) -> None:
    """Store a set whole or not at all (a run stopped while storing leaves no half file)."""
    with atomic_write(path, durable=True) as temporary:
        torch.save(stats.state(), temporary)


def read(path: Path) -> StatsSet:
    return StatsSet(**torch.load(path, weights_only=True))


def load(folder: str | Path, chunks: int | None = None) -> StatsSet:
    """The chunks 0 .. ``chunks`` - 1 of a folder (default: every stored chunk, in order), as one set."""
    folder = Path(folder)
    if chunks is None:
        paths = sorted(folder.glob("chunk_*.pt"))
    else:
        paths = [folder / CHUNK.format(c) for c in range(chunks)]
    return StatsSet.cat([read(p) for p in paths])


def reference_order(database) -> list[Path]:
    """The references of a rated database in the order of their ``group`` numbers (sorted paths).
    ``radn train --folds N --fold K`` holds out the references whose group is K modulo N (round
    robin): :func:`reference_folds`."""
    return sorted({p.ref for p in database.pairs})


def reference_folds(database, folds: int) -> dict[Path, int]:
    """Each reference's fold under ``--folds``: its group number modulo ``folds``."""
    return {ref: group % folds for group, ref in enumerate(reference_order(database))}


@torch.inference_mode()
def rated_stats(model: RADNLite, database) -> StatsSet:
    """Every pair of a human-rated database as a one-version set (all its patches), grouped by
    reference (:func:`reference_order`); the target is the database's score oriented higher-is-better.
    All images must share one size (TID2013: 512x384)."""
    sign = 1.0 if database.higher_is_better else -1.0
    references = reference_order(database)
    loaded: dict[Path, torch.Tensor] = {}
    refs, dists, compares, means, cells, groups = [], [], [], [], [], []
    for pair in database.pairs:
        if pair.ref not in loaded:
            loaded[pair.ref] = load_image(pair.ref).tensor
        r, d, c = pair_stats(model, loaded[pair.ref], load_image(pair.dist).tensor[None])
        refs.append(r.half())
        dists.append(d.half())
        compares.append(c.half())
        means.append([sign * pair.mos])
        cells.append([[_type_number(pair.dist_type), 0]])
        groups.append(references.index(pair.ref))
    mean = torch.tensor(means)
    return StatsSet(
        torch.stack(refs),
        torch.stack(dists),
        torch.stack(compares),
        mean,
        torch.ones_like(mean),
        torch.tensor(cells),
        torch.tensor(groups),
    )


@torch.inference_mode()
def reference_copies(model: RADNLite, database, copies: int, seed: int) -> StatsSet:
    """Each reference of a rated database with ``copies`` clean geometric copies of it
    (:func:`radn_cli.train.data.geometric_copy`: moved by 1-2 px, rescaled by up to 1% or warped by up
    to 1 px; drawn from a generator seeded by ``seed`` and the reference's group number), grouped as
    :func:`rated_stats`; cells (0, 0), no target (people cannot tell them from the reference: training
    holds their scores to the identical copy's, :func:`radn_cli.train.heads.invariance_loss`)."""
    refs, dists, compares, groups = [], [], [], []
    for group, path in enumerate(reference_order(database)):
        g = torch.Generator().manual_seed(seed * 1_000_003 + group)
        ref = load_image(path).tensor
        versions = torch.stack([geometric_copy(ref, g) for _ in range(copies)])
        r, d, c = pair_stats(model, ref, versions)
        refs.append(r.half())
        dists.append(d.half())
        compares.append(c.half())
        groups.append(group)
    shape = (len(refs), copies)
    return StatsSet(
        torch.stack(refs),
        torch.stack(dists),
        torch.stack(compares),
        torch.zeros(shape),
        torch.ones(shape),
        torch.zeros(*shape, 2, dtype=torch.long),
        torch.tensor(groups),
    )


def _type_number(name: str) -> int:
    digits = "".join(ch for ch in str(name) if ch.isdigit())
    return int(digits) if digits else 0
