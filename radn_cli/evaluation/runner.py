"""`radn eval`: score every pair of a human-rated database with RADN and classical metrics, then correlate.

Each pair is decoded once (``pipeline.score_pairs``) and every requested metric (``metrics.METRICS``)
runs on it; RADN encodes each reference once. At a viewing scale other than native (``--scale``)
every metric sees the pair resized alike.
PSNR, SSIM and MS-SSIM are computed on R, G and B and averaged (``channels="rgb"``): luma-only
versions cannot see colour distortions at all (TID2013's saturation change scores as identical).
Correlations are oriented so that a good metric gets a positive SROCC: quality scores (higher is
better) against the database's human scores turned to higher-is-better (DMOS databases are negated).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from ..errors import RadnError
from ..pipeline import ScoredPair, score_pairs
from ..progress import SILENT, Progress
from ..viewing import Scale, parse_scale
from . import classical
from .databases import RatedDatabase, RatedPair
from .metrics import METRICS, Metric
from .stats import correlation_report


@dataclass
class Evaluation:
    database: RatedDatabase
    metrics: tuple[str, ...]
    predictions: dict[str, np.ndarray]  # metric -> per-pair value (NaN where it failed)
    reports: dict[str, dict] = field(default_factory=dict)  # metric -> correlation_report
    errors: list[tuple[RatedPair, str]] = field(default_factory=list)  # pairs that could not be read
    skipped: dict[str, tuple[int, str]] = field(default_factory=dict)  # metric -> (pairs, first reason)
    scale: str = "native"  # the viewing scale the pairs were scored at (--scale)

    @property
    def human(self) -> np.ndarray:
        """Human scores oriented higher-is-better."""
        mos = np.array([p.mos for p in self.database.pairs], dtype=np.float64)
        return mos if self.database.higher_is_better else -mos


def measure(metric: Metric, item: ScoredPair) -> float:
    """The metric's value for a pair that decoded (and, for RADN, was scored)."""
    if metric.model:
        return item.result.score
    function = getattr(classical, metric.function)
    ref, dist = item.tensors  # as scored: resized at a viewing scale other than native
    return float(function(ref, dist, channels="rgb"))


def evaluate(
    database: RatedDatabase,
    metrics: tuple[str, ...],
    *,
    scorer=None,
    workers: int = 0,
    pairs_per_step: int = 0,
    progress: Progress = SILENT,
    scale: Scale | str | None = None,
) -> Evaluation:
    """Score every pair with every metric ("radn" needs a Scorer) and correlate with the human scores.

    Pairs go through ``pipeline.score_pairs`` in reference order (decoded ahead in ``workers``
    threads, each reference encoded once, ``pairs_per_step`` pairs per forward pass on a GPU), at
    the viewing ``scale`` (None: native).
    ``progress``: one stage, "evaluating", and each pair that could not be read or scored.
    """
    scale = parse_scale(scale)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise RadnError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    model = [name for name in metrics if METRICS[name].model]
    if model and scorer is None:
        raise RadnError(f"the {model[0]} metric needs a Scorer")
    pairs = database.pairs
    predictions = {m: np.full(len(pairs), np.nan) for m in metrics}
    result = Evaluation(database, tuple(metrics), predictions, scale=scale.text)
    order = sorted(range(len(pairs)), key=lambda i: (str(pairs[i].ref), str(pairs[i].dist)))
    scored = score_pairs(
        scorer if model else None,
        (pairs[i] for i in order),
        workers=workers,
        pairs_per_step=pairs_per_step,
        scale=scale,
    )
    progress.start("evaluating", len(pairs))
    with closing(scored):
        for index, item in zip(order, scored):  # results come in input order
            if item.error:  # unreadable, the images do not fit together, or RADN could not score it
                result.errors.append((pairs[index], item.error))  # every metric leaves it out
                progress.failed(item.error)
            else:
                for metric in metrics:
                    try:
                        predictions[metric][index] = measure(METRICS[metric], item)
                    except RadnError as exc:  # e.g. an image too small for MS-SSIM: that metric only
                        count, reason = result.skipped.get(metric, (0, str(exc)))
                        result.skipped[metric] = (count + 1, reason)
            progress.advance()
    types = [p.dist_type for p in pairs]
    human = result.human
    for name in metrics:
        metric, values = METRICS[name], predictions[name]
        higher = scorer.info.higher_is_better if metric.model else metric.higher_is_better
        result.reports[name] = correlation_report(
            values if higher else -values, human, types if any(types) else None
        )
    return result
