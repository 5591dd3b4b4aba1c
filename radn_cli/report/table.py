"""The rows of a report: a radn results CSV read back, each pair's method, and its rank among the
distorted versions of its reference (which depends on the score direction of the weights).

Reading goes through the project's one strict CSV reader (``csvtable.read_table``) with the results
columns of ``results.COLUMNS``: every column named in the header (``scale`` may be missing: a CSV
written before it was scored at native size), ``ref``, ``dist``, ``weights`` and ``precision`` filled
in every row, and each row holding either a score or an error. Anything else is one error naming the
file and the line. Imports nothing heavy.

File names that are not UTF-8 come back as the results writer wrote them (``surrogateescape``), so
that the paths still name the files; ``readable`` is how such text is shown.

Methods: super-resolution and compression studies keep one folder per method (``results/A/0001.png``,
``results/B/0001.png``); a pair's method is the first folder of its distorted path below the folder
common to all distorted paths. With fewer than two such folders there are no methods.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..csvtable import HeaderError, Row, read_table
from ..errors import RadnError
from ..results import COLUMNS, LEGACY_COLUMNS
from ..viewing import parse_scale

_FILLED = ("ref", "dist", "weights", "precision")  # written in every row, failed ones too
NATIVE = "native"
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def readable(text: str) -> str:
    """``text`` with each lone surrogate (a byte of a file name that is not UTF-8, as
    ``surrogateescape`` keeps it) replaced by U+FFFD, so that it can be shown and written as UTF-8.

        >>> readable("caf\\udce9.png") == "caf\\ufffd.png"
        True
    """
    return _SURROGATES.sub("\ufffd", text)


@dataclass
class ResultRow:
    """One row of the results CSV, numbers parsed; ``method`` and ``rank`` are filled in by
    :func:`read_results`."""

    line: int
    ref: str
    dist: str
    score: float | None
    patches: int | None
    width: int | None
    height: int | None
    weights: str
    precision: str
    error: str
    scale: str = NATIVE  # the viewing scale it was scored at (--scale)
    method: str | None = None
    rank: int | None = None  # 1 = best of its reference's versions scored alike (``rank_group``)

    @property
    def ok(self) -> bool:
        return not self.error and self.score is not None


@dataclass
class Results:
    """A results CSV as the report shows it."""

    path: Path
    rows: list[ResultRow]
    methods: list[str]  # sorted; empty when the paths give fewer than two methods

    @property
    def scored(self) -> list[ResultRow]:
        return [row for row in self.rows if row.ok]

    @property
    def failures(self) -> list[ResultRow]:
        return [row for row in self.rows if not row.ok]

    @property
    def weights(self) -> Counter[str]:
        """Rows per weights identity (a CSV resumed with other weights holds several)."""
        return Counter(row.weights for row in self.rows)

    @property
    def precisions(self) -> Counter[str]:
        return Counter(row.precision for row in self.rows)

    @property
    def scales(self) -> Counter[str]:
        """Rows per viewing scale (``native`` unless --scale said otherwise)."""
        return Counter(row.scale for row in self.rows)


def _number(row: Row, column: str, kind: type, path: Path) -> float | int | None:
    text = row.cells[column].strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise RadnError(f"line {row.line}: {column} {text!r} is not a number", path) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise RadnError(f"line {row.line}: {column} {text!r} is not a finite number", path)
    return value


def _result_row(row: Row, path: Path) -> ResultRow:
    cells = row.cells
    result = ResultRow(
        line=row.line,
        ref=cells["ref"],
        dist=cells["dist"],
        score=_number(row, "score", float, path),
        patches=_number(row, "patches", int, path),
        width=_number(row, "width", int, path),
        height=_number(row, "height", int, path),
        weights=cells["weights"],
        precision=cells["precision"],
        error=cells["error"].strip(),
        scale=cells["scale"].strip() or NATIVE,
    )
    if result.score is None and not result.error:
        raise RadnError(f"line {row.line}: neither a score nor an error", path)
    try:
        result.scale = parse_scale(result.scale).text
    except ValueError as exc:
        raise RadnError(f"line {row.line}: scale {exc}", path) from None
    return result


def read_results(path: str | Path) -> Results:
    """The rows of the radn results CSV ``path``, with their methods (ranks: ``rank_by_reference``).

    Raises RadnError naming the file (and the line) when it cannot be read, is not a radn results
    CSV, or holds a row that is neither scored nor failed. Bytes that are not UTF-8 (file names)
    are kept as the results writer wrote them (module doc).
    """
    path = Path(path)
    blank = tuple(column for column in LEGACY_COLUMNS if column not in _FILLED)
    optional = tuple(column for column in COLUMNS if column not in LEGACY_COLUMNS)
    try:
        _, table = read_table(
            path, LEGACY_COLUMNS, optional, what="results CSV", may_be_blank=blank, errors="surrogateescape"
        )
    except HeaderError as exc:
        raise RadnError(f"not a radn results CSV: {exc.message}", path) from None
    rows = [_result_row(row, path) for row in table]
    for row, method in zip(rows, detect_methods([row.dist for row in rows])):
        row.method = method
    return Results(path, rows, sorted({row.method for row in rows if row.method is not None}))


def detect_methods(dists: Sequence[str]) -> list[str | None]:
    """Each distorted path's method: its first folder below the folder all of them share.

    ``results/A/1.png``, ``results/B/1.png`` -> ``A``, ``B``. A path directly in the shared folder
    has none; with fewer than two methods, or absolute and relative paths mixed, none has one.

        >>> detect_methods(["out/srgan/1.png", "out/bicubic/1.png", "out/srgan/2.png"])
        ['srgan', 'bicubic', 'srgan']
        >>> detect_methods(["a/1.png", "a/2.png"])
        [None, None]
    """
    parts = [PurePath(dist).parts for dist in dists]
    if len({PurePath(dist).is_absolute() for dist in dists}) > 1:
        return [None] * len(dists)
    common = len(os.path.commonprefix([p[:-1] for p in parts])) if parts else 0
    methods = [p[common] if len(p) > common + 1 else None for p in parts]
    if len({m for m in methods if m is not None}) < 2:
        return [None] * len(dists)
    return methods


def rank_group(row: ResultRow) -> tuple[str, str, str, str]:
    """The rows a row is ranked among: its reference's, scored with its weights and precision at its
    viewing scale (a resumed CSV may hold a pair twice, scored with other weights, in another
    precision or at another scale, and such scores do not compare)."""
    return row.ref, row.weights, row.precision, row.scale


def rank_by_reference(rows: Sequence[ResultRow], *, higher_is_better: bool = True) -> None:
    """Set each scored row's ``rank`` among the scored rows of its ``rank_group`` (1 = best)."""
    groups: dict[tuple[str, str, str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        if row.ok:
            groups[rank_group(row)].append(row)
    for group in groups.values():
        group.sort(key=lambda row: row.score, reverse=higher_is_better)
        for rank, row in enumerate(group, 1):
            row.rank = rank
