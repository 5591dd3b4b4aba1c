"""Scoring: a loaded model on a device, at a precision, scoring (reference, distorted) image pairs.

``Scorer`` is the one face of it (``radn_cli.load_scorer`` makes one from a weights file). A reference
is encoded once (``Scorer.encode_reference``) and any number of distorted images of its size are
scored against it (``Scorer.score``); ``score_many`` scores several pairs at once. How the work is
cut into pieces of bounded memory belongs to the architecture's engine:

* :mod:`.patches` (RADN, WResNet): chunks of ``batch_size`` 32x32 patches through the per-patch stages;
* :mod:`.tiles` (RADN-Lite): the trunk on overlapping tiles of about ``batch_size`` patches each
  (default: :data:`.tiles.DEFAULT_TILE_PATCHES`, a 2048-px tile on the CPU).

The network runs in the requested precision; the per-image stages (attention, heads, pooling) and
everything that turns features into a score always run in fp32, so scores stay comparable across
precisions. Devices and precisions are resolved by ``radn_cli.devices``. Prints nothing; the CLI
decides what to show (``progress`` callbacks report patches done and total).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..devices import check_precision, default_batch_size, resolve_device
from ..errors import DeviceError, ImageError, SizeMismatchError
from ..models import is_whole_image
from ..tiling import grid_shape
from ..weights import LoadedWeights, WeightsInfo, load_weights, resolve_weights
from .common import PairScore, ReferenceEncoding
from .patches import PatchEngine
from .tiles import TileEngine

Progress = Callable[[int, int], None]  # (patches done, patches in all)

__all__ = ["PairScore", "Progress", "ReferenceEncoding", "Scorer", "load_scorer"]


class Scorer:
    """A loaded model on a device, at a precision, scoring images given as [3, H, W] tensors in [0, 1].

    A reference encoded once serves any number of distorted images of its size:

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
        self.model = weights.model.to(self.device).eval()  # fp32: per-image stages
        if is_whole_image(self.model):
            self.engine = TileEngine(self.model, self.device, self.dtype, batch_size)
        else:
            self.engine = PatchEngine(self.model, self.device, self.dtype, self.batch_size)

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
        self, images: Sequence[torch.Tensor], *, progress: Progress | None = None
    ) -> list[ReferenceEncoding]:
        """Encode several references at once (their patches may share forward passes).

        ``progress(done, total)``, if given, is called after each chunk with the patches encoded so
        far and the patches of all ``images``."""
        if not images:
            return []
        images, grids = self._prepare_all(images)
        return self.engine.encode_references(images, grids, progress)

    def encode_reference(self, image: torch.Tensor, *, progress: Progress | None = None) -> ReferenceEncoding:
        return self.encode_references([image], progress=progress)[0]

    @torch.inference_mode()
    def score_many(
        self, items: Sequence[tuple[ReferenceEncoding, torch.Tensor]], *, progress: Progress | None = None
    ) -> list[PairScore]:
        """Score several (encoded reference, distorted image) pairs at once.

        Each pair's score equals its score from ``score`` to float rounding (the same operations on
        the same values, in other batches). ``progress(done, total)``, if given, is called after each
        chunk with the distorted patches scored so far and in all.
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
        return self.engine.score_many(references, images, progress)

    def score(
        self, reference: ReferenceEncoding, image: torch.Tensor, *, progress: Progress | None = None
    ) -> PairScore:
        return self.score_many([(reference, image)], progress=progress)[0]

    def score_pair(
        self, ref: torch.Tensor, dist: torch.Tensor, *, progress: Progress | None = None
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
    bf16 or fp16 (CUDA). ``batch_size``: patches per forward pass (RADN) or per trunk tile (RADN-Lite):
    memory, not the score.
    """
    resolved = resolve_weights(weights)
    return Scorer(load_weights(resolved.path), device=device, precision=precision, batch_size=batch_size)
