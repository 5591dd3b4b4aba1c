"""CSIQ: ``src_imgs/`` and ``dst_imgs/<type>/`` with the label file in any of its forms: the official
``csiq.DMOS.xlsx`` (read with the standard library), its text export, or ``csiq_label.txt``."""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree

from ...constants import IMAGE_SUFFIXES
from ...errors import PairingError
from .common import NUMBER, Files, Layout, Pairs, RatedDatabase, header_key, read_text, to_float
from .unified import is_unified, load_unified_in

STRUCTURE = (
    "A folder with the references src_imgs/<image>.png and the distorted images "
    "dst_imgs/<type>/<image>.<TYPE>.<level>.png (e.g. dst_imgs/awgn/1600.AWGN.1.png; a flat dst_imgs_all/ "
    "works too), plus the label file csiq.DMOS.xlsx, its text export, or a csiq_label.txt with lines "
    "'1600.AWGN.1.png 0.062'. Scores are DMOS 0..1, lower is better."
)

# CSIQ dst_idx (column 2 of csiq.DMOS.xlsx) -> (folder under dst_imgs/, type token in the file name).
CSIQ_TYPES = {
    1: ("awgn", "AWGN"),
    2: ("jpeg", "JPEG"),
    3: ("jpeg2000", "jpeg2000"),
    4: ("fnoise", "fnoise"),
    5: ("blur", "BLUR"),
    6: ("contrast", "contrast"),
}


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


def _csiq_table(rows: list[list[str]], label: Path) -> list[tuple[str, int, int, float]] | None:
    """(image, dst_idx, dst_lev, dmos) from rows with the header image, dst_idx, dst_type, dst_lev,
    dmos_std, dmos (as in csiq.DMOS.xlsx); None when no such header is found."""
    for start, row in enumerate(rows[:10]):
        header = [header_key(h) for h in row]
        if {"image", "dstidx", "dmos"} <= set(header) and ({"dstlev", "dstlevel"} & set(header)):
            col_image, col_idx, col_dmos = header.index("image"), header.index("dstidx"), header.index("dmos")
            col_lev = header.index("dstlev") if "dstlev" in header else header.index("dstlevel")
            entries = []
            for number, data in enumerate(rows[start + 1 :], start=start + 2):
                if len(data) <= max(col_image, col_idx, col_lev, col_dmos) or not data[col_image]:
                    continue
                idx = int(to_float(data[col_idx], label, number, "dst_idx"))
                lev = int(to_float(data[col_lev], label, number, "dst_lev"))
                entries.append((data[col_image], idx, lev, to_float(data[col_dmos], label, number, "dmos")))
            return entries
    return None


def _csiq_text_entries(path: Path) -> list[tuple[str, float]] | None:
    """Distorted file names and DMOS from a CSIQ text label file, or None if it is not one.

    Accepted: ``csiq_label.txt`` lines ``1600.AWGN.1.png 0.062`` (the ``.png`` may be missing), and the
    text export of csiq.DMOS.xlsx, ``image dst_idx dst_type dst_lev dmos_std dmos`` per line
    (tab- or space-separated, header optional; dst_type may contain a space, as "jpeg 2000").
    """
    lines = [line for line in read_text(path).splitlines() if line.strip()]
    if not lines:
        return None
    split = [line.split("\t") if "\t" in line else line.split() for line in lines]
    split = [[cell.strip() for cell in row if cell.strip()] for row in split]
    header = [header_key(h) for h in split[0]]
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


def detect(root: Path, files: Files) -> bool:
    return files.dir(root, "src_imgs") is not None and (
        files.dir(root, "dst_imgs") is not None or files.dir(root, "dst_imgs_all") is not None
    )


def load(root: Path, files: Files, higher_is_better: bool | None = None) -> RatedDatabase:
    """CSIQ (Larson & Chandler, JEI 2010).

    Images: ``src_imgs/<name>.png`` and ``dst_imgs/<type>/<name>.<TYPE>.<level>.png`` with folders
    awgn, jpeg, jpeg2000, fnoise, blur, contrast and file tokens AWGN, JPEG, jpeg2000, fnoise, BLUR,
    contrast (a flat ``dst_imgs_all/`` also works). Labels, first found: the official
    ``csiq.DMOS.xlsx`` (a sheet with columns image, dst_idx, dst_type, dst_lev, dmos_std, dmos;
    dst_idx 1..6 = awgn, jpeg, jpeg2000, fnoise, blur, contrast), its text export
    (``csiq_dmos.txt``-style lines ``1600 1 noise 1 0.061 0.062``), a ``csiq_label.txt`` with lines
    ``1600.AWGN.1.png 0.062``, or the unified ``CSIQ.txt`` CSV. DMOS 0..1, lower is better.
    Type = the folder name (awgn, jpeg, ...). ``higher_is_better``: see ``Layout``.
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
            if is_unified(text):
                continue
            parsed = _csiq_text_entries(text)
            if parsed:
                entries, label = parsed, text
                break
    if entries is None or label is None:
        return load_unified_in(root, files, "csiq", "csiq.DMOS.xlsx, csiq_label.txt")
    src = files.dir(root, "src_imgs")
    dst = files.dir(root, "dst_imgs")
    flat = files.dir(root, "dst_imgs_all")
    pairs = Pairs(label.name)
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


LAYOUT = Layout("csiq", STRUCTURE, "src_imgs/ + dst_imgs/ (CSIQ)", detect, load, unified=True)
