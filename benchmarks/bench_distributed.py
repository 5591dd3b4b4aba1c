"""Beyond one process: `radn batch --engine ray` with 1 and 2 actors, and `radn train` under torchrun
with 1 and 2 ranks, on this machine.

    python benchmarks/bench_distributed.py [--pairs 48] [--size 288] [--steps 12] [--skip ray|ddp]

Ray: the same PNG pairs (4 references) scored to CSV with the shipped weights, through the CLI
(`python -m radn_cli batch`), by the default engine (this process's pipeline), then by a local Ray
instance with `--actors 1` and `--actors 2`. Each runs twice, on all the pairs and on one pair per
reference; reported: the wall time of the whole command (start-up, Ray and actor start included),
the fixed cost (the short run's wall time) and the scoring rate, (pairs - refs) / (difference of the
two wall times); Ray returns rows a block at a time, so rates read off the rows' arrival would not
mean much. And the largest difference from the default engine's scores.

torchrun: `torchrun --standalone --nproc-per-node N -m radn_cli train` on synthetic batches of the
pristine photos (or a folder of generated ones), N = 1 and 2, the same per-rank batch (2 photos x 4
versions, 192 crops), fp32 or bf16 (`--precision`); reported: the median training images/s over the
steps after the first two (all ranks' images), from the run's log.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "pristine"


def make_pairs(root: Path, pairs: int, size: int, refs: int = 4) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    (root / "ref").mkdir(parents=True)
    (root / "dist").mkdir()
    for r in range(refs):
        base = np.kron(rng.random((size // 8, size // 8, 3)), np.ones((8, 8, 1)))
        image = (base * 255).astype(np.uint8)
        Image.fromarray(image).save(root / "ref" / f"r{r}.png")
        for d in range(pairs // refs):
            noisy = np.clip(image + rng.normal(0, 3 + 2 * d, image.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / "dist" / f"r{r}_{d:03d}.png")
    return root / "ref", root / "dist"


def timed_batch(args: list[str], output: Path) -> tuple[float, dict[str, float]]:
    """Run `radn batch`; its wall time and the scores by distorted path."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "radn_cli", "batch", *args, "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"radn batch failed: {result.stderr[-2000:]}")
    with open(output, newline="") as f:
        return wall, {row["dist"]: float(row["score"]) for row in csv.DictReader(f)}


def bench_ray(pairs: int, size: int, refs: int = 4) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ref_dir, dist_dir = make_pairs(root / "all", pairs, size, refs)
        few_refs, few_dists = make_pairs(root / "few", refs, size, refs)
        engines = {"default engine": []}
        engines.update({f"ray, {n} actor(s)": ["--engine", "ray", "--actors", str(n)] for n in (1, 2)})
        rates, baseline = {}, None
        for name, flags in engines.items():
            wall, scores = timed_batch(
                ["--ref-dir", str(ref_dir), "--dist-dir", str(dist_dir), *flags], root / "a.csv"
            )
            fixed, _ = timed_batch(
                ["--ref-dir", str(few_refs), "--dist-dir", str(few_dists), *flags], root / "b.csv"
            )
            (root / "a.csv").unlink()
            (root / "b.csv").unlink()
            rates[name] = (pairs - refs) / (wall - fixed)
            baseline = baseline or scores
            worst = max(abs(scores[k] - v) for k, v in baseline.items())
            print(
                f"{name}: {rates[name]:.2f} pairs/s ({rates[name] / rates['default engine']:.2f}x the "
                f"default engine); {wall:.1f} s wall for {pairs} pairs, {fixed:.1f} s for {refs}; "
                f"largest score difference {worst:.1e}"
            )


def bench_ddp(steps: int, precision: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        photos = PHOTOS
        if not photos.is_dir():
            photos = root / "photos"
            photos.mkdir()
            rng = np.random.default_rng(0)
            for i in range(12):
                image = np.kron(rng.random((40, 60, 3)), np.ones((8, 8, 1)))
                Image.fromarray((image * 255).astype(np.uint8)).save(photos / f"p{i}.png")
        rates = {}
        for ranks in (1, 2):
            out = root / f"run{ranks}"
            config = root / f"run{ranks}.json"
            settings = {
                "photos": str(photos), "out": str(out), "steps": steps, "photos_per_batch": 2,
                "per_photo": 4, "val_every": 10_000, "val_photos": 2, "checkpoint_every": 10_000,
                "precision": precision,
            }  # fmt: skip
            config.write_text(json.dumps(settings))
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            command += ["--nproc-per-node", str(ranks), "-m", "radn_cli", "train", "--config", str(config)]
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // ranks))}
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                sys.exit(f"torchrun failed: {result.stderr[-2000:]}")
            events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
            rates[ranks] = statistics.median(e["images_per_s"] for e in events if e["step"] > 2)
            print(f"torchrun, {ranks} rank(s), {precision}: {rates[ranks]:.2f} training images/s")
        print(f"2 ranks / 1 rank: {rates[2] / rates[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--size", type=int, default=288)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--skip", choices=("ray", "ddp"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="torchrun runs")
    args = parser.parse_args()
    if args.skip != "ray":
        bench_ray(args.pairs, args.size)
    if args.skip != "ddp":
        bench_ddp(args.steps, args.precision)


if __name__ == "__main__":
    main()
