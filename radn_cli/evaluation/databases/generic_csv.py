"""The generic ``csv`` layout: any CSV with a ``ref,dist,mos[,type]`` header, given as the file or as
the only such CSV in a folder."""

from __future__ import annotations

import csv
from pathlib import Path

from ...csvtable import read_table
from ...errors import PairingError
from .common import RatedDatabase, _Files, _first_text_line, _norm, _Pairs, _to_float

STRUCTURE = (
    "A CSV file with the header ref,dist,mos and optionally type (any order, any case), or a folder "
    "holding one such .csv file; ref and dist are image paths, absolute or relative to the CSV's folder. "
    "Higher mos is better unless --lower-is-better is given."
)


def _csv_header(path: Path) -> list[str]:
    return [_norm(h) for h in next(csv.reader([_first_text_line(path)]), [])]


def _is_generic_csv(path: Path) -> bool:
    return {"ref", "dist", "mos"} <= set(_csv_header(path))


def _load_csv(path: Path, files: _Files, higher_is_better: bool) -> RatedDatabase:
    """A CSV with header ``ref,dist,mos`` and optionally ``type`` (any order, any case), read by the
    strict ``csvtable.read_table``; paths absolute or relative to the CSV's folder."""
    _, rows = read_table(path, ("ref", "dist", "mos"), ("type",), what="rated pairs list")
    base = path.parent
    pairs = _Pairs(path.name)

    def resolve(text: str) -> Path | None:
        candidate = Path(text).expanduser()
        if candidate.is_absolute():
            return candidate if candidate.is_file() else None
        found = files.find(base, text)
        return found if found is not None and found.is_file() else None

    for row in rows:
        ref, dist = row.cells["ref"].strip(), row.cells["dist"].strip()
        mos = _to_float(row.cells["mos"], path, row.line, "mos")
        pairs.add(resolve(ref), resolve(dist), mos, row.cells["type"].strip(), ref, dist)
    direction = "higher" if higher_is_better else "lower"
    return pairs.build("csv", path, higher_is_better, f"as given in {path.name} ({direction} is better)")


def _csv_in(root: Path, files: _Files) -> Path | None:
    found = [p for p in sorted(files.files(root, (".csv",))) if _is_generic_csv(p)]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise PairingError(f"several ref,dist,mos CSV files ({names}); pass the one to use", root)
    return found[0] if found else None
