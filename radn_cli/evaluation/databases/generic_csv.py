"""The generic ``csv`` layout: any CSV with a ``ref,dist,mos[,type]`` header, given as the file or as
the only such CSV in a folder."""

from __future__ import annotations

from pathlib import Path

from ...csvtable import read_table
from ...errors import PairingError
from .common import Files, Layout, Pairs, RatedDatabase, csv_header, to_float

STRUCTURE = (
    "A CSV file with the header ref,dist,mos and optionally type (any order, any case), or a folder "
    "holding one such .csv file; ref and dist are image paths, absolute or relative to the CSV's folder. "
    "Higher mos is better unless --lower-is-better is given."
)


def is_generic_csv(path: Path) -> bool:
    return {"ref", "dist", "mos"} <= set(csv_header(path))


def detect(root: Path, files: Files) -> bool:
    """A CSV file with a ref,dist,mos header, or a folder holding one."""
    return is_generic_csv(root) if root.is_file() else csv_in(root, files) is not None


def load(root: Path, files: Files, higher_is_better: bool | None = None) -> RatedDatabase:
    """The CSV ``root``, or the one ref,dist,mos CSV in the folder ``root``: header ``ref,dist,mos``
    and optionally ``type`` (any order, any case), read by the strict ``csvtable.read_table``; paths
    absolute or relative to the CSV's folder. Higher ratings are better unless ``higher_is_better``
    says otherwise."""
    path = root if root.is_file() else csv_in(root, files)
    if path is None:
        raise PairingError("no CSV with a ref,dist,mos header found", root)
    higher_is_better = True if higher_is_better is None else higher_is_better
    _, rows = read_table(path, ("ref", "dist", "mos"), ("type",), what="rated pairs list")
    base = path.parent
    pairs = Pairs(path.name)

    def resolve(text: str) -> Path | None:
        candidate = Path(text).expanduser()
        if candidate.is_absolute():
            return candidate if candidate.is_file() else None
        found = files.find(base, text)
        return found if found is not None and found.is_file() else None

    for row in rows:
        ref, dist = row.cells["ref"].strip(), row.cells["dist"].strip()
        mos = to_float(row.cells["mos"], path, row.line, "mos")
        pairs.add(resolve(ref), resolve(dist), mos, row.cells["type"].strip(), ref, dist)
    direction = "higher" if higher_is_better else "lower"
    return pairs.build("csv", path, higher_is_better, f"as given in {path.name} ({direction} is better)")


def csv_in(root: Path, files: Files) -> Path | None:
    found = [p for p in sorted(files.files(root, (".csv",))) if is_generic_csv(p)]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise PairingError(f"several ref,dist,mos CSV files ({names}); pass the one to use", root)
    return found[0] if found else None


LAYOUT = Layout("csv", STRUCTURE, "a CSV with a ref,dist,mos header", detect, load)
