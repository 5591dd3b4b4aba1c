"""The numbers a report shows about a set of scores: mean, median, the 95% confidence interval of the
mean (Student t), per-method summaries and histogram bins.

The interval needs :data:`MIN_INTERVAL` scores (with 2, Student's t has one degree of freedom, its
quantile is 12.7, and the interval of two scores on a 1..5 scale ran from -0.26 to 6.01); fewer get
none. Where the weights state a score scale, an interval is clipped to it (a mean cannot lie
beyond it) and says so (``low_clipped``, ``high_clipped``).

Plain Python (``math``), no scipy at run time: the t quantile comes from the exact finite series of
the t distribution's CDF for whole degrees of freedom (Abramowitz and Stegun 26.7.3-4), inverted by
bisection (beyond 10,000 degrees of freedom, where that series gets long, the Cornish-Fisher
expansion around the normal quantile, exact there to 1e-12), so a report is the same on every
machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .table import ResultRow

_SERIES_LIMIT = 10_000
MIN_INTERVAL = 3  # scores needed for a confidence interval of the mean


def t_cdf_central(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` (>= 1) degrees of freedom, t >= 0."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        term = total = c if df > 1 else 0.0
        for k in range(3, df - 1, 2):  # cos + 2/3 cos^3 + 2*4/(3*5) cos^5 + ...
            term *= (k - 1) / k * c * c
            total += term
        return 2.0 / math.pi * (theta + s * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):  # 1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...
        term *= (k - 1) / k * c * c
        total += term
    return s * total


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with ``df`` degrees of freedom, to 1e-10.

    >>> round(t_quantile(0.975, 1), 4), round(t_quantile(0.975, 10), 4), round(t_quantile(0.975, 1000), 4)
    (12.7062, 2.2281, 1.9623)
    """
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"need 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    if df > _SERIES_LIMIT:
        z = statistics.NormalDist().inv_cdf(p)
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    central = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while t_cdf_central(hi, df) < central:
        hi *= 2.0
    while hi - lo > 1e-10 * max(1.0, hi):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf_central(mid, df) < central else (lo, mid)
    return (lo + hi) / 2.0


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """The ``level`` confidence interval of the mean of ``values`` (Student t), None under
    :data:`MIN_INTERVAL` values."""
    n = len(values)
    if n < MIN_INTERVAL:
        return None
    mean = math.fsum(values) / n
    half = t_quantile(0.5 + level / 2.0, n - 1) * statistics.stdev(values, mean) / math.sqrt(n)
    return mean - half, mean + half


@dataclass(frozen=True)
class Summary:
    """Scores of a group of pairs: how many, how many failed, where they lie."""

    name: str
    n: int
    failed: int
    mean: float | None
    median: float | None
    low: float | None  # 95% confidence interval of the mean
    high: float | None
    minimum: float | None
    maximum: float | None
    low_clipped: bool = False  # the interval reached past the score scale and was cut at its end
    high_clipped: bool = False


def summarize(name: str, rows: Sequence[ResultRow], bounds: tuple[float, float] | None = None) -> Summary:
    """The summary of the scored ``rows``; the interval clipped to ``bounds`` (the weights' score
    scale, low first), if given.

    >>> from radn_cli.report.table import ResultRow
    >>> rows = [ResultRow(1, "r", "d", s, 6, 96, 64, "w", "fp32", "") for s in (4.9, 5.0, 4.2)]
    >>> s = summarize("all", rows, (1.0, 5.0))
    >>> round(s.low, 3), s.high, s.low_clipped, s.high_clipped
    (3.617, 5.0, False, True)
    >>> summarize("two", rows[:2]).low is None
    True
    """
    scores = [row.score for row in rows if row.ok]
    failed = len(rows) - len(scores)
    if not scores:
        return Summary(name, 0, failed, None, None, None, None, None, None)
    low = high = None
    low_clipped = high_clipped = False
    interval = mean_interval(scores)
    if interval is not None:
        low, high = interval
        if bounds is not None:
            low_clipped, high_clipped = low < bounds[0], high > bounds[1]
            low, high = max(low, bounds[0]), min(high, bounds[1])
    return Summary(
        name,
        len(scores),
        failed,
        math.fsum(scores) / len(scores),
        statistics.median(scores),
        low,
        high,
        min(scores),
        max(scores),
        low_clipped,
        high_clipped,
    )


def method_summaries(
    rows: Sequence[ResultRow],
    methods: Sequence[str],
    *,
    higher_is_better: bool,
    bounds: tuple[float, float] | None = None,
) -> list[Summary]:
    """One summary per method (intervals clipped to ``bounds``), best mean first (methods without a
    score last)."""
    summaries = [
        summarize(method, [row for row in rows if row.method == method], bounds) for method in methods
    ]
    sign = -1.0 if higher_is_better else 1.0
    return sorted(summaries, key=lambda s: (s.mean is None, sign * (s.mean or 0.0), s.name))


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int


def histogram(values: Sequence[float], bins: int | None = None) -> list[Bin]:
    """Equal-width bins over [min, max] (sqrt(n) of them, 5 to 40, unless ``bins`` is given); one
    bin when all values are equal, none without values."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [Bin(lo, hi, len(values))]
    count = bins or min(40, max(5, math.ceil(math.sqrt(len(values)))))
    width = (hi - lo) / count
    counts = [0] * count
    for value in values:
        counts[min(count - 1, int((value - lo) / width))] += 1
    return [Bin(lo + i * width, lo + (i + 1) * width, c) for i, c in enumerate(counts)]
