"""Scoring many pairs into a crash-safe CSV (``results.ResultsWriter``) with ``pipeline.score_pairs``.

Owns what a batch adds to the pipeline: skipping pairs already scored (``--resume``: with the same
weights, precision and viewing scale), one CSV row per pair, counts, and, once a resumed run is
complete, its rows put back in the input order (``ResultsWriter.put_in_order``). A bad pair gets its
error in its row and the run goes on. Ctrl-C stops after the pairs in flight (one on the CPU, one
group on a GPU); every finished row is on disk. Prints nothing itself: progress goes to a
``progress.Progress`` (one stage, "scoring", and each failed pair) and, within the pairs being
scored, to ``patches`` (``pipeline.StepProgress``); ``on_item`` gets each pair as the pipeline gave
it (images, per-patch result or error), after its row is written. The pairs are scored in this
process, or by an ``engine`` (:mod:`radn_cli.engines`: a Ray cluster) that streams the same items
back; the rows, their guarantees and the counts stay here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .engines import Engine
from .pairing import Pair
from .pipeline import ScoredPair, StepProgress, score_pairs
from .progress import SILENT, Progress
from .results import ResultsWriter
from .scoring import Scorer
from .viewing import Scale, parse_scale


@dataclass
class BatchSummary:
    scored: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False


def run_batch(
    scorer: Scorer | None,
    pairs: Iterable[Pair],
    output: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 0,
    pairs_per_step: int = 0,
    progress: Progress = SILENT,
    patches: StepProgress | None = None,
    on_item: Callable[[ScoredPair], None] | None = None,
    engine: Engine | None = None,
    scale: Scale | str | None = None,
) -> BatchSummary:
    """Score ``pairs`` into the CSV ``output`` through ``pipeline.score_pairs`` (``workers`` decoding
    threads, ``pairs_per_step`` pairs scored together; 0: the device's defaults) at the viewing
    ``scale`` (None: native), which each row records; or through ``engine`` (then ``scorer`` may be
    None, and the scale is the engine's ``scale``). ``patches``: how far the pairs in hand are (in
    this process only; an engine does not say)."""
    summary = BatchSummary()
    scale = parse_scale(scale)
    if engine is None:
        if scorer is None:
            raise ValueError("run_batch needs a scorer or an engine")
        weights_id, precision = scorer.info.weights_id, scorer.precision

        def engine_score(todo: list[Pair]):
            return score_pairs(
                scorer, todo, workers=workers, pairs_per_step=pairs_per_step, scale=scale, progress=patches
            )
    else:  # an engine scores at its own scale (RayEngine(scale=...)), which the rows record
        weights_id, precision, engine_score = engine.weights_id, engine.precision, engine.score
        scale, asked = parse_scale(getattr(engine, "scale", None)), scale
        if asked.text != scale.text and not asked.native:
            raise ValueError(f"the engine scores at scale {scale.text}, not {asked.text}")

    pairs = list(pairs)
    keys = [(str(pair.ref), str(pair.dist), weights_id, precision, scale.text) for pair in pairs]
    with ResultsWriter(output, resume=resume, overwrite=overwrite) as writer:
        done = writer.done_keys() if resume else set()
        todo = []
        for pair, key in zip(pairs, keys):
            if key in done:
                summary.skipped += 1
            else:
                todo.append(pair)
        progress.start("scoring", len(todo))
        try:
            with closing(engine_score(todo)) as scored:
                for item in scored:
                    row = {
                        "ref": str(item.pair.ref),
                        "dist": str(item.pair.dist),
                        "weights": weights_id,
                        "precision": precision,
                        "scale": scale.text,
                        "error": item.error or "",
                    }
                    if item.error:
                        summary.failed += 1
                        progress.failed(item.error)
                    else:
                        result = item.result
                        row.update(
                            score=result.score,
                            patches=result.patches,
                            width=result.width,
                            height=result.height,
                        )
                        summary.scored += 1
                    writer.write(row)
                    if on_item:
                        on_item(item)
                    progress.advance()
        except KeyboardInterrupt:
            summary.interrupted = True
        if not summary.interrupted:
            writer.put_in_order(keys)  # after a resume: the input order, as if it never stopped
    return summary
