"""One strict reader for the CSV files users hand to radn: a pairs list (``ref,dist``) and a rated list
(``ref,dist,mos[,type]``).

Strict means a problem is an error naming the file and the line, never a silently skipped row: the
text must be UTF-8 (a byte-order mark is accepted) without NUL bytes and valid CSV; the header must
name each required column once (letter case and surrounding spaces ignored, any order, other
columns ignored); every row needs a value for each required column (except those named
``may_be_blank``). Blank lines are skipped. Cells are returned as written. A file whose header is not
the expected one raises ``HeaderError`` (a ``PairingError``), so that a caller can say what kind of
file it expected.

A file radn wrote itself may hold bytes that are not UTF-8 (file names that are not, written with
``surrogateescape`` so that they still name the files): its reader passes ``errors="surrogateescape"``
and gets them back as they were written, as lone surrogates (U+DC80..U+DCFF). Shown to a person, such
text needs those made readable first.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .errors import PairingError, first_line


class HeaderError(PairingError):
    """The file has no header naming the expected columns (empty, another kind of CSV file)."""


@dataclass(frozen=True)
class Row:
    line: int  # first physical line of the record, for error messages
    cells: dict[str, str]  # column name -> cell (optional columns: "" when absent)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _text(path: Path, what: str, errors: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PairingError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise PairingError(f"{what} is a folder, not a CSV file", path) from None
    except OSError as error:
        raise PairingError(f"cannot read {what} ({error.strerror or error})", path) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise PairingError(f"line {_line_of(data, nul)}: contains NUL bytes; not a CSV text file", path)
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as error:
        raise PairingError(
            f"line {_line_of(data, error.start)}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
            f"save the {what} as UTF-8 CSV",
            path,
        ) from None


def read_table(
    path: str | Path,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    *,
    what: str = "CSV file",
    may_be_blank: tuple[str, ...] = (),
    errors: str = "strict",
) -> tuple[int, list[Row]]:
    """The header's line number and the rows of a CSV file with the named columns (module doc).

    ``may_be_blank``: required columns (the header must name them) whose cells may be empty.
    ``errors``: how bytes that are not UTF-8 are decoded (``bytes.decode``); "strict" refuses the
    file, "surrogateescape" is for files radn wrote (module doc).
    Raises PairingError (HeaderError for the header) naming the file, the line and the problem;
    ``what`` names the file's role in messages ("pairs list").
    """
    path = Path(path)
    reader = csv.reader(io.StringIO(_text(path, what, errors), newline=""), strict=True)
    quoted = [repr(c) for c in required]
    wanted = " and ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
    columns: dict[str, int] | None = None
    header_line = 1
    rows: list[Row] = []
    while True:
        line = reader.line_num + 1  # first physical line of the next record
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise PairingError(f"line {reader.line_num}: malformed CSV ({error})", path) from None
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if columns is None:
            names = [cell.strip().casefold() for cell in row]
            for column in (*required, *optional):
                if names.count(column) > 1:
                    raise HeaderError(f"line {line}: the header names the column {column!r} twice", path)
            if any(column not in names for column in required):
                found = first_line(",".join(row), 80)
                raise HeaderError(
                    f"line {line}: expected a header naming the columns {wanted} (found: {found!r})", path
                )
            columns = {column: names.index(column) for column in (*required, *optional) if column in names}
            header_line = line
            continue
        cells = {}
        for column in (*required, *optional):
            index = columns.get(column)
            cells[column] = row[index] if index is not None and index < len(row) else ""
            if column in required and column not in may_be_blank and not cells[column].strip():
                raise PairingError(f"line {line}: no {column!r} value", path)
        rows.append(Row(line, cells))
    if columns is None:
        raise HeaderError(f"line 1: empty file; expected a header naming the columns {wanted}", path)
    return header_line, rows
