"""radn_cli.batch: pairs scored in groups (what a GPU run does by default) give the rows, scores and
errors of pairs scored one at a time, and a group that fails is retried pair by pair."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from radn_cli.batch import run_batch
from radn_cli.devices import out_of_memory
from radn_cli.pairing import Pair
from radn_cli.pipeline import group_size
from radn_cli.scoring import Scorer
from radn_cli.weights import load_weights

torch.set_num_threads(1)  # tiny forwards: one thread is faster on a shared 2-core machine


def _save(path, seed, size=(64, 96), base=None, sigma=0.0):
    rng = np.random.default_rng(seed)
    image = base if base is not None else rng.integers(0, 256, (*size, 3))
    image = np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).round().astype(np.uint8)
    Image.fromarray(image).save(path)
    return image


@pytest.fixture
def pairs(tmp_path):
    """Two references of different sizes, three distorted images each, and a truncated file."""
    out = []
    for r, size in enumerate(((64, 96), (96, 64))):
        ref = tmp_path / f"ref{r}.png"
        image = _save(ref, r, size)
        for k in range(3):
            dist = tmp_path / f"ref{r}_{k}.png"
            _save(dist, 10 * r + k, base=image, sigma=4.0 + 12 * k)
            out.append(Pair(ref, dist))
    bad = tmp_path / "ref0_bad.png"
    bad.write_bytes(out[0].dist.read_bytes()[:100])
    out.insert(2, Pair(out[0].ref, bad))
    return out


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("per_step", [2, 3, 64])
def test_groups_score_like_one_pair_at_a_time(tmp_path, weights_file, pairs, per_step):
    scorer = Scorer(load_weights(weights_file), device="cpu", batch_size=16)
    alone = run_batch(scorer, pairs, tmp_path / "alone.csv", pairs_per_step=1)
    grouped = run_batch(scorer, pairs, tmp_path / "grouped.csv", pairs_per_step=per_step)
    assert (alone.scored, alone.failed) == (grouped.scored, grouped.failed) == (6, 1)
    a = {r["dist"]: r for r in _rows(tmp_path / "alone.csv")}
    g = {r["dist"]: r for r in _rows(tmp_path / "grouped.csv")}
    assert sorted(a) == sorted(g) == sorted(str(p.dist) for p in pairs)
    for dist, row in a.items():
        if row["error"]:
            assert g[dist]["error"] == row["error"] and g[dist]["score"] == ""
            continue
        assert g[dist]["error"] == ""
        assert float(g[dist]["score"]) == pytest.approx(float(row["score"]), abs=1e-5)
        assert (g[dist]["patches"], g[dist]["width"], g[dist]["height"]) == (
            row["patches"],
            row["width"],
            row["height"],
        )
    assert len({r["score"] for r in a.values() if not r["error"]}) == 6


def test_a_failing_group_is_retried_pair_by_pair(tmp_path, weights_file, pairs, monkeypatch):
    """A group that raises (out of memory, say) is scored again one pair at a time; a pair that fails
    on its own gets the error in its row and the others are kept."""
    scorer = Scorer(load_weights(weights_file), device="cpu", batch_size=16)
    expected = {r["dist"]: r["score"] for r in _rows_of(run_batch, scorer, pairs, tmp_path / "ref.csv")}
    real = scorer.score_many
    poisoned = str(pairs[4].dist)
    tensors = {}

    def flaky(items):
        if len(items) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        if any(image is tensors.get(poisoned) for _, image in items):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: simulated failure of one pair")
        return real(items)

    import radn_cli.pipeline as pipeline

    load = pipeline.load_image

    def remember(path):
        loaded = load(path)
        tensors[str(path)] = loaded.tensor
        return loaded

    monkeypatch.setattr(pipeline, "load_image", remember)
    monkeypatch.setattr(scorer, "score_many", flaky)
    progress = Recorded()
    summary = run_batch(scorer, pairs, tmp_path / "out.csv", pairs_per_step=8, progress=progress)
    assert (summary.scored, summary.failed) == (5, 2)
    rows = {r["dist"]: r for r in _rows(tmp_path / "out.csv")}
    assert "simulated failure of one pair" in rows[poisoned]["error"] and poisoned in rows[poisoned]["error"]
    for dist, score in expected.items():
        if score and dist != poisoned:
            assert rows[dist]["score"] == score  # scored alone: the same number as in the first run
    assert progress.stages == [("scoring", len(pairs))] and progress.done == len(pairs)
    assert len(progress.errors) == 2


class Recorded:
    """A Progress that remembers what it was told."""

    def __init__(self):
        self.stages, self.done, self.errors = [], 0, []

    def start(self, label, total):
        self.stages.append((label, total))

    def advance(self):
        self.done += 1

    def failed(self, message):
        self.errors.append(message)


def test_an_error_that_is_not_the_pairs_is_raised(tmp_path, weights_file, pairs, monkeypatch):
    """Bad input and lack of memory become a pair's error row; a bug (a RuntimeError such as a shape
    mismatch) stops the batch, with the rows before it kept."""
    scorer = Scorer(load_weights(weights_file), device="cpu", batch_size=16)
    real, calls = scorer.score_many, []

    def broken(items):
        calls.append(len(items))
        if len(calls) == 3:
            raise RuntimeError("shape '[1, 64]' is invalid for input of size 96 (simulated bug)")
        return real(items)

    monkeypatch.setattr(scorer, "score_many", broken)
    out = tmp_path / "out.csv"
    with pytest.raises(RuntimeError, match="simulated bug"):
        run_batch(scorer, pairs, out)
    rows = _rows(out)  # two scored pairs and the truncated file's error row came before the bug
    assert [bool(row["error"]) for row in rows] == [False, False, True]


def test_out_of_memory_is_told_by_type_and_by_the_cpu_allocators_message_only():
    assert out_of_memory(MemoryError()) and out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert out_of_memory(
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB")
    )
    assert not out_of_memory(RuntimeError("shape '[1, 64]' is invalid for input of size 96"))
    assert not out_of_memory(ValueError("can't allocate memory"))


def _rows_of(run, scorer, pairs, out):
    run(scorer, pairs, out, pairs_per_step=1)
    return _rows(out)


def test_default_group_size_is_one_pair_on_the_cpu(weights_file):
    scorer = Scorer(load_weights(weights_file), device="cpu")
    assert group_size(scorer) == 1 and group_size(scorer, 5) == 5
    assert scorer.batch_size == 256


def _cli(*args):
    from typer.testing import CliRunner

    from radn_cli.cli import app

    return CliRunner().invoke(app, ["batch", *map(str, args)])


def test_engine_options_are_checked_before_any_work(tmp_path, pairs):
    folders = ["--ref-dir", tmp_path, "--dist-dir", tmp_path, "-o", tmp_path / "out.csv"]
    for flags, message in (
        (["--actors", "2"], "--actors need --engine ray"),
        (["--ray-address", "auto", "--gpus-per-actor", "1"], "--ray-address, --gpus-per-actor need"),
        (["--engine", "ray", "--workers", "3"], "--workers: not with --engine ray"),
        (["--engine", "ray", "--device", "cpu"], "--device"),
    ):
        result = _cli(*folders, *flags)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_ray_is_a_one_line_error(tmp_path, pairs, weights_file, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    (tmp_path / "pairs.csv").write_text("ref,dist\nref0.png,ref0_0.png\n")
    result = _cli("--pairs", tmp_path / "pairs.csv", "-o", tmp_path / "out.csv", "--engine", "ray")
    assert result.exit_code == 2
    assert "pip install 'radn[ray]'" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
