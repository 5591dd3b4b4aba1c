"""The RADN / WResNet scoring engine: patch chunks of bounded memory, reference-branch reuse, several
pairs per pass.

The reference branch (trunk, offsets, deform2, tail, attention) does not depend on the distorted image,
so a reference is encoded once and any number of distorted images of the same size are scored
against it. Per-patch stages run in chunks of ``batch_size`` patches; only the patch attention and the
heads see all N patches of an image, as 512-d vectors. The per-patch stages run in the requested
precision (a cast copy of the model, in the memory layouts that are fastest on the device); the
deformable step's sampling positions and weights, the attention, the heads and the pooling always run
in fp32.

Several pairs can be scored at once: their patches then share forward passes (a chunk may span
images) and pairs of one size share the attention and head calls. That is what keeps a GPU busy with
small images; on the CPU it gains nothing measurable.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from ..devices import exact_fp32
from ..models.radn import RADN
from ..tiling import patches_at
from .common import PairScore, ReferenceEncoding, same_size_groups


def _layouts(device: torch.device) -> tuple[torch.memory_format, torch.memory_format]:
    """Memory formats of the trunk and the tail (RADN.use_layout): the fastest measured per device.

    oneDNN (CPU): channels-last for the trunk (32x32 to 8x8 maps; conv1 is 12x faster), contiguous
    for the tail (4x4 and 2x2 maps with 512 channels: 1.7x faster in bf16, 1.1x in fp32). cuDNN:
    channels-last throughout.
    """
    if device.type == "cpu":
        return torch.channels_last, torch.contiguous_format
    return torch.channels_last, torch.channels_last


def _concat(pieces: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat, without a copy for a single piece (the chunk of a single image)."""
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def _buffer(chunk: torch.Tensor, n: int) -> torch.Tensor:
    """An empty fp32 (n, ...) tensor for the per-patch outputs of which ``chunk`` is the first chunk."""
    return torch.empty((n, *chunk.shape[1:]), dtype=torch.float32, device=chunk.device)


class PatchEngine:
    """Scores with a RADN model on 32x32 patches (module doc); used through ``radn_cli.scoring.Scorer``."""

    def __init__(self, model: RADN, device: torch.device, dtype: torch.dtype, batch_size: int) -> None:
        self.device, self.dtype, self.batch_size = device, dtype, batch_size
        self.model = model  # fp32: patch attention, heads and pooling
        # per-patch stages (trunk, offsets, deformable step, tail) in the requested precision: a cast
        # copy rather than autocast, which would re-cast every weight on every call
        self.encoder: RADN = model if dtype == torch.float32 else copy.deepcopy(model)
        self.encoder.to(dtype).use_layout(*_layouts(device))

    def _patch_chunks(self, images: Sequence[torch.Tensor], counts: Sequence[int]):
        """Consecutive chunks of at most batch_size patches, running through the images in order.

        Yields (segments, patches): segments are (image index, start, stop) in chunk order. A chunk
        of one image is cut from it without a copy of the rest, so large images stay bounded in
        memory; a chunk that spans several small images holds their patches one after another.
        """
        segments: list[tuple[int, int, int]] = []
        size = 0
        for index, n in enumerate(counts):
            start = 0
            while start < n:
                stop = min(n, start + self.batch_size - size)
                segments.append((index, start, stop))
                size += stop - start
                start = stop
                if size == self.batch_size:
                    yield segments, self._gather(images, segments)
                    segments, size = [], 0
        if segments:
            yield segments, self._gather(images, segments)

    def _gather(self, images: Sequence[torch.Tensor], segments: list[tuple[int, int, int]]) -> torch.Tensor:
        return _concat([patches_at(images[i], start, stop) for i, start, stop in segments]).to(self.dtype)

    @staticmethod
    def _scatter(
        buffers: list[torch.Tensor | None], values: torch.Tensor, segments, counts: Sequence[int]
    ) -> None:
        """Copy a chunk's per-patch outputs into each image's fp32 (N, ...) buffer (made on first use)."""
        at = 0
        for i, start, stop in segments:
            if buffers[i] is None:
                buffers[i] = _buffer(values, counts[i])
            buffers[i][start:stop] = values[at : at + stop - start]
            at += stop - start

    @staticmethod
    def _per_image(stage, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """A per-image stage (attention) over each image's (N, 512) features; images with the same N
        go through it together, as one (B, N, 512) batch."""
        out: list[torch.Tensor | None] = [None] * len(features)
        for group in same_size_groups([f.shape[0] for f in features]):
            for i, value in zip(group, stage(torch.stack([features[i] for i in group])).unbind(0)):
                out[i] = value
        return out

    def encode_references(self, images, grids, progress=None) -> list[ReferenceEncoding]:
        """Encode several references at once: their patches share forward passes of batch_size."""
        counts = [rows * cols for rows, cols in grids]
        features: list[torch.Tensor | None] = [None] * len(images)
        offsets: list[torch.Tensor | None] = [None] * len(images)
        with exact_fp32(self.device, self.dtype):
            for segments, patches in self._patch_chunks(images, counts):
                feats, offs = self.encoder.encode_reference(patches)
                self._scatter(features, feats, segments, counts)
                if offs is not None:
                    self._scatter(offsets, offs, segments, counts)
                _report(progress, segments, counts)
        attended = self._per_image(self.model.attend_reference, features)
        return [
            ReferenceEncoding(int(image.shape[2]), int(image.shape[1]), grid, feats, offs)
            for image, grid, feats, offs in zip(images, grids, attended, offsets)
        ]

    def score_many(self, references, images, progress=None) -> list[PairScore]:
        """Score pairs: the distorted patches of all pairs share forward passes of batch_size patches,
        and pairs of the same size share the attention and head calls."""
        counts = [r.grid[0] * r.grid[1] for r in references]
        features: list[torch.Tensor | None] = [None] * len(images)
        with exact_fp32(self.device, self.dtype):
            for segments, patches in self._patch_chunks(images, counts):
                offsets = None
                if references[0].offsets is not None:
                    offsets = _concat([references[i].offsets[start:stop] for i, start, stop in segments])
                self._scatter(features, self.encoder.encode_distorted(patches, offsets), segments, counts)
                _report(progress, segments, counts)
        attended = self._per_image(self.model.attend_distorted, features)
        results: list[PairScore | None] = [None] * len(images)
        for group in same_size_groups(counts):
            dist = torch.stack([attended[i] for i in group])
            ref = torch.stack([references[i].features for i in group])
            scores, weights = self.model.head(dist, ref)  # (B, N)
            pooled = self.model.pool(scores, weights).cpu().tolist()
            scores, weights = scores.cpu(), weights.cpu()
            for row, i in enumerate(group):
                grid = references[i].grid
                results[i] = PairScore(
                    score=pooled[row],
                    patch_scores=scores[row].unflatten(0, grid),
                    patch_weights=weights[row].unflatten(0, grid),
                    grid=grid,
                    width=references[i].width,
                    height=references[i].height,
                )
        return results


def _report(progress, segments, counts) -> None:
    """Tell ``progress`` how far the chunks have come: (patches done, patches in all)."""
    if progress is not None:
        index, _, stop = segments[-1]
        progress(sum(counts[:index]) + stop, sum(counts))
