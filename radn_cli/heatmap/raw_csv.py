"""Raw export: a patch map as CSV, one line per patch, values that read back bit for bit."""

from __future__ import annotations

from os import PathLike
from typing import Any

from ..constants import PATCH
from .maps import _as_map


def write_raw_csv(path: str | PathLike[str], values: Any, *, patch: int = PATCH) -> None:
    """Write the ``[rows, cols]`` map to ``path`` as CSV: header ``row,col,x,y,value``, one line per
    patch in row-major order, ``x, y`` the pixel position of the patch's top-left corner and ``value``
    written with ``repr`` (shortest text that reads back to the same float64)."""
    vals = _as_map(values)
    patch = int(patch)
    rows, cols = vals.shape
    lines = ["row,col,x,y,value"]
    for r in range(rows):
        for c in range(cols):
            lines.append(f"{r},{c},{c * patch},{r * patch},{float(vals[r, c])!r}")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
