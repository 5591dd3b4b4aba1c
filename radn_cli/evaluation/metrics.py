"""The metrics of `radn eval`, one row each, in the order they are shown.

RADN is the model's own score of a pair; the classical metrics are functions of the two decoded
images in :mod:`.classical`, named here and called as ``f(ref, dist, channels="rgb")``. This module
imports nothing heavy, so the CLI checks ``--metric`` before PyTorch loads. A new metric is its
function in ``classical`` and its row here.

    >>> [name for name, metric in METRICS.items() if not metric.model]
    ['psnr', 'ssim', 'ms-ssim']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # as --metric takes it
    function: str | None = None  # its function in ``evaluation.classical``; None: RADN's score
    higher_is_better: bool = True  # of a classical metric; RADN's follows the weights

    @property
    def model(self) -> bool:
        """The metric is RADN itself: it needs a Scorer, and its direction is that of the weights."""
        return self.function is None


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("radn"),
        Metric("psnr", "psnr"),
        Metric("ssim", "ssim"),
        Metric("ms-ssim", "ms_ssim"),
    )
}
