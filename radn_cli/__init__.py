"""radn: full-reference perceptual image quality with RADN (Region-Adaptive Deformable Network).

The library face: load a scorer once, then score pairs of images (``[3, H, W]`` tensors in [0, 1],
as ``load_image`` gives them). Higher is better with the shipped weights (the weights' metadata
says: ``scorer.info.higher_is_better``).

    >>> import radn_cli
    >>> scorer = radn_cli.load_scorer(device="cpu", precision="fp32")
    >>> ref = radn_cli.load_image("examples/ref.png")
    >>> dist = radn_cli.load_image("examples/dist.png")
    >>> result = scorer.score_pair(ref.tensor, dist.tensor)
    >>> result.patches, result.width, result.height
    (192, 512, 384)
    >>> scorer.info.higher_is_better
    True

Many pairs, decoded ahead in threads, each reference encoded once (``radn batch`` runs on this):

    >>> from radn_cli.pairing import Pair
    >>> pairs = [Pair("examples/ref.png", "examples/dist.png"), Pair("examples/ref.png", "missing.png")]
    >>> for item in radn_cli.score_pairs(scorer, pairs):
    ...     print(item.pair.dist, "error" if item.error else "scored")
    examples/dist.png scored
    missing.png error

The names below are imported on first use, so that ``import radn_cli`` (and ``radn --help``) do not
load PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_names

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Scorer": ".scoring",
    "PairScore": ".scoring",
    "load_scorer": ".scoring",
    "load_image": ".images",
    "LoadedImage": ".images",
    "load_weights": ".weights",
    "score_pairs": ".pipeline",
    "ScoredPair": ".pipeline",
}

__all__ = [
    "LoadedImage",
    "PairScore",
    "ScoredPair",
    "Scorer",
    "__version__",
    "load_image",
    "load_scorer",
    "load_weights",
    "score_pairs",
]

if TYPE_CHECKING:
    from .images import LoadedImage, load_image
    from .pipeline import ScoredPair, score_pairs
    from .scoring import PairScore, Scorer, load_scorer
    from .weights import load_weights


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
