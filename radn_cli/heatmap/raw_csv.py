"""Raw export: a patch map as CSV, one line per patch, or as a NumPy ``.npy`` array; values read back
bit for bit."""

from __future__ import annotations

from os import PathLike, fspath
from typing import Any

import numpy as np

from ..constants import PATCH
from .maps import as_map


def write_raw_csv(path: str | PathLike[str], values: Any, *, patch: int = PATCH) -> None:
    """Write the ``[rows, cols]`` map to ``path`` as CSV: header ``row,col,x,y,value``, one line per
    patch in row-major order, ``x, y`` the pixel position of the patch's top-left corner and ``value``
    written with ``repr`` (shortest text that reads back to the same float64)."""
    vals = as_map(values)
    patch = int(patch)
    rows, cols = vals.shape
    lines = ["row,col,x,y,value"]
    for r in range(rows):
        for c in range(cols):
            lines.append(f"{r},{c},{c * patch},{r * patch},{float(vals[r, c])!r}")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")


def write_raw(path: str | PathLike[str], values: Any, *, patch: int = PATCH) -> None:
    """Write the ``[rows, cols]`` map to ``path`` in the format its name says: ``.npy`` a float64
    ``[rows, cols]`` array (``numpy.load`` reads it; no pickle), anything else CSV
    (:func:`write_raw_csv`)."""
    if fspath(path).lower().endswith(".npy"):
        with open(path, "wb") as fh:  # a file object: np.save adds no second ".npy"
            np.save(fh, as_map(values), allow_pickle=False)
    else:
        write_raw_csv(path, values, patch=patch)
