"""Per-patch heatmaps of a RADN score: image overlays, raw CSV dumps and terminal previews.

RADN scores the distorted image on a row-major grid of non-overlapping ``patch`` x ``patch`` squares
(``rows x cols``; the remainder pixels at the right and bottom edge are not covered). Each patch gets a
score ``s_i`` and a weight ``w_i > 0`` and the image score is ``sum(w_i s_i) / sum(w_i)``. This package
turns those per-patch values into

* a ``[rows, cols]`` map (:func:`patch_map`, in :mod:`.maps`): the weights, the scores, or each patch's
  contribution ``w_i s_i / sum(w)`` to the image score (the contributions add up to the image score);
* an overlay image at input resolution with a colour-bar legend (:func:`render_overlay`, in
  :mod:`.overlay`);
* a CSV with one line per patch (:func:`write_raw_csv`, in :mod:`.raw_csv`);
* a Rich renderable for the terminal (:func:`terminal_heatmap`, in :mod:`.terminal`);
* both files of a scored pair at once, for the command line (:func:`save_heatmap`, in :mod:`.save`),
  or its overlay as an image (:func:`heatmap_image`, for the HTML report).

Legends state in words what high values mean (:func:`direction_labels`): for the score and
contribution maps which way is better quality (the weights' score direction, ``higher_is_better``),
for the weight map that a higher weight counts more, i.e. shows where the model looks.

The colour map (:mod:`.colormap`) is a viridis-like ramp (dark purple -> blue -> green -> yellow),
built from ten anchor colours interpolated in the perceptually uniform OKLab space; low values are
dark, high values bright. Only numpy, Pillow and Rich are used; nothing here imports torch or Typer,
and nothing prints.
"""

from __future__ import annotations

from ..constants import PATCH
from .colormap import COLORMAP
from .colormap import _srgb_to_oklab as _srgb_to_oklab  # private, used by the tests
from .maps import MAP_LABELS, MAPS, direction_labels, patch_map
from .overlay import legend_height, render_overlay
from .raw_csv import write_raw_csv
from .save import heatmap_image, image_pixels, save_heatmap
from .terminal import terminal_heatmap

__all__ = [
    "MAPS",
    "MAP_LABELS",
    "COLORMAP",
    "PATCH",
    "direction_labels",
    "heatmap_image",
    "image_pixels",
    "patch_map",
    "render_overlay",
    "save_heatmap",
    "write_raw_csv",
    "terminal_heatmap",
    "legend_height",
]
