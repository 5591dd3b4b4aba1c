"""Row encoding: the results ``COLUMNS`` and header line, a row's key, how a value becomes a cell, and
``encode_row`` (one CSV line as bytes, ready for a single ``os.write``)."""

from __future__ import annotations

import csv
import io
import numbers
import os

COLUMNS = ("ref", "dist", "score", "patches", "width", "height", "weights", "precision", "error")
HEADER_LINE = ",".join(COLUMNS) + "\n"
Key = tuple[str, str, str, str]

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
_REF, _DIST, _WEIGHTS, _PRECISION, _ERROR = (
    COLUMNS.index(column) for column in ("ref", "dist", "weights", "precision", "error")
)


def _key(cells: list[str]) -> Key:
    return cells[_REF], cells[_DIST], cells[_WEIGHTS], cells[_PRECISION]


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
    return buffer.getvalue().encode(_ENCODING, _ERRORS)
