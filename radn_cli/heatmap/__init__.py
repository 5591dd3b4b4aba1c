"""Per-patch heatmaps of a RADN score: image overlays, raw CSV dumps and terminal previews.

RADN scores the distorted image on a row-major grid of non-overlapping ``patch`` x ``patch`` squares
(``rows x cols``; the remainder pixels at the right and bottom edge are not covered). Each patch gets a
score ``s_i`` and a weight ``w_i > 0`` and the image score is ``sum(w_i s_i) / sum(w_i)``. This package
turns those per-patch values into

* a ``[rows, cols]`` map (:func:`patch_map`, in :mod:`.maps`; :func:`result_map` of a scored pair):
  the scores (the default: where quality is lost), the weights (where the model looks), or each
  patch's product ``w_i s_i / sum(w)``, what it adds to the image score (the products add up to the
  image score);
* an overlay image at input resolution with a colour-bar legend (:func:`render_overlay`, in
  :mod:`.overlay`), its colours over a fixed range by default (:mod:`.choices`: for scores the
  weights' score scale, so that the maps of several images compare);
* the raw values: a CSV with one line per patch (:func:`write_raw_csv`, in :mod:`.raw_csv`) or a
  ``.npy`` array (:func:`write_raw`);
* a Rich renderable for the terminal (:func:`terminal_heatmap`, in :mod:`.terminal`);
* both files of a scored pair at once, for the command line (:func:`save_heatmap`, in :mod:`.save`),
  or its overlay as an image (:func:`heatmap_image`, for the HTML report).

Legends state in words what high values mean (:func:`direction_labels`): for the score and
product maps which way is better quality (the weights' score direction, ``higher_is_better``),
for the weight map that a higher weight counts more, i.e. shows where the model looks.

The colour map (:mod:`.colormap`) is a viridis-like ramp (dark purple -> blue -> green -> yellow),
built from ten anchor colours interpolated in the perceptually uniform OKLab space; low values are
dark, high values bright. Only numpy, Pillow and Rich are used; nothing here imports torch or Typer,
and nothing prints. The names below load their module on first use: :mod:`.choices` (the maps' and
ranges' names, for the command line's checks) imports no numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..constants import PATCH

# name -> the module that defines it, imported on first use
_HOME = {
    "COLORMAP": "colormap",
    "DEFAULT_MAP": "choices",
    "DEFAULT_RANGE": "choices",
    "MAPS": "choices",
    "MAP_ALIASES": "choices",
    "canonical_map": "choices",
    "color_range": "choices",
    "parse_range": "choices",
    "scale_range": "choices",
    "MAP_LABELS": "maps",
    "direction_labels": "maps",
    "patch_map": "maps",
    "result_map": "maps",
    "legend_height": "overlay",
    "render_overlay": "overlay",
    "write_raw": "raw_csv",
    "write_raw_csv": "raw_csv",
    "heatmap_image": "save",
    "image_pixels": "save",
    "save_heatmap": "save",
    "terminal_heatmap": "terminal",
}

__all__ = [
    "COLORMAP",
    "DEFAULT_MAP",
    "DEFAULT_RANGE",
    "MAPS",
    "MAP_ALIASES",
    "MAP_LABELS",
    "PATCH",
    "canonical_map",
    "color_range",
    "direction_labels",
    "heatmap_image",
    "image_pixels",
    "legend_height",
    "parse_range",
    "patch_map",
    "render_overlay",
    "result_map",
    "save_heatmap",
    "scale_range",
    "terminal_heatmap",
    "write_raw",
    "write_raw_csv",
]

if TYPE_CHECKING:
    from .choices import (
        DEFAULT_MAP,
        DEFAULT_RANGE,
        MAP_ALIASES,
        MAPS,
        canonical_map,
        color_range,
        parse_range,
        scale_range,
    )
    from .colormap import COLORMAP
    from .maps import MAP_LABELS, direction_labels, patch_map, result_map
    from .overlay import legend_height, render_overlay
    from .raw_csv import write_raw, write_raw_csv
    from .save import heatmap_image, image_pixels, save_heatmap
    from .terminal import terminal_heatmap


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
