"""Scoring engine: patch chunks of bounded memory, reference-branch reuse, several pairs per pass.

The reference branch (trunk, offsets, deform2, tail, attention) does not depend on the distorted image,
so a reference is encoded once (``Scorer.encode_reference``) and any number of distorted images of
the same size are scored against it (``Scorer.score``). Per-patch stages run in chunks of
``batch_size`` patches; only the patch attention and the heads see all N patches of an image, as
512-d vectors. The per-patch stages run in the requested precision (a cast copy of the model, in the
memory layouts that are fastest on the device); the deformable step's sampling positions and
weights, the attention, the heads and the pooling always run in fp32, so scores stay comparable
across precisions.

Several pairs can be scored at once (``Scorer.encode_references``, ``Scorer.score_many``): their
patches then share forward passes (a chunk may span images) and pairs of one size share the
attention and head calls. That is what keeps a GPU busy with small images; on the CPU it gains
nothing measurable.

Devices and precisions are resolved by ``devices``. Prints nothing; the CLI decides what to show.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .devices import check_precision, default_batch_size, exact_fp32, resolve_device
from .errors import DeviceError, ImageError, SizeMismatchError
from .model import RADN
from .tiling import grid_shape, patches_at
from .weights import LoadedWeights, WeightsInfo

PatchProgress = Callable[[int, int], None]  # (patches done, patches in the call), after each chunk


def _layouts(device: torch.device) -> tuple[torch.memory_format, torch.memory_format]:
    """Memory formats of the trunk and the tail (RADN.use_layout): the fastest measured per device.

    oneDNN (CPU): channels-last for the trunk (32x32 to 8x8 maps; conv1 is 12x faster), contiguous
    for the tail (4x4 and 2x2 maps with 512 channels: 1.7x faster in bf16, 1.1x in fp32). cuDNN:
    channels-last throughout.
    """
    if device.type == "cpu":
        return torch.channels_last, torch.contiguous_format
    return torch.channels_last, torch.channels_last


def _same_size_groups(sizes: Sequence[int]) -> list[list[int]]:
    """Indices grouped by equal size, in order of first appearance: [81, 12, 81] -> [[0, 2], [1]]."""
    groups: dict[int, list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    return list(groups.values())


def _concat(pieces: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat, without a copy for a single piece (the chunk of a single image)."""
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def _buffer(chunk: torch.Tensor, n: int) -> torch.Tensor:
    """An empty fp32 (n, ...) tensor for the per-patch outputs of which ``chunk`` is the first chunk."""
    return torch.empty((n, *chunk.shape[1:]), dtype=torch.float32, device=chunk.device)


@dataclass(frozen=True)
class ReferenceEncoding:
    """What the distorted branch needs from a reference image."""

    width: int
    height: int
    grid: tuple[int, int]
    features: torch.Tensor  # (N, 512) fp32, after the reference attention
    offsets: torch.Tensor | None  # (N, 18, 8, 8) fp32; None without the deformable step


@dataclass(frozen=True)
class PairScore:
    score: float
    patch_scores: torch.Tensor  # (rows, cols) fp32, CPU
    patch_weights: torch.Tensor  # (rows, cols) fp32, CPU
    grid: tuple[int, int]
    width: int
    height: int

    @property
    def patches(self) -> int:
        return self.grid[0] * self.grid[1]


class Scorer:
    """A loaded model on a device, at a precision, scoring images given as [3, H, W] tensors in [0, 1].

    ``radn_cli.load_scorer`` makes one from a weights file. A reference encoded once serves any
    number of distorted images of its size:

        >>> from radn_cli import load_image, load_scorer
        >>> scorer = load_scorer(device="cpu")
        >>> ref = load_image("examples/ref.png").tensor
        >>> encoded = scorer.encode_reference(ref)
        >>> dist = load_image("examples/dist.png").tensor
        >>> results = [scorer.score(encoded, image) for image in (ref, dist)]
        >>> results[0].score > results[1].score  # the reference itself beats its distorted version
        True
        >>> results[1].grid, results[1].patch_weights.shape  # rows x columns of 32x32 patches
        ((12, 16), torch.Size([12, 16]))
    """

    def __init__(
        self,
        weights: LoadedWeights,
        *,
        device: str = "auto",
        precision: str = "fp32",
        batch_size: int | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise DeviceError(f"batch size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        self.precision = precision
        self.dtype = check_precision(precision, self.device)
        self.batch_size = batch_size or default_batch_size(self.device)
        self.info: WeightsInfo = weights.info
        # fp32 model: patch attention, heads and pooling (all N patches of an image, 512-d vectors)
        self.model: RADN = weights.model.to(self.device).eval()
        # per-patch stages (trunk, offsets, deformable step, tail) in the requested precision: a cast
        # copy rather than autocast, which would re-cast every weight on every call
        self.encoder: RADN = self.model if self.dtype == torch.float32 else copy.deepcopy(self.model)
        self.encoder.to(self.dtype).use_layout(*_layouts(self.device))

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
        for group in _same_size_groups([f.shape[0] for f in features]):
            for i, value in zip(group, stage(torch.stack([features[i] for i in group])).unbind(0)):
                out[i] = value
        return out

    def _prepare_all(
        self, images: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
        prepared, grids = [], []
        for image in images:
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f"expected an image tensor [3, H, W], got {tuple(image.shape)}")
            grid = grid_shape(*image.shape[1:])
            if grid[0] * grid[1] == 0:
                raise ImageError(
                    f"image of {image.shape[2]}x{image.shape[1]} pixels is smaller than one 32x32 patch"
                )
            prepared.append(image.to(self.device, torch.float32, non_blocking=True))
            grids.append(grid)
        return prepared, grids

    @torch.inference_mode()
    def encode_references(
        self, images: Sequence[torch.Tensor], *, progress: PatchProgress | None = None
    ) -> list[ReferenceEncoding]:
        """Encode several references at once: their patches share forward passes of batch_size.

        ``progress(done, total)``, if given, is called after each chunk with the patches encoded so
        far and the patches of all ``images``."""
        if not images:
            return []
        images, grids = self._prepare_all(images)
        counts = [rows * cols for rows, cols in grids]
        features: list[torch.Tensor | None] = [None] * len(images)
        offsets: list[torch.Tensor | None] = [None] * len(images)
        done, total = 0, sum(counts)
        with exact_fp32(self.device, self.dtype):
            for segments, patches in self._patch_chunks(images, counts):
                feats, offs = self.encoder.encode_reference(patches)
                self._scatter(features, feats, segments, counts)
                if offs is not None:
                    self._scatter(offsets, offs, segments, counts)
                if progress is not None:
                    done += patches.shape[0]
                    progress(done, total)
        attended = self._per_image(self.model.attend_reference, features)
        return [
            ReferenceEncoding(int(image.shape[2]), int(image.shape[1]), grid, feats, offs)
            for image, grid, feats, offs in zip(images, grids, attended, offsets)
        ]

    def encode_reference(
        self, image: torch.Tensor, *, progress: PatchProgress | None = None
    ) -> ReferenceEncoding:
        return self.encode_references([image], progress=progress)[0]

    @torch.inference_mode()
    def score_many(
        self,
        items: Sequence[tuple[ReferenceEncoding, torch.Tensor]],
        *,
        progress: PatchProgress | None = None,
    ) -> list[PairScore]:
        """Score several (encoded reference, distorted image) pairs at once.

        The distorted patches of all pairs share forward passes of batch_size patches, and pairs of
        the same size share the attention and head calls: on a GPU this is what keeps the device
        busy with small images. Each pair's score equals its score from ``score`` to float rounding
        (the same operations on the same values, in other batches). ``progress(done, total)``, if
        given, is called after each chunk with the distorted patches encoded so far and in all.
        """
        if not items:
            return []
        references = [reference for reference, _ in items]
        images, _ = self._prepare_all([image for _, image in items])
        for reference, image in zip(references, images):
            height, width = image.shape[1:]
            if (width, height) != (reference.width, reference.height):
                raise SizeMismatchError(
                    f"reference is {reference.width}x{reference.height} but distorted is {width}x{height}"
                )
        counts = [r.grid[0] * r.grid[1] for r in references]
        features: list[torch.Tensor | None] = [None] * len(images)
        done, total = 0, sum(counts)
        with exact_fp32(self.device, self.dtype):
            for segments, patches in self._patch_chunks(images, counts):
                offsets = None
                if references[0].offsets is not None:
                    offsets = _concat([references[i].offsets[start:stop] for i, start, stop in segments])
                self._scatter(features, self.encoder.encode_distorted(patches, offsets), segments, counts)
                if progress is not None:
                    done += patches.shape[0]
                    progress(done, total)
        attended = self._per_image(self.model.attend_distorted, features)
        results: list[PairScore | None] = [None] * len(items)
        for group in _same_size_groups(counts):
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

    def score(
        self, reference: ReferenceEncoding, image: torch.Tensor, *, progress: PatchProgress | None = None
    ) -> PairScore:
        return self.score_many([(reference, image)], progress=progress)[0]

    def score_pair(
        self, ref: torch.Tensor, dist: torch.Tensor, *, progress: PatchProgress | None = None
    ) -> PairScore:
        """Encode ``ref`` and score ``dist`` against it; ``progress(done, total)`` counts the patches
        of both images."""
        if progress is None:
            return self.score(self.encode_reference(ref), dist)
        # both images have the same patches (else score raises): each call's total is half of it
        encoded = self.encode_reference(ref, progress=lambda done, total: progress(done, 2 * total))
        return self.score(encoded, dist, progress=lambda done, total: progress(total + done, 2 * total))


def load_scorer(
    weights: str | Path | None = None,
    *,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | None = None,
) -> Scorer:
    """A ready Scorer: ``weights`` as given, else ``$RADN_WEIGHTS``, the user's installed weights or
    the shipped ones (``radn weights list`` shows the order); checksum verified.

    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. ``precision``: fp32,
    bf16 or fp16 (CUDA). ``batch_size``: patches per forward pass (memory, not the score).
    """
    from .weights import load_weights, resolve_weights

    resolved = resolve_weights(weights)
    return Scorer(load_weights(resolved.path), device=device, precision=precision, batch_size=batch_size)
