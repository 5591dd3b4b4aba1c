"""Scoring engine: devices, precision, patch chunks of bounded memory, reference-branch reuse.

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

Prints nothing; the CLI decides what to show.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import DeviceError, ImageError, SizeMismatchError
from .model import RADN
from .tiling import grid_shape, patches_at
from .weights import LoadedWeights, WeightsInfo


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


def keep_freed_memory() -> bool:
    """Let this process reuse freed memory instead of returning it to the OS (Linux, glibc only).

    Scoring allocates and frees activations of tens of MiB per layer. By default glibc serves each
    with a fresh mmap and unmaps it on free, so every layer page-faults its output in again:
    measured on 2 CPU cores, a 288x288 pair in fp32 takes 0.60 s with the default and 0.51 s with
    this. The price is that the resident size stays near its peak until the process exits, which
    suits a command-line run; the CLI calls this, the library never does by itself. Returns whether
    the C library accepted the settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter is linked with
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold, limit = -1, -3, 1 << 30
    return bool(mallopt(m_mmap_threshold, limit)) and bool(mallopt(m_trim_threshold, limit))


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# patches per forward pass when none is given: the CPU gains nothing past a few hundred (and memory
# grows with it); a GPU needs thousands to be kept busy (about 2 GiB of activations in bf16)
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 2048}


def default_batch_size(device: torch.device) -> int:
    return DEFAULT_BATCH_SIZE.get(device.type, DEFAULT_BATCH_SIZE["cpu"])


def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN has real bf16 kernels on this CPU (AVX-512 or AMX, or Arm's bf16).

    Without them PyTorch falls back to reference code: measured on an AVX2-only 2-core AMD EPYC, a
    64-channel 3x3 convolution took 4.9 s in bf16 against 0.15 s in fp32 (32x slower).
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the check: judge by the vector ISA
        return torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX")


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A one-line warning when the precision asked for is much slower than fp32 on this device."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16_kernels():
        return (
            "this CPU has no bf16 kernels (they need AVX-512 or AMX), so bf16 runs many times slower "
            "than fp32 here; use --precision fp32"
        )
    return None


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'; DeviceError otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def check_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is for CUDA devices; use bf16 or fp32 on the CPU")
    return PRECISIONS[precision]


@contextlib.contextmanager
def exact_fp32(device: torch.device, dtype: torch.dtype):
    """fp32 means fp32 on CUDA too: cuDNN's TF32 convolutions (PyTorch's default, 10-bit mantissa
    products) are turned off while scoring in fp32, and the setting is restored afterwards. bf16 and
    fp16 are what to ask for when speed matters more."""
    if device.type != "cuda" or dtype != torch.float32:
        yield
        return
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


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

    Example:
        >>> scorer = Scorer(load_weights("weights.safetensors"))  # doctest: +SKIP
        >>> ref = scorer.encode_reference(ref_image)                # doctest: +SKIP
        >>> scorer.score(ref, dist_image).score                      # doctest: +SKIP
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
    def encode_references(self, images: Sequence[torch.Tensor]) -> list[ReferenceEncoding]:
        """Encode several references at once: their patches share forward passes of batch_size."""
        if not images:
            return []
        images, grids = self._prepare_all(images)
        counts = [rows * cols for rows, cols in grids]
        features: list[torch.Tensor | None] = [None] * len(images)
        offsets: list[torch.Tensor | None] = [None] * len(images)
        with exact_fp32(self.device, self.dtype):
            for segments, patches in self._patch_chunks(images, counts):
                feats, offs = self.encoder.encode_reference(patches)
                self._scatter(features, feats, segments, counts)
                if offs is not None:
                    self._scatter(offsets, offs, segments, counts)
        attended = self._per_image(self.model.attend_reference, features)
        return [
            ReferenceEncoding(int(image.shape[2]), int(image.shape[1]), grid, feats, offs)
            for image, grid, feats, offs in zip(images, grids, attended, offsets)
        ]

    def encode_reference(self, image: torch.Tensor) -> ReferenceEncoding:
        return self.encode_references([image])[0]

    @torch.inference_mode()
    def score_many(self, items: Sequence[tuple[ReferenceEncoding, torch.Tensor]]) -> list[PairScore]:
        """Score several (encoded reference, distorted image) pairs at once.

        The distorted patches of all pairs share forward passes of batch_size patches, and pairs of
        the same size share the attention and head calls: on a GPU this is what keeps the device
        busy with small images. Each pair's score equals its score from ``score`` to float rounding
        (the same operations on the same values, in other batches).
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
        with exact_fp32(self.device, self.dtype):
            for segments, patches in self._patch_chunks(images, counts):
                offsets = None
                if references[0].offsets is not None:
                    offsets = _concat([references[i].offsets[start:stop] for i, start, stop in segments])
                self._scatter(features, self.encoder.encode_distorted(patches, offsets), segments, counts)
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

    def score(self, reference: ReferenceEncoding, image: torch.Tensor) -> PairScore:
        return self.score_many([(reference, image)])[0]

    def score_pair(self, ref: torch.Tensor, dist: torch.Tensor) -> PairScore:
        return self.score(self.encode_reference(ref), dist)
