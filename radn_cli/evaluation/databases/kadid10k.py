"""KADID-10k: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) with the images in ``images/``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ...errors import PairingError
from .common import Files, Layout, Pairs, RatedDatabase, csv_header, kadid_type, read_text, to_float
from .unified import load_unified_in

STRUCTURE = (
    "A folder with dmos.csv, header dist_img,ref_img,dmos[,var] (e.g. 'I01_01_01.png,I01.png,4.57,0.496'), "
    "and the reference and distorted images in images/ (or next to dmos.csv). Despite its name the dmos "
    "column is 1..5 (5 = imperceptible): higher is better."
)


def detect(root: Path, files: Files) -> bool:
    label = files.file(root, "dmos.csv")
    return label is not None and "distimg" in csv_header(label)


def load(root: Path, files: Files, higher_is_better: bool | None = None) -> RatedDatabase:
    """KADID-10k (Lin, Hosu, Saupe, QoMEX 2019).

    ``dmos.csv`` with header ``dist_img,ref_img,dmos,var``, e.g. ``I01_01_01.png,I01.png,4.57,0.496``;
    ``images/`` holds the 81 references and 10,125 distorted images. Despite the name, "dmos" is
    1 (very annoying) .. 5 (imperceptible): higher is better. Type = TT of ``IRR_TT_LL.png``.
    ``higher_is_better``: see ``Layout``.
    """
    label = files.file(root, "dmos.csv")
    if label is None:
        return load_unified_in(root, files, "kadid10k", "dmos.csv")
    images = files.dir(root, "images") or root
    reader = csv.reader(io.StringIO(read_text(label)))
    header = [h.strip().lower() for h in next(reader, [])]
    needed = ("dist_img", "ref_img", "dmos")
    if not all(col in header for col in needed):
        raise PairingError(f"expected the header dist_img,ref_img,dmos,var, got {','.join(header)!r}", label)
    col = {name: header.index(name) for name in needed}
    pairs = Pairs(label.name)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise PairingError(f"line {number}: expected {len(header)} columns, got {len(row)}", label)
        dist_name, ref_name = row[col["dist_img"]].strip(), row[col["ref_img"]].strip()
        mos = to_float(row[col["dmos"]], label, number, "dmos")
        pairs.add(
            files.find(images, ref_name),
            files.find(images, dist_name),
            mos,
            kadid_type(dist_name),
            f"images/{ref_name}",
            f"images/{dist_name}",
        )
    return pairs.build("kadid10k", root, True, "DMOS 1..5 (5 = imperceptible)")


LAYOUT = Layout("kadid10k", STRUCTURE, "dmos.csv (KADID-10k)", detect, load, unified=True)
