"""Heatmap files of one scored pair: the overlay PNG and, optionally, the raw per-patch values.

Glue between the scorer's result and :func:`~.overlay.render_overlay` / :func:`~.raw_csv.write_raw`
for the command line. Works on the tensors' own methods, so this package still imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any

import numpy as np
from PIL import Image

from .maps import result_map
from .overlay import render_overlay
from .raw_csv import write_raw


def image_pixels(image: Any) -> np.ndarray:
    """The uint8 ``[H, W, 3]`` pixels of a decoded image (``image.tensor``: float ``[3, H, W]`` in [0, 1])."""
    pixels = image.tensor.permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
    return np.ascontiguousarray(pixels)


def heatmap_image(
    image: Any,
    result: Any,
    *,
    kind: str,
    title: str | None = None,
    higher_is_better: bool = True,
    value_range: tuple[float, float] | None = None,
) -> Image.Image:
    """The ``kind`` map of a scored pair's ``result`` drawn over ``image`` with its legend
    (:func:`~.overlay.render_overlay`, colours over ``value_range`` or, with None, the map's own
    min..max); ``image`` and ``result`` as for :func:`save_heatmap`."""
    return render_overlay(
        image_pixels(image),
        result_map(result, kind),
        kind=kind,
        title=title,
        higher_is_better=higher_is_better,
        value_range=value_range,
    )


def save_heatmap(
    out: str | PathLike[str],
    image: Any,
    result: Any,
    *,
    kind: str,
    raw: str | PathLike[str] | Sequence[str | PathLike[str]] | None = None,
    title: str | None = None,
    higher_is_better: bool = True,
    value_range: tuple[float, float] | None = None,
) -> None:
    """Write the ``kind`` map of ``result`` over ``image`` to ``out`` (PNG, with legend) and the map's
    values to ``raw``, a file or several (:func:`~.raw_csv.write_raw`: ``.npy`` as a NumPy array,
    any other name as CSV).

    ``image`` has a ``tensor`` attribute (float ``[3, H, W]`` in [0, 1], the distorted image as
    scored); ``result`` has ``patch_scores``, ``patch_weights`` (tensors, one value per patch) and
    ``grid`` (rows, cols). ``higher_is_better`` is the weights' score direction (metadata
    ``score_direction``), stated in the legend of the ``"scores"`` and ``"product"`` maps. Colours
    span ``value_range`` (e.g. :func:`~.choices.color_range`) or, with None, the map's own min..max.
    Errors writing the files propagate as ``OSError``.
    """
    heatmap_image(
        image, result, kind=kind, title=title, higher_is_better=higher_is_better, value_range=value_range
    ).save(out)
    raws = [] if raw is None else [raw] if isinstance(raw, (str, PathLike)) else list(raw)
    for path in raws:
        write_raw(path, result_map(result, kind))
