"""Scoring many pairs into a crash-safe CSV: decoding ahead in threads, one reference encoding per
reference, and on a GPU several pairs scored together (``Scorer.score_many``).

A bad pair gets its error in its row and the run goes on. Ctrl-C stops after the pairs in flight (one
on the CPU, one group on a GPU); every finished row is on disk. Prints nothing itself: progress is
reported through ``on_start`` and ``on_row``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import RadnError, describe
from .images import LoadedImage, check_pair, load_image
from .pairing import Pair
from .results import ResultsWriter
from .scoring import ReferenceEncoding, Scorer
from .tiling import grid_shape


@dataclass
class BatchSummary:
    scored: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False


def _load(path: Path) -> LoadedImage | RadnError:
    try:
        return load_image(path)
    except RadnError as exc:
        return exc


def _prefetch(
    pairs: list[Pair], pool: ThreadPoolExecutor, ahead: int
) -> Iterator[tuple[Pair, Future, Future]]:
    """Yield each pair with futures of its decoded images, keeping `ahead` pairs decoding in the background.

    Pairs come grouped by reference, so consecutive pairs share one decoded reference.
    """
    queue: deque[tuple[Pair, Future, Future]] = deque()
    last_ref: tuple[Path, Future] | None = None
    it = iter(pairs)

    def submit() -> None:
        nonlocal last_ref
        pair = next(it, None)
        if pair is None:
            return
        if last_ref is None or last_ref[0] != pair.ref:
            last_ref = (pair.ref, pool.submit(_load, pair.ref))
        queue.append((pair, last_ref[1], pool.submit(_load, pair.dist)))

    for _ in range(ahead):
        submit()
    while queue:
        item = queue.popleft()
        submit()
        yield item


def group_size(scorer: Scorer, requested: int = 0) -> int:
    """How many pairs are scored together: ``requested``, or with 0 the device's default.

    CUDA: as many as it takes to fill one forward pass (``batch_size`` patches) with small images, so
    the GPU is not left waiting on one 288x288 pair at a time. CPU: one pair at a time; on 2 cores a
    forward pass of 81 patches already keeps the cores busy (benchmarks/README.md), and a pair's
    score is then bit-identical to ``radn score``'s.
    """
    if requested:
        return requested
    return MAX_GROUP if scorer.device.type == "cuda" else 1


MAX_GROUP = 64  # pairs held decoded at once by a group (a group also ends at batch_size patches)


def default_workers(scorer: Scorer) -> int:
    """Decoding threads: 2 beside CPU scoring (which needs the cores), up to 8 feeding a GPU."""
    return min(8, os.cpu_count() or 1) if scorer.device.type == "cuda" else 2


@dataclass
class _Ready:
    """A pair whose images decoded and fit together, waiting in a group to be scored."""

    pair: Pair
    row: dict
    ref: LoadedImage
    dist: LoadedImage

    @property
    def patches(self) -> int:
        rows, cols = grid_shape(self.dist.height, self.dist.width)
        return rows * cols


class _GroupScorer:
    """Scores groups of ready pairs, keeping the encoding of the last reference for the next group."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.last: tuple[Path, ReferenceEncoding] | None = None

    def _encodings(self, group: list[_Ready]) -> list[ReferenceEncoding]:
        known = dict([self.last]) if self.last else {}
        new = list(dict.fromkeys(r.pair.ref for r in group if r.pair.ref not in known))
        images = {r.pair.ref: r.ref.tensor for r in group}
        known.update(zip(new, self.scorer.encode_references([images[path] for path in new])))
        self.last = (group[-1].pair.ref, known[group[-1].pair.ref])
        return [known[r.pair.ref] for r in group]

    def score(self, group: list[_Ready]):
        """Yield (ready pair, PairScore or the error it raised) for every pair of the group, in order.

        If the group as a whole fails (out of memory, say), its pairs are retried one by one, so only
        the pair that cannot be scored gets an error row.
        """
        try:
            results = self.scorer.score_many(
                list(zip(self._encodings(group), (r.dist.tensor for r in group)))
            )
        except (RadnError, RuntimeError, MemoryError) as exc:
            self.last = None
            if len(group) == 1:
                yield group[0], exc
                return
            for ready in group:
                yield from self.score([ready])
            return
        yield from zip(group, results)


def _error_message(pair: Pair, exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RadnError) else f"{pair.dist}: {describe(exc)}"


def run_batch(
    scorer: Scorer,
    pairs: Iterable[Pair],
    output: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 0,
    pairs_per_step: int = 0,
    on_start: Callable[[int], None] | None = None,
    on_row: Callable[[], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Score ``pairs`` into the CSV ``output``; ``workers`` decoding threads and ``pairs_per_step``
    pairs scored together (0: the device's defaults, ``default_workers`` and ``group_size``)."""
    summary = BatchSummary()
    weights_id = scorer.info.weights_id
    base = {"weights": weights_id, "precision": scorer.precision}
    workers = workers or default_workers(scorer)
    group_limit = group_size(scorer, pairs_per_step)
    with ResultsWriter(output, resume=resume, overwrite=overwrite) as writer:
        done = writer.done_keys() if resume else set()
        todo = []
        for pair in pairs:
            if (str(pair.ref), str(pair.dist), weights_id, scorer.precision) in done:
                summary.skipped += 1
            else:
                todo.append(pair)
        if on_start:
            on_start(len(todo))

        def finish(row: dict, error: str = "") -> None:
            row["error"] = error
            if error:
                summary.failed += 1
                if on_error:
                    on_error(error)
            else:
                summary.scored += 1
            writer.write(row)
            if on_row:
                on_row()

        engine = _GroupScorer(scorer)
        group: list[_Ready] = []

        def flush() -> None:
            for ready, result in engine.score(group):
                if isinstance(result, BaseException):
                    finish(ready.row, _error_message(ready.pair, result))
                else:
                    ready.row.update(
                        score=result.score, patches=result.patches, width=result.width, height=result.height
                    )
                    finish(ready.row)
            group.clear()

        try:
            ahead = max(2 * workers, 2 * group_limit)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for pair, ref_future, dist_future in _prefetch(todo, pool, ahead=ahead):
                    row = {"ref": str(pair.ref), "dist": str(pair.dist), **base}
                    try:
                        ref_image, dist_image = ref_future.result(), dist_future.result()
                        for loaded in (ref_image, dist_image):
                            if isinstance(loaded, RadnError):
                                raise loaded
                        check_pair(ref_image, dist_image, ref_path=pair.ref, dist_path=pair.dist)
                    except (RadnError, RuntimeError, MemoryError) as exc:
                        finish(row, _error_message(pair, exc))
                        continue
                    group.append(_Ready(pair, row, ref_image, dist_image))
                    if len(group) >= group_limit or sum(r.patches for r in group) >= scorer.batch_size:
                        flush()
                if group:
                    flush()
        except KeyboardInterrupt:
            summary.interrupted = True
    return summary
