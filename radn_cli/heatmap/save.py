"""Heatmap files of one scored pair: the overlay PNG and, optionally, the raw per-patch CSV.

Glue between the scorer's result and :func:`~.overlay.render_overlay` / :func:`~.raw_csv.write_raw_csv`
for the command line. Works on the tensors' own methods, so this package still imports no torch.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np
from PIL import Image

from .maps import patch_map
from .overlay import render_overlay
from .raw_csv import write_raw_csv


def image_pixels(image: Any) -> np.ndarray:
    """The uint8 ``[H, W, 3]`` pixels of a decoded image (``image.tensor``: float ``[3, H, W]`` in [0, 1])."""
    pixels = image.tensor.permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
    return np.ascontiguousarray(pixels)


def _values(result: Any, kind: str) -> np.ndarray:
    return patch_map(result.patch_scores.numpy(), result.patch_weights.numpy(), result.grid, kind)


def heatmap_image(
    image: Any, result: Any, *, kind: str, title: str | None = None, higher_is_better: bool = True
) -> Image.Image:
    """The ``kind`` map of a scored pair's ``result`` drawn over ``image`` with its legend
    (:func:`~.overlay.render_overlay`); ``image`` and ``result`` as for :func:`save_heatmap`."""
    return render_overlay(
        image_pixels(image), _values(result, kind), kind=kind, title=title, higher_is_better=higher_is_better
    )


def save_heatmap(
    out: str | PathLike[str],
    image: Any,
    result: Any,
    *,
    kind: str,
    raw: str | PathLike[str] | None = None,
    title: str | None = None,
    higher_is_better: bool = True,
) -> None:
    """Write the ``kind`` map of ``result`` over ``image`` to ``out`` (PNG, with legend) and, when
    ``raw`` is given, the map's values to ``raw`` (CSV).

    ``image`` has a ``tensor`` attribute (float ``[3, H, W]`` in [0, 1], the distorted image as
    scored); ``result`` has ``patch_scores``, ``patch_weights`` (tensors, one value per patch) and
    ``grid`` (rows, cols). ``higher_is_better`` is the weights' score direction (metadata
    ``score_direction``), stated in the legend of the ``"scores"`` and ``"contribution"`` maps.
    Errors writing the files propagate as ``OSError``.
    """
    heatmap_image(image, result, kind=kind, title=title, higher_is_better=higher_is_better).save(out)
    if raw is not None:
        write_raw_csv(raw, _values(result, kind))
