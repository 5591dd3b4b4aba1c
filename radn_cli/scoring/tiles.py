"""The RADN-Lite scoring engine: the trunk over overlapping tiles, per-patch statistics stitched.

RADN-Lite's trunk is fully convolutional and runs on the whole image; what the rest of the network
sees are per-patch statistics on the grid of 32x32 patches (:mod:`radn_cli.models.lite`). An image of
any size is therefore cut into tiles of about ``batch_size`` patches (a square of whole patches, the
"core"; by default 64x64 patches on the CPU, so images up to 2048 px are one tile), each run through
the trunk with a margin of ``HALO`` pixels of the image around it (cut at the image's edges, where the
untiled trunk pads as well); the statistics of the core's patches are kept and the margin's thrown
away. Every tile starts on the patch grid, so the trunk's strided maps line up with the untiled ones.
The deepest taps see far (a 128-px margin moved a 1536x1152 pair's score by 5e-3, 384 px by 1.2e-4,
measured with trained weights and 512-px cores), so the margin is 512 px: the scores equal the
untiled ones to within 1e-4. Memory is bounded by the tile, whatever the image size.

A reference is encoded once: its per-patch statistics, embedded and attended over all its patches.
When the whole image is one tile, its trunk features are kept with the encoding, so scoring a
distorted image runs the trunk once; for larger images the reference's tiles are run again beside
the distorted ones (memory stays bounded; twice the trunk work).

The trunk, the offsets and the deformable step run in the requested precision (a cast copy with the
batch norms folded into the convolutions); the statistics, the attention, the heads and the pooling
in fp32.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from ..constants import PATCH
from ..devices import exact_fp32
from ..models.efficientnet_lite import fold_batchnorm
from ..models.lite import BRANCH_IN, DEFORM_TAP, RADNLite, branch_stats, compare_stats
from .common import PairScore, ReferenceEncoding

HALO = 512  # pixels of image context around each tile's core (a multiple of 32)
# patches in a tile's core when --batch-size is not given: 64x64 patches (2048 px) on the CPU
DEFAULT_TILE_PATCHES = {"cpu": 64 * 64, "cuda": 128 * 128}


@dataclass(frozen=True)
class Tile:
    rows: tuple[int, int]  # core: patch rows [start, stop)
    cols: tuple[int, int]  # core: patch columns [start, stop)
    box: tuple[int, int, int, int]  # pixels run through the trunk: top, bottom, left, right

    def core(self, stats: torch.Tensor, cols: int) -> torch.Tensor:
        """The core's patches of a tile's statistics (1, rows * cols, C) -> (core patches, C)."""
        top, left = (
            (self.rows[0] * PATCH - self.box[0]) // PATCH,
            (self.cols[0] * PATCH - self.box[2]) // PATCH,
        )
        grid = stats[0].unflatten(0, (-1, cols))
        return grid[top : top + self.rows[1] - self.rows[0], left : left + self.cols[1] - self.cols[0]]


def plan_tiles(height: int, width: int, patches: int, halo: int | None = None) -> list[Tile]:
    """Tiles of at most about ``patches`` patches covering the patch grid of an image, row-major,
    each with ``halo`` (default ``HALO``) pixels of context."""
    halo = HALO if halo is None else halo
    rows, cols = height // PATCH, width // PATCH
    side = max(1, math.isqrt(patches))
    tiles = []
    for r in range(0, rows, side):
        for c in range(0, cols, side):
            r1, c1 = min(rows, r + side), min(cols, c + side)
            box = (
                max(0, r * PATCH - halo),
                height if r1 == rows else min(height, r1 * PATCH + halo),
                max(0, c * PATCH - halo),
                width if c1 == cols else min(width, c1 * PATCH + halo),
            )
            tiles.append(Tile((r, r1), (c, c1), box))
    return tiles


def _cut(image: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    top, bottom, left, right = box
    return image[None, :, top:bottom, left:right]


class TileEngine:
    """Scores with a RADN-Lite model over tiles (module doc); used through ``radn_cli.scoring.Scorer``."""

    def __init__(
        self, model: RADNLite, device: torch.device, dtype: torch.dtype, batch_size: int | None
    ) -> None:
        self.device, self.dtype = device, dtype
        self.batch_size = batch_size or DEFAULT_TILE_PATCHES.get(device.type, DEFAULT_TILE_PATCHES["cuda"])
        self.model = model  # fp32: statistics, attention, heads, pooling
        self.encoder = copy.deepcopy(model)
        fold_batchnorm(self.encoder.trunk)
        self.encoder.to(dtype)
        self.encoder.trunk.to(memory_format=torch.channels_last)

    def _features(self, image: torch.Tensor, tile: Tile):
        """A tile's pixels (1, 3, h, w) fp32 and its trunk taps in the engine's precision."""
        pixels = _cut(image, tile.box)
        taps = self.encoder.taps(pixels.to(self.dtype).contiguous(memory_format=torch.channels_last))
        return pixels, taps

    def _reference_tile(self, image: torch.Tensor, tile: Tile):
        pixels, taps = self._features(image, tile)
        offsets = self.encoder.offsets(taps)
        deformed = taps
        if offsets is not None:
            deformed = list(taps)
            deformed[DEFORM_TAP] = self.encoder.deform_reference(taps[DEFORM_TAP], offsets)
        return pixels, taps, offsets, deformed

    def encode_references(self, images, grids, progress=None) -> list[ReferenceEncoding]:
        out = []
        done, total = 0, sum(r * c for r, c in grids)
        with exact_fp32(self.device, self.dtype):
            for image, grid in zip(images, grids):
                tiles = plan_tiles(image.shape[1], image.shape[2], self.batch_size)
                stats = torch.empty(grid[0], grid[1], BRANCH_IN, device=self.device)
                kept = None
                for tile in tiles:
                    pixels, taps, offsets, deformed = self._reference_tile(image, tile)
                    rows, cols = pixels.shape[2] // PATCH, pixels.shape[3] // PATCH
                    stats[slice(*tile.rows), slice(*tile.cols)] = tile.core(
                        branch_stats(pixels, deformed, rows, cols), cols
                    )
                    if len(tiles) == 1:
                        kept = (pixels, taps, offsets, deformed)
                    done += (tile.rows[1] - tile.rows[0]) * (tile.cols[1] - tile.cols[0])
                    if progress is not None:
                        progress(done, total)
                features = self.model.embed_reference(stats.flatten(0, 1)[None])[0]
                state = {"image": image, "tiles": tiles, "kept": kept}
                out.append(
                    ReferenceEncoding(int(image.shape[2]), int(image.shape[1]), grid, features, None, state)
                )
        return out

    def _score_one(self, reference: ReferenceEncoding, image: torch.Tensor, report) -> PairScore:
        state = reference.engine_state
        rows_all, cols_all = reference.grid
        dist_stats = torch.empty(rows_all, cols_all, BRANCH_IN, device=self.device)
        texture = self.model.config.texture
        compare = torch.empty(rows_all, cols_all, self.model.config.compare_in, device=self.device)
        for tile in state["tiles"]:
            kept = state["kept"] or self._reference_tile(state["image"], tile)
            ref_pixels, ref_taps, offsets, ref_deformed = kept
            pixels, taps = self._features(image, tile)
            if offsets is not None:
                taps = list(taps)
                taps[DEFORM_TAP] = self.encoder.deform_distorted(taps[DEFORM_TAP], offsets)
            rows, cols = pixels.shape[2] // PATCH, pixels.shape[3] // PATCH
            where = slice(*tile.rows), slice(*tile.cols)
            dist_stats[where] = tile.core(branch_stats(pixels, taps, rows, cols), cols)
            compare[where] = tile.core(
                compare_stats(ref_pixels, pixels, ref_deformed, taps, rows, cols, texture), cols
            )
            report((tile.rows[1] - tile.rows[0]) * (tile.cols[1] - tile.cols[0]))
        dist = self.model.embed_distorted(dist_stats.flatten(0, 1)[None])
        scores, weights = self.model.head(reference.features[None], dist, compare.flatten(0, 1)[None])
        pooled = float(self.model.pool(scores, weights)[0])
        grid = reference.grid
        return PairScore(
            score=pooled,
            patch_scores=scores[0].cpu().unflatten(0, grid),
            patch_weights=weights[0].cpu().unflatten(0, grid),
            grid=grid,
            width=reference.width,
            height=reference.height,
        )

    def score_many(self, references, images, progress=None) -> list[PairScore]:
        total = sum(r.grid[0] * r.grid[1] for r in references)
        done = 0

        def report(patches: int) -> None:
            nonlocal done
            done += patches
            if progress is not None:
                progress(done, total)

        with exact_fp32(self.device, self.dtype):
            return [self._score_one(r, image, report) for r, image in zip(references, images)]
