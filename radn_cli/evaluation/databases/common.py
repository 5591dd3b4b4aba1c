"""What every layout shares: the ``RatedPair`` / ``RatedDatabase`` records, ``Layout`` (what a layout
module defines), case-insensitive file lookups (``Files``), collecting pairs and missing images
(``Pairs``), reading label text files and their numbers, and the TID2013 / KADID-10k file-name
conventions that the unified CSV loader reuses.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ...errors import PairingError

MISSING_SHOWN = 5  # how many missing names the error message lists

NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
TID_NAME = re.compile(r"^i(\d+)_(\d+)_(\d+)\.[a-z]+$", re.IGNORECASE)


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


class Files:
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


@dataclass(frozen=True)
class Layout:
    """One on-disk layout of a rated database. Each layout module defines one as ``LAYOUT``, and the
    package lists them, in the order they are tried and shown, in ``LAYOUTS``.

    ``load(root, files, higher_is_better)`` reads the database; ``higher_is_better`` is the user's word
    on the direction of the ratings (None: not given), which a layout whose direction is unknown (the
    generic CSV) needs to describe its scale; ``load_database`` applies it to every layout. With
    ``unified``, the database is also read from the unified CSV of the IQA-Dataset collection (a file
    named after it; see ``unified``): ``root`` may then be that file, and its loader falls back to it.
    """

    name: str  # as --layout takes it
    structure: str  # for users (`radn eval --help`): the folders and label file it expects, one line
    marker: str  # what tells it, for the error when no layout is found: "dmos.csv (KADID-10k)"
    detect: Callable[[Path, Files], bool]  # whether the folder holds this layout's own label files
    load: Callable[[Path, Files, bool | None], RatedDatabase]
    unified: bool = False


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PairingError(f"cannot read label file: {exc.strerror or exc}", path) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def first_text_line(path: Path) -> str:
    """The first line of a file (at most 4096 bytes), stripped; "" when it cannot be read."""
    try:
        with path.open("rb") as handle:
            raw = handle.readline(4096)
    except OSError:
        return ""
    return raw.decode("utf-8-sig", errors="replace").strip()


def to_float(text: str, path: Path, line: int, what: str = "rating") -> float:
    value = text.strip()
    if not NUMBER.match(value):
        raise PairingError(f"line {line}: {what} {value!r} is not a number", path)
    return float(value)


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def csv_header(path: Path) -> list[str]:
    """The header keys of a CSV file's first line (``Dist_Img`` -> ``distimg``)."""
    return [header_key(h) for h in next(csv.reader([first_text_line(path)]), [])]


def kadid_type(name: str) -> str:
    parts = Path(name).stem.split("_")
    return parts[1] if len(parts) == 3 else ""


class Pairs:
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
