"""TID2013 (and TID2008, same layout): ``mos_with_names.txt`` with ``distorted_images/`` and
``reference_images/``."""

from __future__ import annotations

from pathlib import Path

from ...errors import PairingError
from .common import TID_NAME, Files, Layout, Pairs, RatedDatabase, read_text, to_float
from .unified import load_unified_in

STRUCTURE = (
    "A folder with mos_with_names.txt (one 'MOS name' line per image, e.g. '5.51429 i01_01_1.bmp'), "
    "the distorted images iRR_TT_L.bmp in distorted_images/ and the references IRR.BMP in "
    "reference_images/; TID2008 has the same layout. Scores are MOS 0..9, higher is better."
)


def detect(root: Path, files: Files) -> bool:
    return files.file(root, "mos_with_names.txt") is not None


def load(root: Path, files: Files, higher_is_better: bool | None = None) -> RatedDatabase:
    """TID2013 (Ponomarenko et al. 2015; TID2008 has the same layout).

    ``mos_with_names.txt``: one ``MOS name`` per line, e.g. ``5.51429 i01_01_1.bmp``; MOS 0..9, higher
    is better. ``distorted_images/iRR_TT_L.bmp`` (RR reference, TT distortion type, L level) and
    ``reference_images/IRR.BMP``. The distortion type is TT. ``higher_is_better``: see ``Layout``.
    """
    label = files.file(root, "mos_with_names.txt")
    if label is None:
        return load_unified_in(root, files, "tid2013", "mos_with_names.txt")
    dist_dir = files.dir(root, "distorted_images")
    ref_dir = files.dir(root, "reference_images")
    if dist_dir is None or ref_dir is None:
        raise PairingError("TID2013 layout needs distorted_images/ and reference_images/ folders", root)
    pairs = Pairs(label.name)
    for number, line in enumerate(read_text(label).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise PairingError(f"line {number}: expected 'MOS name', got {line.strip()!r}", label)
        mos = to_float(fields[0], label, number, "MOS")
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


LAYOUT = Layout("tid2013", STRUCTURE, "mos_with_names.txt (TID2013)", detect, load, unified=True)
