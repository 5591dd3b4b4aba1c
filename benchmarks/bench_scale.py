"""The viewing scale (``--scale``): what it costs and what it changes.

    python benchmarks/bench_scale.py [--weights W] [--device cpu] [--tid2013 FOLDER] [--skip-eval]
        [--pair-scales native,1024] [--eval-scales native,0.5] [--eval-every N] [--out bench_scale.json]

1. One 12-megapixel pair (4000x3000): the example photo magnified 7.8x (antialiased bicubic) as the
   reference PNG, its JPEG q30 copy as the distorted image, scored from the files (decoding and
   resizing included, as `radn score` does) at each of ``--pair-scales``: seconds and score.
2. `radn eval` (``evaluation.runner.evaluate``, RADN only) on a TID2013-layout folder at each of
   ``--eval-scales``: SROCC and PLCC (logistic) against the human scores, and seconds. Without
   ``--tid2013`` the 480-pair dev set is built from ../shared/data/tid2013_dev (make_tid2013.py), as
   the tests do. ``--eval-every N`` keeps every Nth pair (sorted by reference, then distorted image):
   the faithful RADN needs hours on a CPU for all 480 pairs at native size.

Times are wall-clock seconds and CPU seconds of this process (all its threads: on a machine shared
with other work, the CPU time is the steadier measure). Prints one line per measurement and a JSON
document (``--out`` also writes it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radn_cli import load_scorer  # noqa: E402
from radn_cli.devices import keep_freed_memory  # noqa: E402
from radn_cli.images import load_image  # noqa: E402
from radn_cli.pairing import Pair  # noqa: E402
from radn_cli.pipeline import score_pairs  # noqa: E402

EXAMPLE = ROOT / "examples" / "ref.png"
SHARED_TID = ROOT.parent / "shared" / "data" / "tid2013_dev"
SIZE = (4000, 3000)  # 12 megapixels


def make_pair(folder: Path) -> Pair:
    """The 12-megapixel pair of the module doc, written to ``folder``."""
    small = load_image(EXAMPLE).tensor
    big = F.interpolate(small[None], size=SIZE[::-1], mode="bicubic", antialias=True, align_corners=False)
    pixels = (big[0].clamp(0, 1).permute(1, 2, 0) * 255).round().byte().numpy()
    ref, dist = folder / "ref_12mp.png", folder / "dist_12mp_q30.jpg"
    Image.fromarray(pixels).save(ref, compress_level=1)
    Image.fromarray(pixels).save(dist, "JPEG", quality=30)
    return Pair(ref, dist)


class Timer:
    """Wall-clock and CPU seconds (``time.process_time``: every thread of this process) of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = round(time.perf_counter() - self.wall, 1)
        self.cpu = round(time.process_time() - self.cpu, 1)


def score_pair(scorer, pair: Pair, scale: str) -> dict:
    with Timer() as timer, closing(score_pairs(scorer, [pair], scale=scale)) as scored:
        item = next(scored)
    if item.error:
        raise SystemExit(item.error)
    result = item.result
    return {
        "scale": scale,
        "scored": f"{result.width}x{result.height}",
        "patches": result.patches,
        "score": result.score,
        "seconds": timer.wall,
        "cpu_seconds": timer.cpu,
    }


def tid2013(folder: str | None, scratch: Path) -> Path:
    if folder:
        return Path(folder)
    script = SHARED_TID / "make_tid2013.py"
    if not script.is_file():
        raise SystemExit(f"no --tid2013 given and no {script} to build the dev set")
    out = scratch / "tid2013_dev"
    subprocess.run(
        [sys.executable, str(script), str(SHARED_TID / "refs"), str(SHARED_TID / "params.csv"), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def evaluate_at(scorer, database, scale: str) -> dict:
    from radn_cli.evaluation.runner import evaluate

    with Timer() as timer:
        result = evaluate(database, ("radn",), scorer=scorer, scale=scale)
    report = result.reports["radn"]
    return {
        "scale": scale,
        "pairs": len(database.pairs),
        "failed": len(result.errors),
        "srocc": round(report["srocc"], 4),
        "plcc_logistic": round(report["plcc_logistic"], 4),
        "seconds": timer.wall,
        "cpu_seconds": timer.cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tid2013", default=None, help="a TID2013-layout folder (default: the dev set)")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--pair-scales", default="native,1024")
    parser.add_argument("--eval-scales", default="native,0.5")
    parser.add_argument("--eval-every", type=int, default=1, help="every Nth pair of the database")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    keep_freed_memory()
    scorer = load_scorer(args.weights, device=args.device)
    document: dict = {
        "weights": scorer.info.weights_id,
        "device": str(scorer.device),
        "threads": torch.get_num_threads(),
        "eval_every": args.eval_every,
        "pair": [],
        "eval": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as scratch:
        pair = make_pair(Path(scratch))
        for scale in args.pair_scales.split(","):
            row = score_pair(scorer, pair, scale)
            document["pair"].append(row)
            shown = (
                f"{row['scored']}, score {row['score']:.4f}, {row['seconds']} s ({row['cpu_seconds']} s CPU)"
            )
            print(f"12 MP pair at --scale {scale}: {shown}", flush=True)
        if not args.skip_eval:
            from radn_cli.evaluation.databases import load_database

            database = load_database(tid2013(args.tid2013, Path(scratch)), "tid2013")
            if args.eval_every > 1:
                ordered = sorted(database.pairs, key=lambda p: (str(p.ref), str(p.dist)))
                database = dataclasses.replace(database, pairs=ordered[:: args.eval_every])
            for scale in args.eval_scales.split(","):
                row = evaluate_at(scorer, database, scale)
                document["eval"].append(row)
                print(
                    f"{database.name} ({row['pairs']} pairs) at --scale {scale}: SROCC {row['srocc']:.4f}, "
                    f"PLCC {row['plcc_logistic']:.4f}, {row['seconds']} s ({row['cpu_seconds']} s CPU)",
                    flush=True,
                )
    text = json.dumps(document, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
