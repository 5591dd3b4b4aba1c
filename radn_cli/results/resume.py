"""Reading an existing results file for ``resume``: splitting it into CSV records, keeping the successful
rows (one per key) and reporting what was dropped (``ResumeReport``): error rows, duplicates,
unparsable rows and a torn tail."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..errors import RadnError
from .rows import (
    COLUMNS,
    ENCODING,
    ENCODING_ERRORS,
    HEADER_LINE,
    LEGACY_COLUMNS,
    Key,
    encode_row,
    from_legacy,
    row_failed,
    row_key,
)


@dataclass(frozen=True)
class ResumeReport:
    """What ``resume=True`` found in the existing file and what it removed."""

    kept_rows: int  # successful rows kept (their keys are done_keys())
    dropped_error_rows: int  # rows that recorded an error: removed, to be retried
    dropped_duplicate_rows: int  # older rows of a key that has a later successful row
    dropped_invalid_rows: int  # unparsable rows (wrong number of cells, NUL bytes) before the end
    dropped_tail_bytes: int  # torn bytes at the end (power loss, a killed foreign writer)
    rewritten: bool  # the file was rewritten (atomically) to remove the above


def _split_records(text: str) -> list[tuple[str, int, bool]]:
    """CSV records as (text, first line number, ends with a line end).

    A line end ends a record when the number of double quotes so far in the record is even (quotes
    in CSV come in pairs: around a cell and doubled inside it).
    """
    records = []
    start = pos = quotes = 0
    line = first = 1
    while True:
        newline = text.find("\n", pos)
        if newline < 0:
            if start < len(text):
                records.append((text[start:], first, False))
            return records
        quotes += text.count('"', pos, newline)
        pos = newline + 1
        line += 1
        if quotes % 2 == 0:
            records.append((text[start:pos], first, True))
            start, quotes, first = pos, 0, line


def _parse_record(record: str, columns: tuple[str, ...] = COLUMNS) -> list[str] | None:
    """The cells of one complete record, or None when it is not a valid results row."""
    if "\x00" in record:
        return None
    try:
        rows = list(csv.reader(io.StringIO(record, newline=""), strict=True))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) != len(columns):
        return None
    return rows[0]


def _is_blank(record: str) -> bool:
    return not record.strip()


def read_existing(data: bytes, display: Path) -> tuple[dict[Key, list[str]], ResumeReport]:
    """Successful rows by key (last one wins, first position kept) and what was dropped. A file
    written before the ``scale`` column is read as scored at native size, and rewritten with it."""
    text = data.decode(ENCODING, ENCODING_ERRORS)
    rewrite = False
    if text.startswith("\ufeff"):
        text, rewrite = text[1:], True
    if HEADER_LINE.startswith(text):  # empty, or a header torn by a crash: start over
        return {}, ResumeReport(0, 0, 0, 0, len(text.encode(ENCODING, ENCODING_ERRORS)), rewritten=True)

    records = _split_records(text)
    header_index = next((i for i, (record, _, _) in enumerate(records) if not _is_blank(record)), None)
    if header_index is None:  # blank lines only
        return {}, ResumeReport(0, 0, 0, 0, len(text.encode(ENCODING, ENCODING_ERRORS)), rewritten=True)
    header_text, header_line, terminated = records[header_index]
    header = _parse_record(header_text, LEGACY_COLUMNS)
    columns = LEGACY_COLUMNS if terminated and header == list(LEGACY_COLUMNS) else COLUMNS
    if _parse_record(header_text, columns) != list(columns) or not terminated:
        found = header_text.strip()
        found = found if len(found) <= 80 else found[:77] + "..."
        raise RadnError(
            f"line {header_line}: not a radn results file (header {found!r}, expected "
            f"{','.join(COLUMNS)!r}); use --overwrite to replace it or choose another output",
            display,
        )
    rewrite = rewrite or header_index > 0 or header_text != HEADER_LINE

    body = records[header_index + 1 :]
    parsed = [None if not ok else _parse_record(record, columns) for record, _, ok in body]
    if columns is LEGACY_COLUMNS:
        parsed = [None if cells is None else from_legacy(cells) for cells in parsed]
    # the torn tail: trailing records that are not valid rows
    end = len(body)
    while end > 0 and parsed[end - 1] is None and not _is_blank(body[end - 1][0]):
        end -= 1
    tail_bytes = sum(len(record.encode(ENCODING, ENCODING_ERRORS)) for record, _, _ in body[end:])

    kept: dict[Key, list[str]] = {}
    errors = duplicates = invalid = 0
    for (record, _, _), cells in zip(body[:end], parsed[:end], strict=True):
        if cells is None:
            if _is_blank(record):
                rewrite = True
            else:
                invalid += 1
            continue
        if record != encode_row(cells).decode(ENCODING, ENCODING_ERRORS):
            rewrite = True  # e.g. "\r\n" line ends: normalize
        if row_failed(cells):
            errors += 1
            continue
        key = row_key(cells)
        if key in kept:
            duplicates += 1
        kept[key] = cells
    rewrite = rewrite or bool(errors or duplicates or invalid or tail_bytes)
    return kept, ResumeReport(len(kept), errors, duplicates, invalid, tail_bytes, rewritten=rewrite)
