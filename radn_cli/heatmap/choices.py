"""What a heatmap can show and how its colours span, by name: the maps, the default map, and the colour
range (``--range``). Imports nothing heavy, so that the command line can check its options at once.

Maps (per patch ``i`` with score ``s_i`` and weight ``w_i``; the image score is
``sum(w_i s_i) / sum(w_i)``):

* ``scores``: ``s_i``, the quality of each patch: where quality is lost. The default everywhere
  (``radn score --heatmap``, ``radn heatmap``, the HTML report).
* ``weights``: ``w_i``, how much each patch counts: where the model looks, not where it sees damage.
* ``product``: ``w_i s_i / sum(w)``, what each patch adds to the image score (they sum to it).
  ``contribution`` is its former name and still accepted.

Colour ranges: ``fixed`` (the default) maps colours over a range that does not depend on the image, so
that the maps of several images compare: for ``scores`` the weights' score scale (``1..5`` for the
shipped weights, read from their metadata by :func:`scale_range`). ``weights`` and ``product`` have no
such scale (a weight's size depends on the model, a product on the number of patches): with ``fixed``
they span their own min..max, as does ``scores`` when the weights state no scale. ``auto`` always
spans the map's own min..max (each image then has its own colours); ``LO,HI`` gives the range.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

MAPS: tuple[str, ...] = ("scores", "weights", "product")
"""The per-patch maps, the default first."""

DEFAULT_MAP = MAPS[0]
"""The map drawn unless another is asked for: patch scores, i.e. where quality is lost."""

MAP_ALIASES: dict[str, str] = {"contribution": "product"}
"""Former names still accepted: name -> map."""

RANGES: tuple[str, ...] = ("fixed", "auto")
"""The named colour ranges; ``LO,HI`` gives one by its ends."""

DEFAULT_RANGE = RANGES[0]

ColorRange = tuple[float, float]


def canonical_map(kind: str) -> str:
    """The map a name stands for (``contribution`` -> ``product``); ``ValueError`` for an unknown one."""
    kind = MAP_ALIASES.get(kind, kind)
    if kind not in MAPS:
        raise ValueError(f"unknown heatmap kind {kind!r}; expected one of {', '.join(MAPS)}")
    return kind


def parse_range(text: str) -> str | ColorRange:
    """``fixed``, ``auto``, or ``(lo, hi)`` from ``LO,HI`` (finite, lo < hi); ``ValueError`` otherwise.

    >>> parse_range("auto"), parse_range("1,5"), parse_range(" -0.5 , 2e1 ")
    ('auto', (1.0, 5.0), (-0.5, 20.0))
    """
    name = text.strip().lower()
    if name in RANGES:
        return name
    parts = name.split(",")
    try:
        lo, hi = (float(part) for part in parts)
    except ValueError:
        raise ValueError(f"must be fixed, auto or LO,HI (two numbers), not {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"LO,HI must be two finite numbers with LO < HI, not {text!r}")
    return lo, hi


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# "1 (very annoying) .. 5 (imperceptible)", "0..100", "1 to 5": two numbers, words in brackets allowed
_SPAN = re.compile(rf"({_NUMBER})\s*(?:\([^)]*\))?\s*(?:\.\.+|…|to)\s*({_NUMBER})")


def scale_range(metadata: Mapping[str, str]) -> ColorRange | None:
    """The score scale's ends from a weights file's metadata, low first; None when it states none.

    A ``score_range`` entry (``"1,5"`` or ``"[1, 5]"``) is used first, else the first ``LO .. HI`` in
    the ``score_scale`` text:

    >>> scale_range({"score_scale": "KADID-10k DMOS: 1 (very annoying) .. 5 (imperceptible)"})
    (1.0, 5.0)
    >>> scale_range({"score_scale": "arbitrary"}) is None
    True
    """
    given = re.findall(_NUMBER, metadata.get("score_range", ""))
    if len(given) != 2:
        match = _SPAN.search(metadata.get("score_scale", ""))
        given = list(match.groups()) if match else []
    if len(given) != 2 or float(given[0]) == float(given[1]):
        return None
    lo, hi = sorted(float(v) for v in given)
    return lo, hi


def color_range(kind: str, spec: str | ColorRange, scale: ColorRange | None) -> ColorRange | None:
    """The colour range of a ``kind`` map for ``--range`` ``spec`` (:func:`parse_range`), given the
    weights' score ``scale`` (:func:`scale_range`): ``(lo, hi)``, or None for the map's own min..max.

    >>> color_range("scores", "fixed", (1.0, 5.0)), color_range("weights", "fixed", (1.0, 5.0))
    ((1.0, 5.0), None)
    """
    kind = canonical_map(kind)
    if spec == "auto":
        return None
    if spec == "fixed":
        return scale if kind == "scores" else None
    lo, hi = spec
    return float(lo), float(hi)
