"""`radn batch` killed at random moments (SIGKILL, SIGINT), then resumed: every pair once, same scores."""

import csv
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from ctrl_c_probe import probe, start_batch  # noqa: E402  (the probe's own way to start radn batch)

sys.path.pop(0)


def _make_pairs(root, n):
    rng = np.random.default_rng(0)
    rows = ["ref,dist"]
    for i in range(n):
        ref = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        dist = np.clip(ref.astype(int) + rng.integers(-40, 41, ref.shape), 0, 255).astype(np.uint8)
        Image.fromarray(ref).save(root / f"r{i}.png")
        Image.fromarray(dist).save(root / f"d{i}.png")
        rows.append(f"r{i}.png,d{i}.png")
    (root / "broken.png").write_bytes(b"not an image")
    rows.append("r0.png,broken.png")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root / "pairs.csv"


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _check_against_uninterrupted(tmp_path, weights_file, n, kills):
    pairs = _make_pairs(tmp_path, n)
    straight = start_batch(pairs, tmp_path / "straight.csv", weights_file)
    assert straight.wait(timeout=600) == 1  # the broken pair fails, the rest is scored
    expected = {(r["ref"], r["dist"]): r for r in _rows(tmp_path / "straight.csv")}
    assert len(expected) == n + 1

    out = tmp_path / "resumed.csv"
    rng = random.Random(42)
    for attempt in range(kills):
        proc = start_batch(pairs, out, weights_file, "--resume")
        time.sleep(rng.uniform(1.0, 6.0))
        sig = signal.SIGKILL if attempt % 2 == 0 else signal.SIGINT
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
        if sig == signal.SIGINT:  # 0/1: it had finished; 130: interrupted cleanly
            assert code in (0, 1, 130), (code, proc.stderr.read())
    final = start_batch(pairs, out, weights_file, "--resume")
    assert final.wait(timeout=600) == 1
    rows = _rows(out)
    keys = [(r["ref"], r["dist"]) for r in rows]
    assert len(keys) == len(set(keys)) == n + 1, "every pair exactly once"
    for row in rows:
        reference = expected[row["ref"], row["dist"]]
        assert row["score"] == reference["score"] and bool(row["error"]) == bool(reference["error"])


@pytest.mark.heavy  # a kill loop
def test_batch_survives_kills(tmp_path, weights_file):
    _check_against_uninterrupted(tmp_path, weights_file, n=40, kills=4)


@pytest.mark.slow
def test_batch_survives_many_kills_on_thousands_of_pairs(tmp_path, weights_file):
    _check_against_uninterrupted(tmp_path, weights_file, n=2000, kills=12)


@pytest.mark.heavy  # a kill loop
def test_ctrl_c_at_random_moments_exits_130_and_keeps_every_reported_row(weights_file):
    """A sample of benchmarks/ctrl_c_probe.py (which runs 200+): Ctrl-C between 0.05 and 5 s after
    `radn batch` starts, fresh output each time."""
    results = probe(8, pairs=60, weights=weights_file, seed=1)
    assert [r for r in results if r["problems"]] == []
    assert {r["exit"] for r in results if not r["startup"]} <= {0, 130}
