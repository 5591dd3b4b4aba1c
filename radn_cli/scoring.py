"""Scoring engine: devices, precision, patch chunks of bounded memory, reference-branch reuse.

The reference branch (trunk, offsets, deform2, tail, attention) does not depend on the distorted image,
so a reference is encoded once (``Scorer.encode_reference``) and any number of distorted images of
the same size are scored against it (``Scorer.score``). Per-patch stages run in chunks of
``batch_size`` patches; only the patch attention and the heads see all N patches of an image, as
512-d vectors. The per-patch stages run in the requested precision (a cast copy of the model, in the
memory layouts that are fastest on the device); the deformable step's sampling positions and
weights, the attention, the heads and the pooling always run in fp32, so scores stay comparable
across precisions.

Prints nothing; the CLI decides what to show.
"""

from __future__ import annotations

import copy
import ctypes
import sys
from dataclasses import dataclass

import torch

from .errors import DeviceError, SizeMismatchError
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
DEFAULT_BATCH_SIZE = 256


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
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise DeviceError(f"batch size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        self.precision = precision
        self.dtype = check_precision(precision, self.device)
        self.batch_size = batch_size
        self.info: WeightsInfo = weights.info
        # fp32 model: patch attention, heads and pooling (all N patches of an image, 512-d vectors)
        self.model: RADN = weights.model.to(self.device).eval()
        # per-patch stages (trunk, offsets, deformable step, tail) in the requested precision: a cast
        # copy rather than autocast, which would re-cast every weight on every call
        self.encoder: RADN = self.model if self.dtype == torch.float32 else copy.deepcopy(self.model)
        self.encoder.to(self.dtype).use_layout(*_layouts(self.device))

    def _chunks(self, image: torch.Tensor, n: int):
        """(start, stop, patches) for consecutive chunks of at most batch_size patches."""
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            yield start, stop, patches_at(image, start, stop).to(self.dtype)

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an image tensor [3, H, W], got {tuple(image.shape)}")
        return image.to(self.device, torch.float32, non_blocking=True)

    @torch.inference_mode()
    def encode_reference(self, image: torch.Tensor) -> ReferenceEncoding:
        image = self._prepare(image)
        height, width = image.shape[1:]
        grid = grid_shape(height, width)
        n = grid[0] * grid[1]
        features = offsets = None  # fp32 (N, ...) buffers filled chunk by chunk: no list + cat copy
        for start, stop, patches in self._chunks(image, n):
            feats, offs = self.encoder.encode_reference(patches)
            if features is None:
                features = _buffer(feats, n)
                offsets = None if offs is None else _buffer(offs, n)
            features[start:stop] = feats
            if offsets is not None:
                offsets[start:stop] = offs
        attended = self.model.attend_reference(features[None])[0]
        return ReferenceEncoding(width, height, grid, attended, offsets)

    @torch.inference_mode()
    def score(self, reference: ReferenceEncoding, image: torch.Tensor) -> PairScore:
        image = self._prepare(image)
        height, width = image.shape[1:]
        if (width, height) != (reference.width, reference.height):
            raise SizeMismatchError(
                f"reference is {reference.width}x{reference.height} but distorted is {width}x{height}"
            )
        n = reference.grid[0] * reference.grid[1]
        features = None
        for start, stop, patches in self._chunks(image, n):
            offsets = None if reference.offsets is None else reference.offsets[start:stop]
            feats = self.encoder.encode_distorted(patches, offsets)
            if features is None:
                features = _buffer(feats, n)
            features[start:stop] = feats
        attended = self.model.attend_distorted(features[None])[0]
        scores, weights = self.model.head(attended, reference.features)
        score = self.model.pool(scores, weights)
        return PairScore(
            score=float(score),
            patch_scores=scores.unflatten(0, reference.grid).cpu(),
            patch_weights=weights.unflatten(0, reference.grid).cpu(),
            grid=reference.grid,
            width=width,
            height=height,
        )

    def score_pair(self, ref: torch.Tensor, dist: torch.Tensor) -> PairScore:
        return self.score(self.encode_reference(ref), dist)
