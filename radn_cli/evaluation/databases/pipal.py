"""PIPAL (NTIRE 2021/2022 perceptual IQA challenges): ``A0001_00_00.bmp,score`` label files and an image
search through the download's sub-folders."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...constants import IMAGE_SUFFIXES
from ...errors import PairingError
from .common import Files, Layout, Pairs, RatedDatabase, first_text_line, read_text, to_float
from .unified import load_unified_in

STRUCTURE = (
    "A folder with label .txt files of lines 'A0001_00_00.bmp,1520.06', in a sub-folder whose name ends "
    "in 'Label' (Train_Label/A0001.txt ...) or at the top (e.g. PIPAL_NTIRE_Valid_MOS.txt). Images are "
    "searched up to three folders down: references (A0001.bmp) in folders whose name contains 'ref' "
    "(e.g. Train_Ref/), distorted images anywhere else. Scores are Elo ratings, higher is better."
)

PIPAL_LINE = re.compile(r"^\s*([A-Za-z]\d{4}_\d+_\d+\.[A-Za-z]+)\s*,\s*([-+0-9.eE]+)\s*$")
_IMAGE_SUFFIXES = tuple(sorted(IMAGE_SUFFIXES))  # for str.endswith


def _is_pipal_label(path: Path) -> bool:
    return PIPAL_LINE.match(first_text_line(path)) is not None


def label_files(root: Path, files: Files) -> list[Path]:
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
            elif entry.name.lower().endswith(_IMAGE_SUFFIXES):
                (refs if in_ref else others).setdefault(entry.name.lower(), Path(entry.path))

    walk(root, 0, False)
    return refs, others


def detect(root: Path, files: Files) -> bool:
    return bool(label_files(root, files))


def load(root: Path, files: Files, higher_is_better: bool | None = None) -> RatedDatabase:
    """PIPAL as released for the NTIRE 2021/2022 perceptual IQA challenges (Gu et al., ECCV 2020).

    Labels: ``Train_Label/A0001.txt`` .. ``A0200.txt`` (one file per reference) and/or label ``.txt``
    files at the root (the validation-style lists, e.g. ``PIPAL_NTIRE_Valid_MOS.txt``), each line
    ``A0001_00_00.bmp,1520.0648`` (a space after the comma is accepted). Scores are Elo ratings,
    higher is better. Images are searched in the sub-folders (``Train_Ref/``, ``Train_Dis/`` or the
    ``Distortion_1`` .. ``Distortion_4`` split of the download, ``Val_Ref/``, ``NTIRE2022_FR_*`` ...):
    references in folders whose name contains "ref", named by the first field (``A0001.bmp``);
    distorted images elsewhere. Type = the middle field (``00`` .. ``06`` in training, ``10`` ...).
    ``higher_is_better``: see ``Layout``.
    """
    labels = label_files(root, files)
    if not labels:
        return load_unified_in(root, files, "pipal", "Train_Label/*.txt")
    refs, others = _image_index(root)
    pairs = Pairs(labels[0].name if len(labels) == 1 else f"{len(labels)} label files")
    for label in labels:
        for number, line in enumerate(read_text(label).splitlines(), start=1):
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
            mos = to_float(match.group(2), label, number, "score")
            pairs.add(
                refs.get(ref_name.lower()), others.get(dist_name.lower()), mos, dist_type, ref_name, dist_name
            )
    return pairs.build("pipal", root, True, "Elo score (about 900..1900)")


LAYOUT = Layout("pipal", STRUCTURE, "Train_Label/ (PIPAL)", detect, load, unified=True)
