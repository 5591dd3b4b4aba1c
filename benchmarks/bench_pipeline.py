"""What the pipeline costs or gains: `pipeline.score_pairs` against a plain loop, in the same process.

    python benchmarks/bench_pipeline.py [--pairs 24] [--size 288] [--refs 4] [--repeat 3] [--precision fp32]
        [--threads 2]

Both sides score the same PNG pairs (``--refs`` references, the distorted images spread over them)
with the same Scorer (seeded weights; the numbers do not depend on them):

* ``loop``: decode the reference and the distorted image, encode the reference once per reference,
  score, one pair after the other in the main thread (what `radn score` did before the pipeline);
* ``pipeline``: ``score_pairs(scorer, pairs)`` with its defaults (decoding ahead in threads, one
  encoding per reference).

Runs alternate (loop, pipeline, loop, ...) so that a busy machine slows both alike; the report is
the median pairs/s of each and their ratio, and checks that the scores are identical.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the seeded weights of the test suite

from conftest import seeded_model  # noqa: E402

from radn_cli.devices import keep_freed_memory  # noqa: E402
from radn_cli.images import load_image  # noqa: E402
from radn_cli.pairing import Pair  # noqa: E402
from radn_cli.pipeline import score_pairs  # noqa: E402
from radn_cli.scoring import Scorer  # noqa: E402
from radn_cli.weights import LoadedWeights, WeightsInfo  # noqa: E402


def make_pairs(root: Path, n: int, size: int, refs: int) -> list[Pair]:
    rng = np.random.default_rng(0)
    bases = []
    for r in range(refs):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / f"ref{r}.png")
        bases.append(image)
    pairs = []
    for i in range(n):
        r = i * refs // n  # grouped by reference, as every pairing mode gives them
        noisy = np.clip(bases[r] + rng.normal(0, 10 + i % 20, bases[r].shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / f"dist{i}.png")
        pairs.append(Pair(root / f"ref{r}.png", root / f"dist{i}.png"))
    return pairs


def loop(scorer: Scorer, pairs: list[Pair]) -> list[float]:
    scores, encoded, current = [], None, None
    for pair in pairs:
        ref = load_image(pair.ref)
        dist = load_image(pair.dist)
        if current != pair.ref:
            encoded, current = scorer.encode_reference(ref.tensor), pair.ref
        scores.append(scorer.score(encoded, dist.tensor).score)
    return scores


def pipeline(scorer: Scorer, pairs: list[Pair]) -> list[float]:
    return [item.result.score for item in score_pairs(scorer, pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--size", type=int, default=288)
    parser.add_argument("--refs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the test suite's conftest, imported above, sets 1
    keep_freed_memory()
    model = seeded_model().float()
    info = WeightsInfo(Path("seeded"), {"name": "seeded", "sha256": "0" * 64}, model.config)
    scorer = Scorer(LoadedWeights(info, model), device="cpu", precision=args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_pairs(Path(tmp), args.pairs, args.size, args.refs)
        rates: dict[str, list[float]] = {"loop": [], "pipeline": []}
        results = {}
        for _ in range(args.repeat):
            for name, run in (("loop", loop), ("pipeline", pipeline)):
                started = time.perf_counter()
                results[name] = run(scorer, pairs)
                rates[name].append(len(pairs) / (time.perf_counter() - started))
    same = results["loop"] == results["pipeline"]
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}, {args.pairs} pairs "
        f"of {args.size}x{args.size} over {args.refs} references, {args.repeat} alternating runs each"
    )
    for name, values in rates.items():
        print(f"{name}: {medians[name]:.2f} pairs/s (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"pipeline / loop: {medians['pipeline'] / medians['loop']:.2f}x; scores identical: {same}")


if __name__ == "__main__":
    main()
