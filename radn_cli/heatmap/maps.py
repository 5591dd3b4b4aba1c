"""Per-patch maps: which maps exist, how they are named in legends, and how they are computed.

RADN scores a row-major grid of ``patch`` x ``patch`` squares; each patch gets a score ``s_i`` and a
weight ``w_i > 0`` and the image score is ``sum(w_i s_i) / sum(w_i)``. :func:`patch_map` turns those
into a ``[rows, cols]`` map of the scores, the weights, or their products ``w_i s_i / sum(w)`` (what
each patch adds to the image score). The maps' names and the default are in :mod:`.choices`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .choices import MAP_ALIASES, MAPS, canonical_map

MAP_LABELS = {
    "scores": "patch score",
    "weights": "patch weight",
    "product": "contribution to score",
}
"""Human-readable name of each map (and of its former names), used in legends."""
MAP_LABELS.update({alias: MAP_LABELS[kind] for alias, kind in MAP_ALIASES.items()})

__all__ = ["MAPS", "MAP_LABELS", "direction_labels", "patch_map"]


# What the low and the high end of each map's scale mean, in words, longest form first; the legends
# use the longest form that fits. Scores and products depend on the weights' score direction.
_WEIGHT_WORDS = (
    ("lower = less weight", "less weight"),
    ("higher = more weight: where the model looks", "higher = more weight", "more weight"),
)
_QUALITY_WORDS = {
    True: (("lower = worse quality", "worse"), ("higher = better quality", "better")),
    False: (("lower = better quality", "better"), ("higher = worse quality", "worse")),
}


def direction_words(kind: str, higher_is_better: bool = True) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """All forms of the low-end and of the high-end words of a ``kind`` map, longest first."""
    return _WEIGHT_WORDS if canonical_map(kind) == "weights" else _QUALITY_WORDS[bool(higher_is_better)]


def direction_labels(kind: str, *, higher_is_better: bool = True) -> tuple[str, str]:
    """What the low and the high end of a ``kind`` map's colour scale mean, in words: ``(low, high)``.

    ``"weights"`` shows where the model looks (a higher weight counts more in the image score).
    ``"scores"`` and ``"product"`` follow the score direction of the weights, which their metadata
    states as ``score_direction``: ``higher_is_better=True`` for ``"higher_is_better"`` (the shipped
    weights: higher = better quality), ``False`` for ``"lower_is_better"``.
    """
    low, high = direction_words(kind, higher_is_better)
    return low[0], high[0]


def result_map(result: Any, kind: str) -> np.ndarray:
    """The ``kind`` map of a scored pair's ``result``: its ``patch_scores`` and ``patch_weights``
    (tensors, one value per patch, read with their own ``numpy()``: this package imports no torch) on
    its ``grid`` (rows, cols), as :func:`patch_map` makes it."""
    return patch_map(result.patch_scores.numpy(), result.patch_weights.numpy(), result.grid, kind)


def patch_map(patch_scores: Any, patch_weights: Any, grid: tuple[int, int], kind: str) -> np.ndarray:
    """The ``[rows, cols]`` float64 map of one image's per-patch ``kind``.

    ``patch_scores`` and ``patch_weights`` hold one value per patch in row-major order (any shape with
    ``rows * cols`` elements, anything ``np.asarray`` takes). ``kind`` is one of :data:`MAPS`:
    ``"scores"`` (s_i), ``"weights"`` (w_i) or ``"product"`` (w_i s_i / sum(w), whose sum is the image
    score; ``"contribution"`` is its former name). Raises ``ValueError`` for an unknown kind, a size
    that does not match the grid, or weights that are not finite, negative, or sum to zero.
    """
    kind = canonical_map(kind)
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be at least 1x1, got {rows}x{cols}")
    scores = np.asarray(patch_scores, dtype=np.float64).reshape(-1)
    weights = np.asarray(patch_weights, dtype=np.float64).reshape(-1)
    n = rows * cols
    if scores.size != n or weights.size != n:
        raise ValueError(
            f"a {rows}x{cols} grid has {n} patches, got {scores.size} scores and {weights.size} weights"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("patch weights must be finite and positive")
    if kind == "scores":
        out = scores
    elif kind == "weights":
        out = weights
    else:
        total = weights.sum()
        if not total > 0:
            raise ValueError("patch weights sum to zero")
        out = weights * scores / total
    return out.reshape(rows, cols).copy()


def as_map(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"values must be a non-empty [rows, cols] array, got shape {arr.shape}")
    return arr


def finite_range(values: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values, or None when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def range_words(values: np.ndarray, vrange: tuple[float, float] | None, fixed: bool) -> str:
    """How a legend's colours span, in words: a fixed range (and how many patches lie beyond it) or
    the map's own range."""
    if not fixed:
        return "range of this map"
    finite = values[np.isfinite(values)]
    beyond = int(np.sum((finite < vrange[0]) | (finite > vrange[1])))
    return f"fixed range, {beyond} patch{'es' if beyond > 1 else ''} beyond it" if beyond else "fixed range"


def format_ticks(values: list[float]) -> list[str]:
    """Shortest '%g' formatting (>= 3 significant digits) that keeps distinct values distinct."""
    distinct = len(set(values))
    for digits in range(3, 18):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == distinct:
            return labels
    return [repr(v) for v in values]
