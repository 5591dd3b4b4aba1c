"""Row encoding: the results ``COLUMNS`` and header line, a row's cells (``row_cells``) and key
(``row_key``), and ``encode_row`` (one CSV line as bytes, ready for a single ``os.write``).

``scale`` (the viewing scale, ``native`` or what ``--scale`` gave) is the last column, added after
the others so that no column moved; files written before it (``LEGACY_COLUMNS``) hold pairs scored
at native size, and an empty ``scale`` cell means ``native`` too."""

from __future__ import annotations

import csv
import io
import numbers
import os
from collections.abc import Mapping

LEGACY_COLUMNS = ("ref", "dist", "score", "patches", "width", "height", "weights", "precision", "error")
COLUMNS = (*LEGACY_COLUMNS, "scale")
HEADER_LINE = ",".join(COLUMNS) + "\n"
LEGACY_HEADER_LINE = ",".join(LEGACY_COLUMNS) + "\n"
NATIVE = "native"  # the scale of a row without one (viewing.NATIVE; this module imports nothing of radn)
Key = tuple[str, str, str, str, str]

ENCODING = "utf-8"
ENCODING_ERRORS = "surrogateescape"  # file names that are not UTF-8 are written byte for byte
_REF, _DIST, _WEIGHTS, _PRECISION, _ERROR, _SCALE = (
    COLUMNS.index(column) for column in ("ref", "dist", "weights", "precision", "error", "scale")
)


def row_key(cells: list[str]) -> Key:
    """(ref, dist, weights, precision, scale): a pair scored with other weights, in another precision
    or at another scale is another row."""
    return cells[_REF], cells[_DIST], cells[_WEIGHTS], cells[_PRECISION], cells[_SCALE] or NATIVE


def from_legacy(cells: list[str]) -> list[str]:
    """The cells of a row of a file written before the ``scale`` column (scored at native size)."""
    return [*cells, NATIVE]


def row_failed(cells: list[str]) -> bool:
    """The row records an error (the pair is retried on resume)."""
    return bool(cells[_ERROR])


def row_cells(row: Mapping[str, object]) -> list[str]:
    """A row given as {column: value} as the cells of ``COLUMNS`` (missing columns empty).

    Raises:
        ValueError: an unknown column, or no ``ref`` or ``dist``.
    """
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {', '.join(sorted(map(str, unknown)))}")
    cells = [_cell(row.get(column)) for column in COLUMNS]
    if not cells[_REF] or not cells[_DIST]:
        raise ValueError("a results row needs 'ref' and 'dist'")
    return cells


def _cell(value: object) -> str:
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        value = value.item()  # a 0-d numpy array or torch tensor: its Python number
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = str(value)
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        text = repr(float(value))  # shortest round-trip text; also for numpy floats
    elif isinstance(value, os.PathLike):
        text = os.fsdecode(os.fspath(value))
    else:
        text = str(value)
    return text.replace("\x00", "\ufffd")


def encode_row(cells: list[str]) -> bytes:
    """One CSV line (with its ``\\n``) as bytes."""
    buffer = io.StringIO()
    # The csv module quotes cells with "\n" but not with "\r" when the line end is "\n"; quote the
    # whole row then, so that readers do not take the "\r" for a line end.
    quoting = csv.QUOTE_ALL if any("\r" in cell for cell in cells) else csv.QUOTE_MINIMAL
    csv.writer(buffer, lineterminator="\n", quoting=quoting).writerow(cells)
    return buffer.getvalue().encode(ENCODING, ENCODING_ERRORS)
