"""Who scores the pairs of a ``radn batch``: this process, or a cluster.

The default is this process: :func:`radn_cli.pipeline.score_pairs` on one :class:`~radn_cli.Scorer`.
Another engine (:class:`.ray_engine.RayEngine`: an actor pool on a Ray cluster) implements
:class:`Engine` and hands ``run_batch`` the same :class:`~radn_cli.pipeline.ScoredPair` items, so the
CSV, ``--resume``, the output lock, Ctrl-C and error rows stay the batch's business, in one place
(:mod:`radn_cli.batch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..pairing import Pair
    from ..pipeline import ScoredPair


class Engine(Protocol):
    """Scores pairs somewhere else and streams the results back."""

    weights_id: str  # the weights' identity, written in every row
    precision: str  # fp32, bf16 or fp16, written in every row

    def score(self, pairs: list[Pair]) -> Iterator[ScoredPair]:
        """Each pair once, in the order given, as a ScoredPair with its ``result`` (patch scores and
        weights; images not needed) or its one-line ``error``. Closing the iterator (or Ctrl-C while
        it runs) stops the work and releases what it started."""
        ...
