"""Agreement between predicted scores and human ratings, the way IQA papers report it (numpy only).

* ``srocc`` Spearman rank-order correlation (average ranks for ties), ``krcc`` Kendall tau-b,
  ``plcc`` Pearson linear correlation, ``rmse``.
* ``logistic4_fit`` / ``logistic4``: the VQEG monotone 4-parameter logistic
  ``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``, fitted by Levenberg-Marquardt; PLCC and
  RMSE "after nonlinear regression" are computed between ``f(pred)`` and the ratings.
* ``correlation_report`` puts it all together, with per-distortion-type SROCC.

Signs are left as they are: a metric where higher means better scored against DMOS (higher means
worse) has negative correlations. Pairs where either value is NaN or infinite (PSNR of an identical
pair) are dropped and counted; a constant input gives NaN correlations rather than an exception.

Example:
    >>> import numpy as np
    >>> pred = np.array([1.0, 2.0, 3.0, 4.0])
    >>> round(srocc(pred, pred ** 3), 6)
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ArrayLike = Sequence[float] | np.ndarray

__all__ = [
    "correlation_report",
    "krcc",
    "logistic4",
    "logistic4_fit",
    "plcc",
    "rankdata",
    "rmse",
    "srocc",
]


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both as 1-D float64 arrays of equal length, without the pairs holding a NaN or an infinity."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in length: {a.size} != {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def rankdata(x: ArrayLike) -> np.ndarray:
    """Ranks 1..n, ties sharing the average of the ranks they span (scipy's ``method='average'``)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # Start of each run of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], a.size]
    run_rank = (starts + ends + 1) / 2.0  # mean of 1-based positions starts+1 .. ends
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2:
        return float("nan")
    da = a - a.mean()
    db = b - b.mean()
    denom = np.sqrt(np.dot(da, da) * np.dot(db, db))
    if not np.isfinite(denom) or denom == 0.0:
        return float("nan")
    return float(np.clip(np.dot(da, db) / denom, -1.0, 1.0))


def plcc(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson linear correlation coefficient; NaN for fewer than 2 pairs or a constant input."""
    return _pearson(*_pair(x, y))


def srocc(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank-order correlation coefficient (Pearson correlation of average ranks)."""
    a, b = _pair(x, y)
    return _pearson(rankdata(a), rankdata(b))


def _tied_pairs(sorted_values: np.ndarray) -> int:
    """Number of pairs sharing a value, for values already sorted."""
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    counts = np.diff(np.r_[starts, sorted_values.size]).astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _count_inversions(values: np.ndarray) -> int:
    """Pairs i < j with values[i] > values[j] (strictly), by a Fenwick tree over dense ranks."""
    dense = np.unique(values, return_inverse=True)[1].ravel() + 1
    size = int(dense.max()) if dense.size else 0
    tree = [0] * (size + 1)
    inversions = 0
    for seen, rank in enumerate(dense.tolist()):
        # How many of the `seen` earlier values are <= rank.
        not_greater = 0
        i = rank
        while i > 0:
            not_greater += tree[i]
            i -= i & -i
        inversions += seen - not_greater
        i = rank
        while i <= size:
            tree[i] += 1
            i += i & -i
    return inversions


def krcc(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall rank correlation, tau-b (accounts for ties in either variable). O(n log n).

    Knight's method: with the pairs sorted by (x, y), discordant pairs are exactly the strict
    inversions of y, and tau-b = (n0 - n1 - n2 + n3 - 2 * discordant) / sqrt((n0 - n1)(n0 - n2)),
    where n1, n2 and n3 count the pairs tied in x, in y, and in both.
    """
    a, b = _pair(x, y)
    n = a.size
    if n < 2:
        return float("nan")
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    n0 = n * (n - 1) // 2
    n1 = _tied_pairs(a)
    n2 = _tied_pairs(np.sort(b, kind="mergesort"))
    new_run = np.r_[True, a[1:] != a[:-1]] | np.r_[True, b[1:] != b[:-1]]
    joint_starts = np.flatnonzero(new_run)
    joint_counts = np.diff(np.r_[joint_starts, n]).astype(np.int64)
    n3 = int((joint_counts * (joint_counts - 1) // 2).sum())
    discordant = _count_inversions(b)
    denom = np.sqrt(float(n0 - n1) * float(n0 - n2))
    if denom == 0.0:
        return float("nan")
    tau = (n0 - n1 - n2 + n3 - 2 * discordant) / denom
    return float(np.clip(tau, -1.0, 1.0))


def rmse(x: ArrayLike, y: ArrayLike) -> float:
    """Root-mean-square difference; NaN when no pair is left."""
    a, b = _pair(x, y)
    if a.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # = 1 / (1 + exp(-t)), without overflow


def logistic4(pred: ArrayLike, params: Sequence[float] | np.ndarray) -> np.ndarray:
    """The VQEG 4-parameter logistic ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``."""
    b1, b2, b3, b4 = (float(p) for p in params)
    x = np.asarray(pred, dtype=np.float64)
    scale = abs(b4) if b4 != 0.0 else np.finfo(np.float64).tiny
    return (b1 - b2) * _sigmoid((x - b3) / scale) + b2


def _levenberg_marquardt(
    z: np.ndarray, y: np.ndarray, theta: np.ndarray, max_iter: int = 500
) -> tuple[np.ndarray, float, bool]:
    """Least squares for f(z) = (b1 - b2) * s((z - b3) / exp(c)) + b2 with theta = (b1, b2, b3, c).

    Returns (theta, sum of squared residuals, converged).
    """

    def model(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b1, b2, b3, c = t
        scale = np.exp(c)
        u = (z - b3) / scale
        s = _sigmoid(u)
        f = (b1 - b2) * s + b2
        ds = s * (1.0 - s)
        jac = np.empty((z.size, 4))
        jac[:, 0] = s
        jac[:, 1] = 1.0 - s
        jac[:, 2] = -(b1 - b2) * ds / scale
        jac[:, 3] = -(b1 - b2) * ds * u
        return f, jac

    f, jac = model(theta)
    resid = y - f
    sse = float(resid @ resid)
    lam = 1e-3
    converged = False
    for _ in range(max_iter):
        jtj = jac.T @ jac
        grad = jac.T @ resid
        if np.max(np.abs(grad)) <= 1e-14 * max(1.0, sse):
            converged = True
            break
        improved = False
        while lam < 1e16:
            damped = jtj + lam * np.diag(np.maximum(np.diag(jtj), 1e-12))
            try:
                step = np.linalg.solve(damped, grad)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            candidate = theta + step
            f_new, jac_new = model(candidate)
            resid_new = y - f_new
            sse_new = float(resid_new @ resid_new)
            if np.isfinite(sse_new) and sse_new <= sse:
                small = sse - sse_new <= 1e-12 * max(sse, 1e-300) and np.max(np.abs(step)) < 1e-10
                theta, f, jac, resid = candidate, f_new, jac_new, resid_new
                sse = sse_new
                lam = max(lam / 10.0, 1e-12)
                improved = True
                if small:
                    converged = True
                break
            lam *= 10.0
        if not improved:
            converged = True  # no step lowers the error: a (local) minimum up to rounding
            break
        if converged:
            break
    return theta, sse, converged


def logistic4_fit(pred: ArrayLike, mos: ArrayLike) -> np.ndarray:
    """Fit the 4-parameter logistic mapping ``pred`` onto ``mos``; returns ``[b1, b2, b3, b4]``.

    The predictions are standardised before fitting, and the fit starts from a few initial slopes
    (b1, b2 at the rating extremes, ordered by the sign of the correlation; b3 at the mean prediction).
    The best result is kept; if every start fails, the fallback is the best linear-like logistic of the
    starting points, so the returned curve is always finite and monotone. Non-finite pairs are ignored.
    """
    x, y = _pair(pred, mos)
    if x.size < 4 or np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        center = float(np.mean(x)) if x.size else 0.0
        level = float(np.mean(y)) if y.size else 0.0
        return np.array([level, level, center, 1.0])
    mean, std = float(x.mean()), float(x.std())
    z = (x - mean) / std
    r = _pearson(z, y)
    hi, lo = float(y.max()), float(y.min())
    if r < 0:
        hi, lo = lo, hi
    best: tuple[float, np.ndarray] | None = None
    fallback = (np.inf, np.array([hi, lo, 0.0, 0.0]))
    for slope in (1.0, 0.3, 3.0):
        start = np.array([hi, lo, 0.0, np.log(slope)])
        start_sse = float(np.sum((y - logistic4(z, [hi, lo, 0.0, slope])) ** 2))
        if start_sse < fallback[0]:
            fallback = (start_sse, start)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            theta, sse, _ = _levenberg_marquardt(z, y, start)
        if np.all(np.isfinite(theta)) and np.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, theta)
    theta = best[1] if best is not None and best[0] <= fallback[0] else fallback[1]
    b1, b2, b3, c = theta
    return np.array([b1, b2, b3 * std + mean, np.exp(c) * std])


def finite_pairs(pred: ArrayLike, mos: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both as flat float64 arrays, and the mask of pairs where both are finite (no NaN, no inf)."""
    x_all = np.asarray(pred, dtype=np.float64).ravel()
    y_all = np.asarray(mos, dtype=np.float64).ravel()
    if x_all.shape != y_all.shape:
        raise ValueError(f"pred and mos differ in length: {x_all.size} != {y_all.size}")
    return x_all, y_all, np.isfinite(x_all) & np.isfinite(y_all)


def correlation_report(pred: ArrayLike, mos: ArrayLike, types: Sequence[str] | None = None) -> dict[str, Any]:
    """All the usual agreement figures in one dict of plain Python values (JSON-ready, NaN allowed).

    Keys: ``n`` (pairs used), ``n_dropped`` (pairs with a NaN or infinity), ``srocc``, ``krcc``, ``plcc``,
    ``plcc_logistic`` and ``rmse_logistic`` (after the 4-parameter logistic fit), ``logistic_params``
    ([b1, b2, b3, b4]) and ``per_type`` ({type: {"n": count, "srocc": value}}, types sorted; empty when
    ``types`` is None).
    """
    x_all, y_all, keep = finite_pairs(pred, mos)
    x, y = x_all[keep], y_all[keep]
    params = logistic4_fit(x, y)
    fitted = logistic4(x, params)
    report: dict[str, Any] = {
        "n": int(x.size),
        "n_dropped": int(x_all.size - x.size),
        "srocc": srocc(x, y),
        "krcc": krcc(x, y),
        "plcc": plcc(x, y),
        "plcc_logistic": plcc(fitted, y),
        "rmse_logistic": rmse(fitted, y),
        "logistic_params": [float(p) for p in params],
        "per_type": {},
    }
    if types is not None:
        labels = np.asarray([str(t) for t in types], dtype=object)
        if labels.size != x_all.size:
            raise ValueError(f"types has {labels.size} entries for {x_all.size} scores")
        labels = labels[keep]
        for name in sorted(set(labels.tolist())):
            mask = labels == name
            report["per_type"][name] = {"n": int(mask.sum()), "srocc": srocc(x[mask], y[mask])}
    return report
