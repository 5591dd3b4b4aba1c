"""``radn batch --engine ray``: the pairs scored by a pool of Ray actors, the CSV written by the driver.

The driver (this process) cuts the pair list into chunks of consecutive pairs of one reference (at
most :data:`CHUNK` each, so a reference is decoded and encoded once per chunk, and a reference with
thousands of distorted images still spreads over the pool), and hands them to Ray Data. An actor pool
scores them: each actor loads the weights once (they travel through Ray's object store, so the
workers need no copy of the file) into its own :class:`~radn_cli.Scorer` and runs
:func:`~radn_cli.pipeline.score_pairs` on each chunk, so a bad pair comes back as its error row just
as in one process, at the engine's viewing ``scale`` (``--scale``; the actors resize the images).
Results stream back in the order of the pairs (``preserve_order``), as
:class:`~radn_cli.pipeline.ScoredPair` items without their images.

An actor that dies is restarted and its chunk retried by Ray Data; the driver only ever sees a chunk's
rows once, when the chunk is complete, so a killed actor loses and doubles no row. Without an address a
local Ray instance is started for the run and stopped after it. The image paths must be readable on
every node (a shared file system, as for any cluster job).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import RadnError, UsageError, first_line
from ..pairing import Pair
from ..pipeline import ScoredPair, score_pairs
from ..scoring import PairScore, load_scorer
from ..viewing import parse_scale
from ..weights import read_info, resolve_weights

CHUNK = 16  # pairs of one reference scored by one actor call
MAX_BLOCKS = 10_000  # Ray Data blocks (a block's rows come back when all its chunks are scored)
INSTALL_HINT = "the Ray engine needs Ray: pip install 'radn[ray]'"


def import_ray():
    """Ray, or a one-line error that says how to install it (Ray is optional: imported here only)."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"{INSTALL_HINT} ({exc})") from exc
    return ray


def quiet_ray() -> None:
    """Ray's own notes off stderr, which is radn's (progress, one-line errors); errors still raise.
    Environment settings the user made win."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the core worker's C++ log lines
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def chunk_pairs(pairs: list[Pair], size: int = CHUNK) -> list[dict]:
    """Consecutive pairs of one reference, at most ``size`` to a chunk, in order."""
    chunks: list[dict] = []
    for pair in pairs:
        last = chunks[-1] if chunks else None
        if last is not None and last["ref"] == str(pair.ref) and len(last["dists"]) < size:
            last["dists"].append(str(pair.dist))
        else:
            chunks.append({"ref": str(pair.ref), "dists": [str(pair.dist)]})
    return chunks


class ChunkScorer:
    """One actor of the pool: a Scorer made once, then chunks of pairs scored into result rows."""

    def __init__(
        self,
        weights: list,
        name: str,
        device: str,
        precision: str,
        batch_size: int | None,
        threads,
        scale: str = "native",
    ):
        ray = import_ray()
        self.scale = scale
        torch.set_num_threads(max(1, int(threads)))
        data = ray.get(weights[0])  # nested in a list, so the ref reaches here unresolved
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            self.scorer = load_scorer(path, device=device, precision=precision, batch_size=batch_size)

    def __call__(self, chunk: dict) -> list[dict]:
        pairs = [Pair(Path(chunk["ref"]), Path(dist)) for dist in chunk["dists"]]
        return [to_row(item) for item in score_pairs(self.scorer, pairs, workers=1, scale=self.scale)]


def to_row(item: ScoredPair) -> dict:
    """A ScoredPair as a Ray Data row (plain types; the per-patch maps as float32 bytes)."""
    result = item.result
    row = {"ref": str(item.pair.ref), "dist": str(item.pair.dist), "error": item.error or ""}
    if result is None:
        return {**row, "score": float("nan"), "rows": 0, "cols": 0, "width": 0, "height": 0, "maps": b""}
    maps = torch.stack([result.patch_scores, result.patch_weights]).float().numpy()
    return {
        **row,
        "score": float(result.score),
        "rows": result.grid[0],
        "cols": result.grid[1],
        "width": result.width,
        "height": result.height,
        "maps": maps.tobytes(),
    }


def from_row(row: dict) -> ScoredPair:
    """The ScoredPair an actor sent (without its images)."""
    item = ScoredPair(Pair(Path(row["ref"]), Path(row["dist"])))
    if row["error"]:
        item.error = str(row["error"])
        return item
    grid = (int(row["rows"]), int(row["cols"]))
    maps = torch.from_numpy(np.frombuffer(row["maps"], dtype=np.float32).reshape(2, *grid).copy())
    item.result = PairScore(
        score=float(row["score"]),
        patch_scores=maps[0],
        patch_weights=maps[1],
        grid=grid,
        width=int(row["width"]),
        height=int(row["height"]),
    )
    return item


class RayEngine:
    """Scores a batch's pairs on a Ray cluster (module doc); an :class:`~radn_cli.engines.Engine`.

    ``address``: a running cluster (``ray start --head`` prints it; ``auto``; ``ray://HOST:10001``);
    None starts a local instance. ``actors``: pool size (default: one per GPU with GPU actors, else
    one per CPU). ``gpus_per_actor``: default 1 when the cluster has GPUs, else 0 (CPU actors, one
    core each). ``scale``: the viewing scale (``--scale``), the rows record it as ``self.scale``.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        address: str | None = None,
        actors: int | None = None,
        gpus_per_actor: float | None = None,
        precision: str = "fp32",
        batch_size: int | None = None,
        scale: str = "native",
    ) -> None:
        import_ray()  # before any work: a missing Ray is a one-line error
        self.scale = parse_scale(scale).text
        resolved = resolve_weights(weights)
        self.path = resolved.path
        self.info = read_info(resolved.path)
        self.weights_id = self.info.weights_id
        self.precision = precision
        self.address, self.actors, self.gpus_per_actor = address, actors, gpus_per_actor
        self.batch_size = batch_size
        self.pool: dict = {}  # set by connect: actors, gpus_per_actor, device
        self._started = False  # a local Ray instance started by connect

    def connect(self) -> None:
        """Join the cluster (or start a local instance) and size the pool: a wrong address or too few
        GPUs fail here, before the batch opens its output. ``score`` calls it when not done yet."""
        ray = import_ray()
        if not ray.is_initialized():
            quiet_ray()
            try:
                ray.init(
                    address=self.address,
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                    include_dashboard=False,
                    configure_logging=True,
                )
            except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError ...
                where = f"at {self.address}" if self.address else "(a local instance)"
                raise RadnError(f"cannot start Ray {where}: {first_line(str(exc))}") from exc
            self._started = True
        self.pool = self._pool(ray)

    def close(self) -> None:
        """Stop the local Ray instance this engine started (a cluster it joined keeps running)."""
        if self._started:
            import_ray().shutdown()
            self._started = False

    def _pool(self, ray) -> dict:
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        per_actor = self.gpus_per_actor if self.gpus_per_actor is not None else (1.0 if gpus else 0.0)
        if per_actor == 0 and self.precision == "fp16":
            raise UsageError("fp16 runs on GPUs only: give --gpus-per-actor or use fp32/bf16")
        if self.actors:
            actors = self.actors
        elif per_actor:
            actors = max(1, int(gpus // per_actor))
        else:
            actors = max(1, int(resources.get("CPU", 1)))
        if per_actor and actors * per_actor > gpus:
            raise RadnError(
                f"{actors} actor(s) x {per_actor:g} GPU(s) each, but the Ray cluster has {gpus:g} GPU(s)"
            )
        return {"actors": actors, "gpus_per_actor": per_actor, "device": "cuda" if per_actor else "cpu"}

    def score(self, pairs: list[Pair]) -> Iterator[ScoredPair]:
        ray = import_ray()
        try:
            if not pairs:
                return
            if not self.pool:
                self.connect()
            pool = self.pool
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True  # the CSV in the order of the pairs
            context.enable_progress_bars = False  # radn draws its own
            context.print_on_execution_start = False
            chunks = chunk_pairs(pairs)
            weights = ray.put(self.path.read_bytes())
            dataset = ray.data.from_items(chunks, override_num_blocks=min(len(chunks), MAX_BLOCKS))
            scored = dataset.flat_map(
                ChunkScorer,
                fn_constructor_kwargs={
                    "weights": [weights],
                    "name": self.path.name,
                    "device": pool["device"],
                    "precision": self.precision,
                    "batch_size": self.batch_size,
                    "threads": 1,
                    "scale": self.scale,
                },
                compute=ray.data.ActorPoolStrategy(size=min(pool["actors"], len(chunks))),
                num_cpus=1,
                num_gpus=pool["gpus_per_actor"],
            )
            for row in scored.iter_rows():
                yield from_row(row)
        finally:
            self.close()
