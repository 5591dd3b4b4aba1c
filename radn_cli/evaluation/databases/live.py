"""LIVE Image Quality Assessment Database, release 2: the ``.mat`` label files (read with scipy) and the
five distortion folders of ``imgN.bmp`` files."""

from __future__ import annotations

from pathlib import Path

from ...errors import PairingError
from .common import Files, Layout, Pairs, RatedDatabase
from .unified import load_unified_in

STRUCTURE = (
    "The LIVE release 2 folder: dmos_realigned.mat (or dmos.mat) and refnames_all.mat, the distorted "
    "images img1.bmp, img2.bmp ... in jp2k/, jpeg/, wn/, gblur/ and fastfading/, and the references in "
    "refimgs/. Scores are DMOS (about 0..100), lower is better; reading the .mat files needs scipy."
)

# LIVE release 2: the 982 entries of dmos.mat / refnames_all.mat, in this order, imgN.bmp per folder.
LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def _mat_vector(mat: dict, key: str, path: Path) -> list:
    """A variable of a loaded .mat file (a numpy array, as scipy's ``loadmat`` gives every variable)
    as a flat list."""
    if key not in mat:
        present = ", ".join(k for k in mat if not k.startswith("__"))
        raise PairingError(f"variable {key!r} not found (has: {present})", path)
    return list(mat[key].ravel())


def _cell_text(value) -> str:
    """The text of one cell of a MATLAB cell array (a numpy array holding one string)."""
    array = value.ravel()
    return str(array[0]).strip() if array.size else ""


def detect(root: Path, files: Files) -> bool:
    if any(files.file(root, name) for name in ("refnames_all.mat", "dmos_realigned.mat", "dmos.mat")):
        return True
    return files.dir(root, "refimgs") is not None and files.dir(root, "fastfading") is not None


def load(root: Path, files: Files, higher_is_better: bool | None = None) -> RatedDatabase:
    """LIVE Image Quality Assessment Database, release 2 (Sheikh et al., 2006).

    ``dmos_realigned.mat`` (variables ``dmos_new``, ``orgs``; preferred, as the release's readme
    advises) or ``dmos.mat`` (``dmos``, ``orgs``), and ``refnames_all.mat`` (cell ``refnames_all``):
    982 entries in the order jp2k/img1..227, jpeg/img1..233, wn/img1..174, gblur/img1..174,
    fastfading/img1..174; references in ``refimgs/``. Entries with ``orgs == 1`` are the references
    themselves and are skipped, leaving 779 distorted images. DMOS: lower is better.
    Type = the folder name. Reading .mat files needs scipy. ``higher_is_better``: see ``Layout``.
    """
    dmos_path = files.file(root, "dmos_realigned.mat") or files.file(root, "dmos.mat")
    names_path = files.file(root, "refnames_all.mat")
    if dmos_path is None or names_path is None:
        return load_unified_in(root, files, "live", "dmos_realigned.mat and refnames_all.mat")
    try:  # scipy: optional, and heavy; only when LIVE's .mat files are read
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
    pairs = Pairs(f"{dmos_path.name} / {names_path.name}")
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


LAYOUT = Layout("live", STRUCTURE, "refnames_all.mat (LIVE)", detect, load, unified=True)
