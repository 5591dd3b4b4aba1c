"""The report's image folder (``report_files/`` beside ``report.html``), which is also its cache.

Owns: where a CSV path is found on disk, the file names of an image's thumbnail and view and of a
pair's heatmap overlay, and writing them as JPEG. Names are hashes of what the picture depends on
(an image file's absolute path, size and modification time; for a heatmap both images, the weights,
the precision, the viewing scale, the map and its colour range), so a file that exists is up to
date, a later `radn report` reuses it, and no file name from the CSV ever reaches a URL. Files are
written to a temporary name and renamed, so an interrupted run leaves no half picture behind.

Overlays are drawn by the heatmap package (the project's one colour map) at input resolution, also
for a pair scored at another ``--scale`` (``viewing.heatmap_at_input``), and then scaled like the
views, so the three pictures of a pair line up. Their legend is not in the picture, where it would
shrink with it: the page draws it as text under the picture, from ``heat/<key>.json`` (what the
colours span, written with the picture: :func:`legend_facts`) and the colour bar ``ramp.png``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..atomic import atomic_write
from ..constants import PATCH
from ..heatmap import COLORMAP, image_pixels, result_map
from ..viewing import heatmap_at_input

THUMB = 128  # px, longest side: the table shows thumbnails at 64 css px (sharp on 2x screens)
VIEW = 640  # px, longest side of the images shown side by side when a row is opened
IMAGES = "img"
HEATMAPS = "heat"
RAMP = "ramp.png"  # the colour bar of the legends, low to high
PICTURES = 2  # the version of the heatmap pictures (2: without the legend in them); part of their keys


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    if factor >= 1.0:
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _fit(width: int, height: int, longest: int) -> float:
    return min(1.0, longest / max(width, height))


def files_folder(output: Path) -> Path:
    """The folder of a report's pictures and scripts: ``report.html`` -> ``report_files``."""
    return output.with_name(f"{output.stem}_files")


class Assets:
    """The folder of a report's pictures: ``img/<key>_t.jpg`` (thumbnail), ``img/<key>_v.jpg``
    (view) per image file and ``heat/<key>.jpg`` per heatmap.

    ``base``: where relative paths that do not exist from the current folder are looked up (the
    results CSV's folder: a batch run from elsewhere wrote paths relative to its own folder only
    when they were given so).
    """

    def __init__(self, folder: Path, *, base: Path | None = None) -> None:
        self.folder = Path(folder)
        self.base = base

    def create(self) -> None:
        for sub in (IMAGES, HEATMAPS):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)

    def locate(self, path: str) -> Path:
        """The file a CSV path names: as written (relative to the current folder), else relative to
        ``base``."""
        found = Path(path)
        if found.is_absolute() or found.exists() or self.base is None:
            return found
        beside = self.base / found
        return beside if beside.exists() else found

    def image_key(self, path: Path) -> str | None:
        """The key of an image file's pictures, None when the file cannot be found."""
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            return None
        return _digest(os.path.abspath(path), info.st_size, info.st_mtime_ns)

    @staticmethod
    def heatmap_key(
        ref_key: str,
        dist_key: str,
        weights: str,
        precision: str,
        kind: str,
        colours: tuple[float, float] | None = None,
        scale: str = "native",
    ) -> str:
        """The name of a pair's heatmap: what it shows, its colour range (None: the map's own
        min..max) and the viewing scale it was scored at all change the picture."""
        span = "own" if colours is None else f"{float(colours[0])!r},{float(colours[1])!r}"
        return _digest(ref_key, dist_key, weights, precision, kind, span, scale, PICTURES)

    def thumb(self, key: str) -> Path:
        return self.folder / IMAGES / f"{key}_t.jpg"

    def view(self, key: str) -> Path:
        return self.folder / IMAGES / f"{key}_v.jpg"

    def heatmap(self, key: str) -> Path:
        return self.folder / HEATMAPS / f"{key}.jpg"

    def legend(self, key: str) -> Path:
        return self.folder / HEATMAPS / f"{key}.json"

    def has_heatmap(self, key: str) -> bool:
        return self.heatmap(key).is_file() and self.legend(key).is_file()

    def read_legend(self, key: str) -> dict[str, Any] | None:
        """The legend of a drawn heatmap (:func:`legend_facts`), None when it cannot be read."""
        try:
            return json.loads(self.legend(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def add_ramp(self) -> None:
        """``ramp.png``: the colour map as a 256 x 1 picture, for the page's legends."""
        _save_png(Image.fromarray(np.ascontiguousarray(COLORMAP[None, :, :])), self.folder / RAMP)

    def has_image(self, key: str) -> bool:
        return self.thumb(key).is_file() and self.view(key).is_file()

    def add_image(self, key: str, image: Any) -> None:
        """Thumbnail and view of a decoded image (``LoadedImage``: what was scored, orientation,
        colour and transparency handled)."""
        if self.has_image(key):
            return
        picture = Image.fromarray(image_pixels(image))
        view = _scaled(picture, _fit(picture.width, picture.height, VIEW))
        _save(view, self.view(key), quality=85)
        _save(_scaled(view, _fit(view.width, view.height, THUMB)), self.thumb(key), quality=80)

    def add_heatmap(
        self,
        key: str,
        image: Any,
        result: Any,
        *,
        kind: str,
        higher_is_better: bool,
        colours: tuple[float, float] | None = None,
    ) -> None:
        """The ``kind`` map of a scored pair over its distorted ``image`` (as decoded, at input
        resolution), coloured over ``colours`` (None: the map's own min..max), at the scale of the
        image's view; and its legend's facts beside it."""
        overlay = heatmap_at_input(
            image, result, kind=kind, higher_is_better=higher_is_better, value_range=colours, legend=False
        )
        _save(_scaled(overlay, _fit(image.width, image.height, VIEW)), self.heatmap(key), quality=88)
        facts = json.dumps(legend_facts(result, kind, colours), sort_keys=True)
        with atomic_write(self.legend(key)) as temporary:
            temporary.write_text(facts, encoding="utf-8")

    def add_pair(
        self,
        item: Any,
        ref_key: str | None,
        dist_key: str | None,
        heatmap_key: str | None,
        *,
        kind: str,
        higher_is_better: bool,
        colours: tuple[float, float] | None = None,
    ) -> None:
        """The pictures of a pair as ``pipeline.score_pairs`` gave it (a ``ScoredPair``): each decoded
        image's thumbnail and view and, when it was scored and its distorted image is at hand, its
        heatmap under ``heatmap_key``."""
        for key, image in ((ref_key, item.ref), (dist_key, item.dist)):
            if key is not None and image is not None:
                self.add_image(key, image)
        if item.result is not None and item.dist is not None and heatmap_key is not None:
            self.add_heatmap(
                heatmap_key,
                item.dist,
                item.result,
                kind=kind,
                higher_is_better=higher_is_better,
                colours=colours,
            )


def legend_facts(result: Any, kind: str, colours: tuple[float, float] | None) -> dict[str, Any]:
    """What a heatmap's legend says, as plain data: the colours' ends ``lo`` and ``hi`` (None when
    the map has no finite value), whether they are ``fixed`` (else the map's own min..max), how many
    patches lie ``beyond`` a fixed range, the ``sum`` of a product map (the image score), whether part
    of the image is ``unscored`` (the edge strip no patch covers, or a patch without a value), and
    the ``patches`` of the map."""
    values = result_map(result, kind)
    finite = values[np.isfinite(values)]
    if colours is not None:
        lo, hi = float(colours[0]), float(colours[1])
    elif finite.size:
        lo, hi = float(finite.min()), float(finite.max())
    else:
        lo = hi = None
    rows, cols = result.grid
    covered = rows * PATCH >= result.height and cols * PATCH >= result.width
    return {
        "lo": lo,
        "hi": hi,
        "fixed": colours is not None,
        "beyond": int(np.sum((finite < lo) | (finite > hi))) if colours is not None else 0,
        "sum": float(finite.sum()) if kind == "product" and finite.size else None,
        "unscored": not covered or finite.size < values.size,
        "patches": int(values.size),
    }


def _save(picture: Image.Image, path: Path, *, quality: int) -> None:
    with atomic_write(path) as temporary:
        picture.save(temporary, "JPEG", quality=quality)


def _save_png(picture: Image.Image, path: Path) -> None:
    with atomic_write(path) as temporary:
        picture.save(temporary, "PNG")
