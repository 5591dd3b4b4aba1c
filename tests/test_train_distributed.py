"""`radn train` under torchrun: two CPU ranks on gloo, each with its own batches; rank 0 writes."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import small_stream
from PIL import Image

from radn_cli.train.data import PhotoBank, find_photos
from radn_cli.train.distributed import Ranks, from_environment
from radn_cli.weights import load_weights

SETTINGS = dict(
    pretrain_steps=0,
    photos_per_batch=1,
    per_photo=2,
    patches=2,
    crop=64,
    val_fraction=0.34,
    val_photos=2,
    val_per_photo=2,
    val_crop=64,
    val_every=3,
    checkpoint_every=1,
    ema=0.5,
    clean=0.3,
    shift=0.3,
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        image = np.kron(rng.random((12, 16, 3)), np.ones((6, 6, 1)))
        Image.fromarray((image * 255).astype(np.uint8)).save(root / f"p{i}.png")
    return root


def _stream(photos, rank, world):
    return small_stream(photos, rank=rank, world=world)


def test_each_rank_draws_its_own_batches(photos):
    bank = PhotoBank(find_photos(photos), 64)
    one, first, second = _stream(photos, 0, 1), _stream(photos, 0, 2), _stream(photos, 1, 2)
    for step in range(3):
        a, b = first.batch(bank, step), second.batch(bank, step)
        assert not torch.equal(a.dist, b.dist)
        # rank r of 2 at step i makes batch 2i + r of the one stream a single process walks through
        assert torch.equal(a.dist, one.batch(bank, 2 * step).dist)
        assert torch.equal(b.dist, one.batch(bank, 2 * step + 1).dist)


def test_ranks_from_torchrun_environment(monkeypatch):
    assert from_environment() == Ranks(0, 1, 0) and from_environment().main
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ranks = from_environment()
    assert ranks == Ranks(3, 4, 1) and ranks.distributed and not ranks.main


def _torchrun(config, *flags):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "radn_cli", "train", "--config", str(config), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.heavy  # torchrun
def test_two_gloo_ranks_train_export_and_resume(photos, tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"photos": str(photos), "out": str(out), "steps": 6, **SETTINGS}))

    # stopped by its time limit part-way (or before the first step), then resumed to the end
    first = _torchrun(config, "--max-minutes", "0.01")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.splitlines() == [str(out / "best.safetensors")]  # one answer, from rank 0
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    stopped = [e["step"] for e in events if e["event"] == "step"]
    assert stopped == list(range(1, len(stopped) + 1)) and len(stopped) < 6

    again = _torchrun(config, "--resume", "--max-minutes", "0")
    assert again.returncode == 0, again.stderr[-3000:]
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == list(range(1, 7))  # each step once: rank 1 logs nothing, the resume repeats none
    assert any("val_srocc" in e for e in events if e["event"] == "step")
    weights = load_weights(out / "last.safetensors")
    assert weights.info.metadata["steps"] == "6"
    assert "resumed at step" in again.stderr

    # the number of processes decides the batches: a run of 2 ranks does not resume in one
    from radn_cli.errors import UsageError
    from radn_cli.train.config import TrainConfig
    from radn_cli.train.trainer import train

    with pytest.raises(UsageError, match="2 process"):
        train(TrainConfig.from_file(config, steps=6), resume=True)
