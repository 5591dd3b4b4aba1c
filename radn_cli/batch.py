"""Scoring many pairs into a crash-safe CSV: decoding ahead in threads, one reference encoding per reference.

A bad pair gets its error in its row and the run goes on. Ctrl-C stops after the row in flight; every
finished row is on disk. Prints nothing itself: progress is reported through ``on_start`` and ``on_row``.
"""

from __future__ import annotations

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


def run_batch(
    scorer: Scorer,
    pairs: Iterable[Pair],
    output: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 2,
    on_start: Callable[[int], None] | None = None,
    on_row: Callable[[], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> BatchSummary:
    summary = BatchSummary()
    weights_id = scorer.info.weights_id
    base = {"weights": weights_id, "precision": scorer.precision}
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
        reference: tuple[Path, ReferenceEncoding] | None = None
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for pair, ref_future, dist_future in _prefetch(todo, pool, ahead=2 * workers):
                    row = {"ref": str(pair.ref), "dist": str(pair.dist), **base}
                    try:
                        ref_image, dist_image = ref_future.result(), dist_future.result()
                        for loaded in (ref_image, dist_image):
                            if isinstance(loaded, RadnError):
                                raise loaded
                        check_pair(ref_image, dist_image, ref_path=pair.ref, dist_path=pair.dist)
                        if reference is None or reference[0] != pair.ref:
                            reference = (pair.ref, scorer.encode_reference(ref_image.tensor))
                        result = scorer.score(reference[1], dist_image.tensor)
                        row.update(
                            score=result.score,
                            patches=result.patches,
                            width=result.width,
                            height=result.height,
                            error="",
                        )
                        summary.scored += 1
                    except (RadnError, RuntimeError, MemoryError) as exc:
                        message = str(exc) if isinstance(exc, RadnError) else f"{pair.dist}: {describe(exc)}"
                        row.update(error=message)
                        summary.failed += 1
                        if on_error:
                            on_error(message)
                    writer.write(row)
                    if on_row:
                        on_row()
        except KeyboardInterrupt:
            summary.interrupted = True
    return summary
