"""`radn eval`: score every pair of a human-rated database with RADN and classical metrics, then correlate.

Each pair is decoded once and every requested metric runs on it; RADN encodes each reference once.
PSNR, SSIM and MS-SSIM are computed on R, G and B and averaged (``channels="rgb"``): luma-only
versions cannot see colour distortions at all (TID2013's saturation change scores as identical).
Correlations are oriented so that a good metric gets a positive SROCC: quality scores (higher is
better) against the database's human scores turned to higher-is-better (DMOS databases are negated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import RadnError
from ..images import check_pair, load_image
from .databases import RatedDatabase, RatedPair

CLASSICAL = ("psnr", "ssim", "ms-ssim")
METRICS = ("radn", *CLASSICAL)


@dataclass
class Evaluation:
    database: RatedDatabase
    metrics: tuple[str, ...]
    predictions: dict[str, np.ndarray]  # metric -> per-pair value (NaN where it failed)
    reports: dict[str, dict] = field(default_factory=dict)  # metric -> correlation_report
    errors: list[tuple[RatedPair, str]] = field(default_factory=list)  # pairs that could not be read
    skipped: dict[str, tuple[int, str]] = field(default_factory=dict)  # metric -> (pairs, first reason)

    @property
    def human(self) -> np.ndarray:
        """Human scores oriented higher-is-better."""
        mos = np.array([p.mos for p in self.database.pairs], dtype=np.float64)
        return mos if self.database.higher_is_better else -mos


def _classical(name: str):
    from . import classical

    return {"psnr": classical.psnr, "ssim": classical.ssim, "ms-ssim": classical.ms_ssim}[name]


def evaluate(
    database: RatedDatabase,
    metrics: tuple[str, ...],
    *,
    scorer=None,
    on_pair: Callable[[int, int], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> Evaluation:
    """Score every pair with every metric ("radn" needs a Scorer) and correlate with the human scores."""
    from .stats import correlation_report

    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise RadnError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    pairs = database.pairs
    predictions = {m: np.full(len(pairs), np.nan) for m in metrics}
    result = Evaluation(database, tuple(metrics), predictions)
    order = sorted(range(len(pairs)), key=lambda i: (str(pairs[i].ref), str(pairs[i].dist)))
    cached_ref: tuple[object, object, object] | None = None  # (path, image, radn encoding)
    for done, index in enumerate(order, 1):
        pair = pairs[index]
        try:
            if cached_ref is None or cached_ref[0] != pair.ref:
                cached_ref = (pair.ref, load_image(pair.ref), None)
            ref_image = cached_ref[1]
            dist_image = load_image(pair.dist)
            check_pair(ref_image, dist_image, ref_path=pair.ref, dist_path=pair.dist)
        except RadnError as exc:
            result.errors.append((pair, str(exc)))
            if on_error:
                on_error(str(exc))
            cached_ref = None
        else:
            for metric in metrics:
                try:
                    if metric == "radn":
                        if cached_ref[2] is None:
                            cached_ref = (pair.ref, ref_image, scorer.encode_reference(ref_image.tensor))
                        value = scorer.score(cached_ref[2], dist_image.tensor).score
                    else:
                        value = float(_classical(metric)(ref_image.tensor, dist_image.tensor, channels="rgb"))
                    predictions[metric][index] = value
                except RadnError as exc:  # e.g. an image too small for MS-SSIM: that metric only
                    count, reason = result.skipped.get(metric, (0, str(exc)))
                    result.skipped[metric] = (count + 1, reason)
        if on_pair:
            on_pair(done, len(pairs))
    types = [p.dist_type for p in pairs]
    human = result.human
    for metric in metrics:
        values = predictions[metric]
        if metric == "radn" and scorer is not None and not scorer.info.higher_is_better:
            values = -values
        result.reports[metric] = correlation_report(values, human, types if any(types) else None)
    return result
