"""Which distorted image goes with which reference image.

Two ways to get pairs:

* :func:`pair_folders` scans a reference folder and a distorted folder and matches files by name;
* :func:`read_pairs_csv` reads an explicit list (a CSV file with ``ref`` and ``dist`` columns).

Files are never paired by their position in a sorted listing: a distorted file whose name does not
lead to a reference is reported in :attr:`Pairing.unmatched_dist`, never scored against some other
image.

Scanning rules (both folders)
-----------------------------
* recursive; only files whose suffix is in :data:`IMAGE_SUFFIXES` (any letter case);
* hidden files and folders (name starting with ``.``, which includes macOS ``._*`` files) are skipped;
* symbolic links to files and folders are followed; a folder reached a second time (a link loop, or
  two links to the same folder) is scanned only once, at its first path in sorted order;
* when one folder lies inside the other (``db/`` and ``db/distorted/``), the inner folder is left
  out of the outer folder's scan;
* a folder that cannot be read is an error, so that no file is silently left out.

Matching modes
--------------
``"path"``
    The distorted file ``DIST/a/b.png`` goes with ``REF/a/b.png`` (same relative path, exact letter
    case). When that file does not exist, a reference with the same relative path but another image
    suffix is used if there is exactly one (``DIST/x.png`` with ``REF/x.bmp``).
``"prefix"``
    For naming schemes of the public databases (PIPAL ``A0001_00_00.bmp`` -> ``A0001.bmp``,
    KADID-10k ``I01_01_01.png`` -> ``I01.png``, TID2013 ``i01_01_1.bmp`` -> ``I01.BMP``). Candidate
    names are the whole stem of the distorted file and every prefix of the stem that ends just
    before a separator (``_``, ``-`` or ``.``). The longest candidate that is the stem of a
    reference wins; names are compared case-insensitively and folders do not matter. If several
    references share that stem (``REF/a/I01.png`` and ``REF/b/I01.png``), the one in the same
    relative folder as the distorted file is used; if that does not settle it, the distorted file
    is reported as unmatched rather than guessed.
``"auto"``
    Both modes are tried. ``"path"`` is used when it pairs at least one file and at least as many
    distorted files as ``"prefix"`` would; otherwise ``"prefix"``. The choice is recorded in
    :attr:`Pairing.mode`.

Zero pairs, a missing or empty folder, or the same folder given twice raise :class:`PairingError`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .constants import IMAGE_SUFFIXES
from .csvtable import read_table
from .errors import PairingError, UsageError

MODES = ("auto", "path", "prefix")
SEPARATORS = frozenset("_-.")


@dataclass(frozen=True)
class Pair:
    ref: Path
    dist: Path


@dataclass(frozen=True)
class Pairing:
    """The result of pairing.

    ``pairs`` is sorted by reference, then by distorted path, so that all pairs of one reference are
    consecutive (a batch can then load each reference once). ``mode`` is how the pairs were found:
    ``"path"``, ``"prefix"`` or ``"csv"``.
    """

    pairs: list[Pair]
    unmatched_dist: list[Path]  # distorted files with no reference
    unused_refs: list[Path]  # references that no distorted file uses
    mode: str


# ----------------------------------------------------------------------------------------------------
# Folder scanning


def _dir_identity(path: str | Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _check_folder(folder: Path, role: str) -> None:
    if not folder.exists():
        raise PairingError(f"{role} folder not found", folder)
    if not folder.is_dir():
        raise PairingError(f"{role} folder is not a folder", folder)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _scan(root: Path, role: str, *, exclude: tuple[int, int]) -> dict[str, Path]:
    """Image files under ``root``: relative POSIX path -> ``root / relative path``.

    ``exclude`` is the identity (st_dev, st_ino) of a folder to leave out (the other root).
    """

    def on_error(error: OSError) -> None:
        reason = error.strerror or str(error)
        raise PairingError(f"cannot read {role} folder ({reason})", error.filename or root)

    found: dict[str, Path] = {}
    visited = {_dir_identity(root)}
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        rel_dir = PurePosixPath(*Path(os.path.relpath(dirpath, root)).parts)  # "." for the root
        keep = []
        for name in sorted(dirnames):
            if _is_hidden(name):
                continue
            try:
                identity = _dir_identity(os.path.join(dirpath, name))
            except OSError:  # a link that vanished or points nowhere
                continue
            if identity in visited or identity == exclude:
                continue
            visited.add(identity)
            keep.append(name)
        dirnames[:] = keep  # os.walk descends only into these, in this order
        for name in filenames:
            if _is_hidden(name) or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            full = os.path.join(dirpath, name)
            if not os.path.isfile(full):  # broken link, socket, ...
                continue
            rel = rel_dir / name
            found[rel.as_posix()] = root / rel
    return found


# ----------------------------------------------------------------------------------------------------
# Matching


def _match_path(refs: dict[str, Path], dists: dict[str, Path]) -> dict[str, str]:
    """dist rel -> ref rel, by identical relative path, else by unique relative path without suffix."""
    by_stem_path: dict[str, list[str]] = defaultdict(list)
    for rel in refs:
        by_stem_path[str(PurePosixPath(rel).with_suffix(""))].append(rel)
    matches = {}
    for rel in dists:
        if rel in refs:
            matches[rel] = rel
            continue
        candidates = by_stem_path.get(str(PurePosixPath(rel).with_suffix("")), [])
        if len(candidates) == 1:
            matches[rel] = candidates[0]
    return matches


def name_prefixes(stem: str) -> list[str]:
    """Candidate reference stems for a distorted stem, longest first.

    The whole stem, then every prefix that ends just before a separator (``_``, ``-``, ``.``):

        >>> name_prefixes("A0001_00_00")
        ['A0001_00_00', 'A0001_00', 'A0001']
    """
    cuts = [i for i in range(len(stem) - 1, 0, -1) if stem[i] in SEPARATORS]
    return [stem] + [stem[:i] for i in cuts]


def _match_prefix(refs: dict[str, Path], dists: dict[str, Path]) -> dict[str, str]:
    """dist rel -> ref rel, by the longest reference stem that is a separator-bounded prefix."""
    by_stem: dict[str, list[str]] = defaultdict(list)
    for rel in refs:
        by_stem[PurePosixPath(rel).stem.casefold()].append(rel)
    matches = {}
    for rel in dists:
        dist_path = PurePosixPath(rel)
        for prefix in name_prefixes(dist_path.stem.casefold()):
            candidates = by_stem.get(prefix)
            if not candidates:
                continue
            if len(candidates) > 1:
                folder = str(dist_path.parent).casefold()
                candidates = [c for c in candidates if str(PurePosixPath(c).parent).casefold() == folder]
            if len(candidates) == 1:
                matches[rel] = candidates[0]
            break  # the longest matching stem decides, even when it is ambiguous
    return matches


def _sorted_paths(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: p.parts)


def _sorted_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    return sorted(pairs, key=lambda p: (p.ref.parts, p.dist.parts))


def _build(refs: dict[str, Path], dists: dict[str, Path], matches: dict[str, str], mode: str) -> Pairing:
    pairs = [Pair(ref=refs[ref_rel], dist=dists[dist_rel]) for dist_rel, ref_rel in matches.items()]
    used = set(matches.values())
    return Pairing(
        pairs=_sorted_pairs(pairs),
        unmatched_dist=_sorted_paths(path for rel, path in dists.items() if rel not in matches),
        unused_refs=_sorted_paths(path for rel, path in refs.items() if rel not in used),
        mode=mode,
    )


def pair_folders(ref_dir: Path, dist_dir: Path, *, mode: str = "auto") -> Pairing:
    """Pair the images of ``dist_dir`` with those of ``ref_dir``; see the module docstring for the rules.

    Raises:
        UsageError: unknown ``mode``.
        PairingError: a folder is missing, unreadable, the same as the other, or has no images; or no
            distorted image matches any reference.
    """
    if mode not in MODES:
        raise UsageError(f"unknown pairing mode {mode!r}; use one of: {', '.join(MODES)}")
    ref_dir, dist_dir = Path(ref_dir), Path(dist_dir)
    _check_folder(ref_dir, "reference")
    _check_folder(dist_dir, "distorted")
    ref_id, dist_id = _dir_identity(ref_dir), _dir_identity(dist_dir)
    if ref_id == dist_id:
        raise PairingError(f"reference and distorted folders are the same folder ({ref_dir})", dist_dir)

    refs = _scan(ref_dir, "reference", exclude=dist_id)
    dists = _scan(dist_dir, "distorted", exclude=ref_id)
    suffixes = " ".join(sorted(IMAGE_SUFFIXES))
    if not refs:
        raise PairingError(f"no image files ({suffixes}) in the reference folder", ref_dir)
    if not dists:
        raise PairingError(f"no image files ({suffixes}) in the distorted folder", dist_dir)

    if mode == "path":
        matches, chosen = _match_path(refs, dists), "path"
    elif mode == "prefix":
        matches, chosen = _match_prefix(refs, dists), "prefix"
    else:
        by_path, by_prefix = _match_path(refs, dists), _match_prefix(refs, dists)
        if by_path and len(by_path) >= len(by_prefix):
            matches, chosen = by_path, "path"
        else:
            matches, chosen = by_prefix, "prefix"

    if not matches:
        how = {"path": "by relative path", "prefix": "by name prefix"}.get(
            mode, "by relative path or by name prefix"
        )
        raise PairingError(
            f"none of the {len(dists)} distorted images matches one of the {len(refs)} reference images "
            f"in {ref_dir} {how}",
            dist_dir,
        )
    return _build(refs, dists, matches, chosen)


# ----------------------------------------------------------------------------------------------------
# Explicit pairs list


def _normalised(base: Path, value: str) -> Path:
    """``base / value`` (an absolute value replaces base) without ``.`` parts, and without ``..``
    parts where taking them out still names the same file (not when a folder before them is a
    symbolic link, where ``a/link/..`` is not ``a``)."""
    path = base / value  # pathlib drops "." parts and repeated separators
    if ".." not in path.parts:
        return path
    lexical = Path(os.path.normpath(path))
    return lexical if os.path.realpath(lexical) == os.path.realpath(path) else path


def read_pairs_csv(path: Path) -> Pairing:
    """Pairs listed in a CSV file whose header names the columns ``ref`` and ``dist``.

    Read by ``csvtable.read_table`` (strict: UTF-8, a header naming both columns in any order and
    letter case, other columns ignored, blank lines skipped; errors give the line number). Relative
    paths are relative to the CSV file's folder; paths are normalised (``./a/../b.png`` -> ``b.png``)
    without resolving links. A pair listed twice is kept once. Files are not checked for existence
    here: a batch records a missing file on its row.

    Raises:
        PairingError: the file cannot be read or is not such a CSV file, or lists no pairs.
    """
    path = Path(path)
    header_line, rows = read_table(path, ("ref", "dist"), what="pairs list")
    base = path.parent
    seen = {Pair(_normalised(base, row.cells["ref"]), _normalised(base, row.cells["dist"])) for row in rows}
    if not seen:
        raise PairingError(f"line {header_line}: no pairs listed after the header", path)
    return Pairing(pairs=_sorted_pairs(seen), unmatched_dist=[], unused_refs=[], mode="csv")
