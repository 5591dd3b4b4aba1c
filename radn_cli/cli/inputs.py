"""Getting a command's inputs ready: files checked, outputs checked, images decoded, the model loaded.

Each step reports a bad input in one line before the next, more expensive, one runs: paths are
checked before PyTorch loads, images are decoded before the model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .console import ctrl_c_deferred, load_torch, note, warn
from .options import Precision, precision_name

if TYPE_CHECKING:
    from ..images import LoadedImage
    from ..scoring import Scorer


def check_inputs(*paths: Path) -> None:
    """Each input exists and is a readable, non-empty file (no PyTorch needed to say so)."""
    from ..paths import check_input

    for path in paths:
        check_input(path)


def check_outputs(*paths: Path | None) -> None:
    """Refuse an output that cannot be written (missing or read-only folder) before any work is done."""
    from ..results import check_writable

    for path in paths:
        if path is not None:
            check_writable(path)


def print_notes(image: LoadedImage) -> None:
    for line in image.notes:
        note(f"radn: note: {image.path}: {line}")


def load_checked(path: Path) -> LoadedImage:
    """Decode an image (and check that it holds at least one patch), printing its notes."""
    load_torch()
    from ..images import check_pair, load_image

    image = load_image(path)
    check_pair(image, image, ref_path=path, dist_path=path)
    print_notes(image)
    return image


def load_pair(ref: Path, dist: Path) -> tuple[LoadedImage, LoadedImage]:
    load_torch()
    from ..images import check_pair, load_image

    ref_image = load_image(ref)
    dist_image = load_image(dist)
    check_pair(ref_image, dist_image, ref_path=ref, dist_path=dist)
    print_notes(ref_image)
    print_notes(dist_image)
    return ref_image, dist_image


def make_scorer(
    weights: Path | None, device: str, precision: Precision | str, batch_size: int | None
) -> Scorer:
    """The library's ``load_scorer``, with Ctrl-C held while it loads and the CLI's memory setting;
    warns when the precision is slow on this device."""
    with ctrl_c_deferred():
        from .. import load_scorer
        from ..devices import keep_freed_memory, precision_warning

        keep_freed_memory()
        scorer = load_scorer(
            weights, device=device, precision=precision_name(precision), batch_size=batch_size
        )
        if scorer.device.type == "cuda":
            import torchvision.ops  # noqa: F401  (the deformable kernel; imported on first use otherwise)
    warn(precision_warning(scorer.precision, scorer.device))
    return scorer
