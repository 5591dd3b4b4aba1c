"""Ctrl-C at random moments of `radn batch`: every exit must be 130 (or 0 when it had finished), and
every row it reports as scored must be on disk, complete and once.

Each run scores a fresh output from the same pairs list and gets SIGINT after a delay drawn uniformly
from [--min-delay, --max-delay] seconds (start-up, PyTorch import, model load, pairing and scoring
are all inside that range with the defaults). A run passes when:

* its exit code is 130 (interrupted) or 0 (it had finished). One case is told apart, not counted as
  a failure: a process that the signal ended before Python ran any of radn's code (during the
  interpreter's own start-up, before it installs its Ctrl-C handler), which printed nothing and
  wrote nothing; the operating system reports it as killed by SIGINT (returncode -2 here), which a
  shell shows as exit status 130, and no Python program can catch it;
* the CSV it leaves parses, every row is complete (all columns, a score or an error) and no pair is
  listed twice;
* the count on its summary line ("N scored, ... (interrupted)") equals the rows in the file, when it
  got far enough to print one.

Usage:
  python benchmarks/ctrl_c_probe.py [--runs 200] [--pairs 150] [--min-delay 0.05] [--max-delay 5]
      [--weights W] [--seed 0] [--out probe.json]

tests/test_crash_safety.py runs a small sample of the same check (``probe``) in the default suite.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUMMARY = re.compile(r"radn: (\d+) scored, (\d+) failed, (\d+) already done")


def make_pairs(root: Path, n: int, size: int = 64) -> Path:
    """``n`` small PNG pairs and a ``ref,dist`` list of them (no bad pair: a finished run exits 0)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["ref,dist"]
    for i in range(n):
        ref = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        dist = np.clip(ref.astype(int) + rng.integers(-40, 41, ref.shape), 0, 255).astype(np.uint8)
        Image.fromarray(ref).save(root / f"r{i}.png")
        Image.fromarray(dist).save(root / f"d{i}.png")
        rows.append(f"r{i}.png,d{i}.png")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root / "pairs.csv"


def start_batch(pairs: Path, out: Path, weights: Path | None, *extra: str) -> subprocess.Popen:
    """`radn batch --pairs PAIRS -o OUT` on the CPU in a process of its own (stderr piped, text) that
    Ctrl-C reaches even when the caller runs as a background job (which ignores SIGINT)."""
    cmd = [sys.executable, "-m", "radn_cli", "batch", "--pairs", str(pairs), "-o", str(out)]
    cmd += ["--device", "cpu", *(["--weights", str(weights)] if weights is not None else []), *extra]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def interrupt_once(pairs: Path, out: Path, weights: Path | None, delay: float) -> dict:
    """One `radn batch` interrupted after ``delay`` seconds; what it left behind, checked."""
    proc = start_batch(pairs, out, weights)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    problems = []
    startup = proc.returncode == -signal.SIGINT and not stderr.strip() and not out.exists()
    if proc.returncode not in (0, 130) and not startup:
        problems.append(f"exit {proc.returncode}")
    rows: list[dict] = []
    if out.is_file():
        with open(out, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        keys = [(r["ref"], r["dist"]) for r in rows]
        if len(keys) != len(set(keys)):
            problems.append("a pair listed twice")
        if any(None in r.values() or not (r["score"] or r["error"]) for r in rows):
            problems.append("an incomplete row")
    summary = SUMMARY.search(stderr)
    if summary and int(summary[1]) + int(summary[2]) != len(rows):
        problems.append(f"reported {int(summary[1]) + int(summary[2])} rows, {len(rows)} on disk")
    return {
        "delay": round(delay, 3),
        "exit": proc.returncode,
        "startup": startup,
        "rows": len(rows),
        "problems": problems,
        "stderr": stderr.strip().splitlines()[-3:],
    }


def probe(
    runs: int,
    *,
    pairs: int = 150,
    min_delay: float = 0.05,
    max_delay: float = 5.0,
    weights=None,
    seed=0,
    on_result=None,
) -> list[dict]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        listing = make_pairs(root, pairs)
        results = []
        for i in range(runs):
            results.append(
                interrupt_once(listing, root / f"out{i}.csv", weights, rng.uniform(min_delay, max_delay))
            )
            if on_result:
                on_result(results[-1])
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--min-delay", type=float, default=0.05)
    parser.add_argument("--max-delay", type=float, default=5.0)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    results = probe(
        args.runs,
        pairs=args.pairs,
        min_delay=args.min_delay,
        max_delay=args.max_delay,
        weights=args.weights,
        seed=args.seed,
        on_result=lambda r: print(
            json.dumps({k: r[k] for k in ("delay", "exit", "rows", "problems")}), flush=True
        ),
    )
    exits = collections.Counter(r["exit"] for r in results)
    failed = [r for r in results if r["problems"]]
    print(f"{len(results)} interrupts in {time.perf_counter() - started:.0f} s; exit codes {dict(exits)}")
    rows = [r["rows"] for r in results]
    print(f"rows on disk per run: min {min(rows)}, max {max(rows)}")
    print(f"{sum(r['startup'] for r in results)} ended by the signal in the interpreter's start-up")
    print(f"{len(failed)} with problems")
    for r in failed:
        print(json.dumps(r))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
