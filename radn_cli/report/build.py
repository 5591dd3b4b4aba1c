"""Building a report: a results CSV in, ``report.html`` and ``report_files/`` out.

Owns the order of the work: which pictures the folder lacks (``assets``), heatmaps of the scored
pairs that lack one (the model, through ``pipeline.score_pairs``, for those pairs only), thumbnails
and views of the images still missing (decoded in threads), then the page (``page`` and
``render``). ``BatchHeatmaps`` is the other way in: `radn batch --report` hands it every pair as it
is scored, with its decoded images and per-patch result, so the report after the batch needs no
second pass of the model.

The maps are those of ``radn heatmap`` (``--map``, default ``heatmap.DEFAULT_MAP``), coloured over
the same range (``--range``, default fixed: for scores the weights' score scale, so that the maps
of two pairs compare): ``colours`` resolves it once for the weights at hand.

Prints nothing: progress goes to a ``progress.Progress`` (stages "heatmaps" and "pictures"); problems
come back in ``Built.problems``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RadnError, reason
from ..heatmap.choices import DEFAULT_MAP, DEFAULT_RANGE, ColorRange, color_range, scale_range
from ..images import LoadedImage, load_image
from ..pairing import Pair
from ..pipeline import ScoredPair, score_pairs
from ..progress import SILENT, Progress
from .assets import Assets, files_folder
from .page import page_context
from .plan import Planned, missing_heatmaps, plan_rows
from .render import write_report
from .table import Results, rank_by_reference

if TYPE_CHECKING:
    from ..scoring import Scorer
    from ..weights import WeightsInfo


def colours(info: WeightsInfo | None, kind: str, value_range: str | ColorRange) -> ColorRange | None:
    """The colour range of the report's ``kind`` maps for ``--range`` ``value_range`` (parsed by
    ``heatmap.choices.parse_range``) and the weights' score scale; None: each map's own min..max."""
    return color_range(kind, value_range, scale_range(info.metadata) if info is not None else None)


def _writing(folder: Path, exc: OSError) -> RadnError:
    return RadnError(f"cannot write the report's pictures ({exc.strerror or exc})", folder)


class BatchHeatmaps:
    """The ``on_item`` hook of ``run_batch`` for `radn batch --report`: each pair's thumbnails, views
    and heatmap, written as it comes from the images and result the batch already has.

    Items scored elsewhere (``--engine ray``) come without their images: only those the pictures
    still need are decoded here (a reference once, not once per pair; the distorted image for its
    pictures or the heatmap over it). An image that does not decode here loses its pictures, and the
    other pairs keep theirs. A picture that cannot be written (disk full) does not stop the batch but
    stops the pictures. ``error`` sums up what went wrong, for a warning after the batch.
    """

    def __init__(
        self,
        output: Path,
        info: WeightsInfo,
        precision: str,
        *,
        kind: str = DEFAULT_MAP,
        value_range: str | ColorRange = DEFAULT_RANGE,
        scale: str = "native",
    ) -> None:
        self.assets = Assets(files_folder(output))
        self.weights = info.weights_id
        self.precision = precision
        self.higher_is_better = info.higher_is_better
        self.kind = kind
        self.colours = colours(info, kind, value_range)
        self.scale = scale
        self.first_problem: str | None = None  # what went wrong first
        self.problem_count = 0
        self.stopped = False  # a picture could not be written: no more are made
        self._undecodable: set[str] = set()  # keys of images that did not decode here
        try:
            self.assets.create()
        except OSError as exc:
            raise _writing(self.assets.folder, exc) from None

    @property
    def error(self) -> str | None:
        """The first problem (and how many more), None when there was none."""
        if self.first_problem is None:
            return None
        more = f" (and {self.problem_count - 1} more)" if self.problem_count > 1 else ""
        return f"{self.first_problem}{more}"

    def _problem(self, message: str) -> None:
        self.first_problem = self.first_problem or message
        self.problem_count += 1

    def __call__(self, item: ScoredPair) -> None:
        if self.stopped:
            return
        ref_key, dist_key = self.assets.image_key(item.pair.ref), self.assets.image_key(item.pair.dist)
        heatmap_key = None
        if ref_key is not None and dist_key is not None:
            heatmap_key = self.assets.heatmap_key(
                ref_key, dist_key, self.weights, self.precision, self.kind, self.colours, self.scale
            )
            if self.assets.has_heatmap(heatmap_key):
                heatmap_key = None  # drawn already (its name says what it shows)
        try:
            if item.result is not None and (item.ref is None or item.dist is None):
                item = self._decoded(item, ref_key, dist_key, heatmap_key is not None)
            self.assets.add_pair(
                item,
                ref_key,
                dist_key,
                heatmap_key,
                kind=self.kind,
                higher_is_better=self.higher_is_better,
                colours=self.colours,
            )
        except OSError as exc:
            self._problem(str(_writing(self.assets.folder, exc)))
            self.stopped = True

    def _decoded(
        self, item: ScoredPair, ref_key: str | None, dist_key: str | None, heatmap: bool
    ) -> ScoredPair:
        """``item`` with the images its pictures need and it came without: the reference when its
        pictures are not made yet, the distorted image when its pictures are not or ``heatmap`` is
        to be drawn. An image that does not decode stays None (its problem is kept)."""
        ref, dist = item.ref, item.dist
        if ref is None and self._missing(ref_key):
            ref = self._load(item.pair.ref, ref_key)
        if dist is None and (self._missing(dist_key) or (heatmap and dist_key not in self._undecodable)):
            dist = self._load(item.pair.dist, dist_key)
        return replace(item, ref=ref, dist=dist)

    def _missing(self, key: str | None) -> bool:
        """The image of ``key`` has no pictures yet, and did not fail to decode before."""
        return key is not None and key not in self._undecodable and not self.assets.has_image(key)

    def _load(self, path: Path, key: str | None) -> LoadedImage | None:
        try:
            return load_image(path)
        except RadnError as exc:  # an image that decoded where it was scored but not here
            if key is not None:
                self._undecodable.add(key)
            self._problem(f"no pictures: {exc}")
            return None


@dataclass
class Built:
    """What a build did, for the CLI's last lines."""

    output: Path
    folder: Path
    rows: int
    heatmaps: int  # rows shown with a heatmap
    computed: int = 0  # heatmaps drawn by this build with the model
    problems: list[str] = field(default_factory=list)


def compute_heatmaps(
    wanted: dict[str, list[Planned]],
    assets: Assets,
    scorer: Scorer,
    *,
    kind: str,
    colours: ColorRange | None = None,
    workers: int = 0,
    progress: Progress = SILENT,
) -> tuple[int, list[str]]:
    """Score the pairs of ``wanted`` (each at the viewing scale of its row) and draw their heatmaps
    (and the pictures of their images, which are decoded anyway); returns how many were drawn and a
    line for each pair that failed."""
    first = {key: plans[0] for key, plans in wanted.items()}
    # one run per scale; in it, one encoding per reference
    todo = sorted(wanted, key=lambda key: (first[key].row.scale, str(first[key].ref_path)))
    drawn, problems = 0, []
    progress.start("heatmaps", len(todo))
    for scale in dict.fromkeys(first[key].row.scale for key in todo):
        keys = [key for key in todo if first[key].row.scale == scale]
        pairs = [Pair(first[key].ref_path, first[key].dist_path) for key in keys]
        with closing(score_pairs(scorer, pairs, workers=workers, scale=scale)) as scored:
            for key, item in zip(keys, scored):
                try:
                    assets.add_pair(
                        item,
                        first[key].ref_key,
                        first[key].dist_key,
                        key,
                        kind=kind,
                        higher_is_better=scorer.info.higher_is_better,
                        colours=colours,
                    )
                except OSError as exc:
                    raise _writing(assets.folder, exc) from None
                if item.error:
                    note = f"no heatmap: {item.error}"
                    problems.append(note)
                else:
                    drawn, note = drawn + 1, ""
                for plan in wanted[key]:
                    plan.heatmap_ready, plan.heatmap_note = not item.error, note
                progress.advance()
    return drawn, problems


def make_pictures(
    plans: list[Planned], assets: Assets, *, workers: int = 0, progress: Progress = SILENT
) -> list[str]:
    """Thumbnails and views of every image the folder lacks, decoded in ``workers`` threads;
    returns a line for each image that could not be read."""
    todo: dict[str, Path] = {}
    for plan in plans:
        for key, path in ((plan.ref_key, plan.ref_path), (plan.dist_key, plan.dist_path)):
            if key is not None and key not in todo and not assets.has_image(key):
                todo[key] = path

    def one(key: str) -> str | None:
        try:
            assets.add_image(key, load_image(todo[key]))
        except RadnError as exc:
            return str(exc)
        except OSError as exc:
            raise _writing(assets.folder, exc) from None
        except (MemoryError, ValueError, RuntimeError) as exc:
            return f"{todo[key]}: {reason(exc)}"
        return None

    problems = []
    pool = ThreadPoolExecutor(max(1, workers or 2), thread_name_prefix="radn-pictures")
    try:
        progress.start("pictures", len(todo))
        for problem in pool.map(one, todo):
            if problem:
                problems.append(f"no pictures: {problem}")
            progress.advance()
    finally:  # Ctrl-C: drop the pictures not started
        pool.shutdown(wait=True, cancel_futures=True)
    return problems


def weights_mismatch(results: Results, info: WeightsInfo | None, *, heatmaps: bool = True) -> str | None:
    """A one-line warning when the weights at hand did not score (all of) the CSV, else None."""
    if info is None:
        return None
    others = sorted(set(results.weights) - {info.weights_id})
    if not others:
        return None
    drawn = "heatmaps drawn now and " if heatmaps else ""
    return (
        f"{results.path} was scored with {', '.join(others)}, not with {info.weights_id}: {drawn}the score "
        "scale and direction shown come from the latter"
    )


def build_report(
    results: Results,
    output: Path,
    *,
    info: WeightsInfo | None,
    scorer: Callable[[], Scorer] | None,
    kind: str = DEFAULT_MAP,
    value_range: str | ColorRange = DEFAULT_RANGE,
    workers: int = 0,
    progress: Progress = SILENT,
) -> Built:
    """Write ``output`` (the page) and its folder (``files_folder(output)``) for ``results``.

    ``info``: the weights' metadata (score scale and direction; None when unknown). ``scorer``:
    gives the model for heatmaps the folder lacks, called only when some are missing; None draws
    none (--no-heatmaps; heatmaps already drawn are still shown). ``kind`` and ``value_range``: the
    map and its colour range (``radn heatmap``'s --map and --range). Raises RadnError when the page
    or its pictures cannot be written.
    """
    assets = Assets(files_folder(output), base=results.path.parent)
    try:
        assets.create()
        assets.add_ramp()
    except OSError as exc:
        raise _writing(assets.folder, exc) from None
    rank_by_reference(results.rows, higher_is_better=info.higher_is_better if info is not None else True)
    span = colours(info, kind, value_range)
    plans = plan_rows(results, assets, kind, span)
    built = Built(output, assets.folder, len(plans), 0)
    wanted = missing_heatmaps(plans)
    if wanted and scorer is not None:
        built.computed, built.problems = compute_heatmaps(
            wanted, assets, scorer(), kind=kind, colours=span, workers=workers, progress=progress
        )
    built.problems += make_pictures(plans, assets, workers=workers, progress=progress)
    for plan in plans:  # the page leaves out pictures that could not be made
        plan.ref_key = plan.ref_key if plan.ref_key and assets.has_image(plan.ref_key) else None
        plan.dist_key = plan.dist_key if plan.dist_key and assets.has_image(plan.dist_key) else None
    built.heatmaps = sum(plan.heatmap_ready for plan in plans)
    context = page_context(
        results, plans, assets, info=info, kind=kind, colours=span, heatmaps=scorer is not None
    )
    write_report(output, context, assets.folder)
    return built
