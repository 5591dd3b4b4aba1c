"""The one scoring pipeline: pairs in, each pair with its decoded images and its score (or error) out.

``score_pairs`` is what ``radn score``, ``radn batch`` (``run_batch``) and ``radn eval``
(``evaluate``) run on. It owns, in one place:

* decoding ahead in ``workers`` threads (PNG decoding, not the model, is what limits a GPU), with one
  decode per run of pairs that share a reference;
* one reference encoding per reference: consecutive pairs of the same reference reuse it, so give
  pairs grouped by reference (every pairing mode does);
* on a GPU, ``pairs_per_step`` pairs scored together (``Scorer.score_many``), a group that fails as a
  whole (out of memory, say) retried pair by pair so that only a pair failing on its own gets an error;
* bad input as a result, not an exception: an unreadable image, a size mismatch or a pair that runs
  out of memory is yielded with its one-line ``error``, and the next pair goes on. Any other error (a
  bug) is raised;
* the viewing scale (``scale``, :mod:`radn_cli.viewing`): both images resized in the decoding
  threads before they are scored (at ``native``, the default, nothing is resized: the tensors scored
  are the decoded ones);
* how far the scoring of the pairs in hand has come (``progress``, patches done of the step), for a
  bar that moves within a big pair.

Results come out in the order of the input. Ctrl-C (KeyboardInterrupt) propagates to the caller
after the pairs in flight; the decoding threads are stopped and pending decodes dropped.

Example (``scorer=None`` decodes and checks the pairs without scoring them):

    >>> from radn_cli.pairing import Pair
    >>> from radn_cli.pipeline import score_pairs
    >>> [item.error is None for item in score_pairs(None, [Pair("examples/ref.png", "examples/dist.png")])]
    [True]
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .devices import out_of_memory
from .errors import RadnError, describe
from .images import LoadedImage, check_pair, load_image
from .pairing import Pair
from .tiling import grid_shape
from .viewing import Scale, parse_scale, scaled_pixels

if TYPE_CHECKING:
    import torch

    from .scoring import PairScore, ReferenceEncoding, Scorer

StepProgress = Callable[[int, int], None]
"""``progress(done, total)``: patches scored so far of the step in hand (a group of pairs, one pair on
the CPU, with the encoding of its new references) and in all; each step counts from 0."""

MAX_GROUP = 64  # pairs held decoded at once by a group (a group also ends at batch_size patches)


@dataclass
class ScoredPair:
    """One pair as it came through the pipeline: its images when they decoded and fit together, its
    score when it was scored, else the one-line ``error`` that says why not (with the images set, the
    pair decoded but could not be scored). ``ref`` and ``dist`` are the images as decoded; with a
    viewing scale other than native, ``scaled`` holds the (reference, distorted) pixels that were
    scored, and the result's width and height are theirs."""

    pair: Pair
    ref: LoadedImage | None = None
    dist: LoadedImage | None = None
    result: PairScore | None = None
    error: str | None = None
    exception: BaseException | None = None  # what ``error`` describes (for a traceback with --verbose)
    scaled: tuple[torch.Tensor, torch.Tensor] | None = None

    def fail(self, exc: BaseException) -> None:
        self.error, self.exception = error_message(self.pair, exc), exc

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (reference, distorted) pixels scored: the decoded ones, or ``scaled``."""
        return self.scaled if self.scaled is not None else (self.ref.tensor, self.dist.tensor)


def default_workers(scorer: Scorer | None) -> int:
    """Decoding threads: 2 beside CPU scoring (which needs the cores), up to 8 feeding a GPU."""
    if scorer is not None and scorer.device.type == "cuda":
        return min(8, os.cpu_count() or 1)
    return 2


def group_size(scorer: Scorer | None, requested: int = 0) -> int:
    """How many pairs are scored together: ``requested``, or with 0 the device's default.

    CUDA: as many as it takes to fill one forward pass (``batch_size`` patches) with small images, so
    the GPU is not left waiting on one 288x288 pair at a time. CPU: one pair at a time; on 2 cores a
    forward pass of 81 patches already keeps the cores busy (benchmarks/README.md), and a pair's
    score is then bit-identical to a pair scored on its own.
    """
    if requested:
        return requested
    return MAX_GROUP if scorer is not None and scorer.device.type == "cuda" else 1


def error_message(pair: Pair, exc: BaseException) -> str:
    """A pair's error as one line naming the file: our errors say it already, others get the path;
    running out of memory says what to do about it."""
    if isinstance(exc, RadnError):
        return str(exc)
    message = f"{pair.dist}: {describe(exc)}"
    if isinstance(exc, MemoryError) or "out of memory" in message.lower():
        message += " (out of memory: try a smaller --batch-size)"
    return message


def _pair_error(exc: Exception) -> bool:
    """The error is the pair's (bad input, or not enough memory for it): it goes in the pair's row."""
    return isinstance(exc, RadnError) or out_of_memory(exc)


@dataclass(frozen=True)
class _Decoded:
    """An image as the decoding threads hand it on: decoded, and resized to the viewing scale (None at
    native), or why it cannot be (an error of the pair, raised once the pair's sizes are checked)."""

    image: LoadedImage
    scaled: torch.Tensor | RadnError | None


def _prepared(image: LoadedImage, scale: Scale) -> _Decoded:
    try:
        return _Decoded(image, scaled_pixels(image, scale))
    except RadnError as exc:
        return _Decoded(image, exc)


def _load(path: Path, scale: Scale) -> _Decoded | RadnError:
    try:
        image = load_image(path)
    except RadnError as exc:
        return exc
    return _prepared(image, scale)


def _done(value: object) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _prefetch(
    pairs: Iterable[Pair],
    pool: ThreadPoolExecutor,
    ahead: int,
    known: Mapping[Path, LoadedImage],
    scale: Scale,
) -> Iterator[tuple[Pair, Future, Future]]:
    """Each pair with futures of its decoded (and resized) images, ``ahead`` pairs decoding in the
    background; consecutive pairs of one reference share its decode."""
    queue: deque[tuple[Pair, Future, Future]] = deque()
    last_ref: tuple[Path, Future] | None = None
    it = iter(pairs)

    def submit(path: Path) -> Future:
        if path not in known:
            return pool.submit(_load, path, scale)
        if scale.native:
            return _done(_Decoded(known[path], None))
        return pool.submit(_prepared, known[path], scale)  # decoded already, resized in a thread

    def fill() -> None:
        nonlocal last_ref
        pair = next(it, None)
        if pair is None:
            return
        if last_ref is None or last_ref[0] != pair.ref:
            last_ref = (pair.ref, submit(pair.ref))
        queue.append((pair, last_ref[1], submit(pair.dist)))

    for _ in range(ahead):
        fill()
    while queue:
        item = queue.popleft()
        fill()
        yield item


class _Encodings:
    """Scores groups of decoded pairs, keeping the last reference's encoding for the next group;
    tells ``progress`` (if any) how far each group has come."""

    def __init__(self, scorer: Scorer, progress: StepProgress | None = None) -> None:
        self.scorer = scorer
        self.progress = progress
        self.last: tuple[Path, ReferenceEncoding] | None = None

    def _hooks(self, new: list[torch.Tensor], group: list[ScoredPair]):
        """The scorer's progress callbacks for the group's encoding and scoring (None without
        ``progress``): the step is the patches of its new references and of its distorted images."""
        if self.progress is None:
            return None, None
        encoded = sum(_patches(image) for image in new)
        total = encoded + sum(_patches(item.tensors[1]) for item in group)
        report = self.progress
        return (lambda done, _: report(done, total)), (lambda done, _: report(encoded + done, total))

    def _encodings(self, group: list[ScoredPair]) -> tuple[list[ReferenceEncoding], object]:
        known = dict([self.last]) if self.last else {}
        new = list(dict.fromkeys(item.pair.ref for item in group if item.pair.ref not in known))
        images = {item.pair.ref: item.tensors[0] for item in group}
        encoding, scoring = self._hooks([images[path] for path in new], group)
        hook = {} if encoding is None else {"progress": encoding}
        known.update(zip(new, self.scorer.encode_references([images[path] for path in new], **hook)))
        self.last = (group[-1].pair.ref, known[group[-1].pair.ref])
        return [known[item.pair.ref] for item in group], scoring

    def score(self, group: list[ScoredPair]) -> Iterator[ScoredPair]:
        """Score the group and yield its pairs, each with ``result`` or ``error`` filled in. A group
        that fails as a whole is retried pair by pair, each yielded as soon as it is done."""
        try:
            encodings, scoring = self._encodings(group)
            hook = {} if scoring is None else {"progress": scoring}
            results = self.scorer.score_many(
                list(zip(encodings, (item.tensors[1] for item in group))), **hook
            )
        except Exception as exc:
            if not _pair_error(exc):
                raise
            self.last = None
            if len(group) == 1:
                group[0].fail(exc)
                yield group[0]
                return
            for item in group:
                yield from self.score([item])
            return
        for item, result in zip(group, results):
            item.result = result
            yield item


def _patches(pixels: torch.Tensor) -> int:
    rows, cols = grid_shape(pixels.shape[1], pixels.shape[2])
    return rows * cols


def _checked(item: ScoredPair, ref: _Decoded | RadnError, dist: _Decoded | RadnError) -> None:
    """Set the pair's images (and scaled pixels) once they decoded, fit together and scale; raise the
    pair's error otherwise."""
    for loaded in (ref, dist):
        if isinstance(loaded, RadnError):
            raise loaded
    check_pair(ref.image, dist.image, ref_path=item.pair.ref, dist_path=item.pair.dist)
    for loaded in (ref, dist):
        if isinstance(loaded.scaled, RadnError):
            raise loaded.scaled
    item.ref, item.dist = ref.image, dist.image
    if ref.scaled is not None:
        item.scaled = (ref.scaled, dist.scaled)


def score_pairs(
    scorer: Scorer | None,
    pairs: Iterable[Pair],
    *,
    workers: int = 0,
    pairs_per_step: int = 0,
    known: Mapping[Path, LoadedImage] | None = None,
    scale: Scale | str | None = None,
    progress: StepProgress | None = None,
) -> Iterator[ScoredPair]:
    """Decode, check and score ``pairs``, yielding a ``ScoredPair`` for each, in input order.

    ``workers`` decoding threads and ``pairs_per_step`` pairs scored together (0: the device's
    defaults, ``default_workers`` and ``group_size``). ``scorer=None`` only decodes and checks the
    pairs (for metrics that need the images, not RADN). ``known``: images already decoded, by path
    (``radn score`` decodes its reference first, to report a bad one before the model loads).
    ``scale``: the viewing scale (:func:`radn_cli.viewing.parse_scale`; None: native).
    ``progress``: called from this thread as each step's patches are scored (:data:`StepProgress`).
    """
    scale = parse_scale(scale)
    workers = workers or default_workers(scorer)
    limit = group_size(scorer, pairs_per_step)
    batch_size = scorer.batch_size if scorer is not None else 0
    encodings = _Encodings(scorer, progress) if scorer is not None else None
    group: list[ScoredPair] = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="radn-decode")
    try:
        ahead = max(2 * workers, 2 * limit)
        for pair, ref_future, dist_future in _prefetch(pairs, pool, ahead, known or {}, scale):
            item = ScoredPair(pair)
            try:
                _checked(item, ref_future.result(), dist_future.result())
            except Exception as exc:
                if not _pair_error(exc):
                    raise
                item.fail(exc)
            if encodings is None or item.error is not None:
                if group:  # keep the input order: the pairs before this one come out first
                    yield from encodings.score(group)
                    group = []
                yield item
                continue
            group.append(item)
            if len(group) >= limit or sum(_patches(g.tensors[1]) for g in group) >= batch_size:
                yield from encodings.score(group)
                group = []
        if group:
            yield from encodings.score(group)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
