"""`radn batch --engine ray` on a local Ray instance (2 CPUs): the same scores as the default engine,
error rows, and no row lost or doubled when an actor or the driver is killed mid-run."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radn_cli.engines.ray_engine import chunk_pairs
from radn_cli.pairing import Pair

ray = pytest.importorskip("ray", reason="the Ray engine's tests need Ray: pip install 'radn[ray]'")


def test_chunks_keep_a_reference_together_in_order():
    pairs = [Pair(Path(r), Path(f"{r}{i}")) for r, n in (("a", 3), ("b", 1), ("a", 1)) for i in range(n)]
    chunks = chunk_pairs(pairs, size=2)
    assert chunks == [
        {"ref": "a", "dists": ["a0", "a1"]},
        {"ref": "a", "dists": ["a2"]},
        {"ref": "b", "dists": ["b0"]},
        {"ref": "a", "dists": ["a0"]},
    ]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module; subprocess runs join it with --ray-address."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _folders(root: Path, refs: int, per_ref: int, side: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    (root / "ref").mkdir(parents=True)
    (root / "dist").mkdir()
    for r in range(refs):
        image = (np.kron(rng.random((side // 16, side // 16, 3)), np.ones((16, 16, 1))) * 255).astype(
            np.uint8
        )
        Image.fromarray(image).save(root / "ref" / f"r{r}.png")
        for d in range(per_ref):
            noisy = np.clip(image + rng.normal(0, 4 + 6 * d, image.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / "dist" / f"r{r}_{d}.png")
    return root / "ref", root / "dist"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _batch(*args):
    from typer.testing import CliRunner

    from radn_cli.cli import app

    return CliRunner().invoke(app, ["batch", *map(str, args)])


@pytest.mark.heavy  # a Ray cluster
def test_same_scores_as_the_default_engine_and_error_rows(cluster, weights_file, tmp_path):
    refs, dists = _folders(tmp_path, refs=3, per_ref=3, side=96)
    (dists / "r1_1.png").write_bytes(b"not an image")
    common = ["--ref-dir", refs, "--dist-dir", dists, "--weights", weights_file]
    local = _batch(*common, "-o", tmp_path / "local.csv")
    on_ray = _batch(*common, "-o", tmp_path / "ray.csv", "--engine", "ray", "--report", tmp_path / "r.html")
    assert (local.exit_code, on_ray.exit_code) == (1, 1), local.output + on_ray.output  # one bad pair
    expected, got = _rows(tmp_path / "local.csv"), _rows(tmp_path / "ray.csv")
    assert [(r["ref"], r["dist"]) for r in got] == [(r["ref"], r["dist"]) for r in expected]  # same order
    for a, b in zip(expected, got):
        assert (a["weights"], a["precision"], a["patches"]) == (b["weights"], b["precision"], b["patches"])
        if a["error"]:
            assert b["error"] and "r1_1.png" in b["error"] and not b["score"]
        else:
            assert float(b["score"]) == pytest.approx(float(a["score"]), abs=1e-5)
    # the report's heatmaps come from the actors' per-patch results, the images decoded here
    assert (tmp_path / "r.html").is_file()
    assert len(list((tmp_path / "r_files" / "heat").glob("*.jpg"))) == 8


@pytest.mark.heavy  # a Ray cluster
def test_the_actors_score_at_the_viewing_scale(cluster, weights_file, tmp_path):
    refs, dists = _folders(tmp_path, refs=2, per_ref=2, side=128)
    common = ["--ref-dir", refs, "--dist-dir", dists, "--weights", weights_file, "--scale", "0.5"]
    local = _batch(*common, "-o", tmp_path / "local.csv")
    on_ray = _batch(*common, "-o", tmp_path / "ray.csv", "--engine", "ray")
    assert (local.exit_code, on_ray.exit_code) == (0, 0), local.output + on_ray.output
    expected, got = _rows(tmp_path / "local.csv"), _rows(tmp_path / "ray.csv")
    assert [(r["scale"], r["width"], r["patches"]) for r in got] == [("0.5", "64", "4")] * 4
    for a, b in zip(expected, got):
        assert (a["dist"], a["scale"], a["patches"]) == (b["dist"], b["scale"], b["patches"])
        assert float(b["score"]) == pytest.approx(float(a["score"]), abs=1e-5)


def _start(args, **kw):
    """`radn batch` as started from a terminal (conftest: SIGINT at its default in child processes)."""
    command = [sys.executable, "-m", "radn_cli", "batch", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_rows(path: Path, count: int, process, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) > count:  # header + count rows
            return
        if process.poll() is not None:
            pytest.fail(f"the batch ended before {count} rows: {process.stderr.read()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {count} rows in {timeout} s")


def _actor_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::") and b"ChunkScorer" in title:
                pids.append(int(entry.name))
    return pids


def _assert_each_pair_once(path: Path, dists: Path) -> None:
    rows = _rows(path)
    keys = [(Path(r["dist"]).name) for r in rows]
    assert sorted(keys) == sorted(p.name for p in dists.iterdir())  # none lost, none doubled
    assert all(r["score"] and not r["error"] for r in rows)


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="finds the actors through /proc")
@pytest.mark.heavy  # a Ray cluster
def test_an_actor_killed_mid_run_loses_and_doubles_no_row(cluster, weights_file, tmp_path):
    refs, dists = _folders(tmp_path, refs=12, per_ref=4, side=160)
    out = tmp_path / "scores.csv"
    args = ["--ref-dir", refs, "--dist-dir", dists, "-o", out, "--weights", weights_file]
    args += ["--engine", "ray", "--ray-address", cluster]
    run = _start([*args, "--actors", "2"])
    _wait_for_rows(out, 2, run)
    victims = _actor_pids()
    assert victims, "no actor process found"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-2000:]
    _assert_each_pair_once(out, dists)


@pytest.mark.heavy  # a Ray cluster
def test_resume_after_the_driver_is_killed(cluster, weights_file, tmp_path):
    refs, dists = _folders(tmp_path, refs=10, per_ref=4, side=160)
    out = tmp_path / "scores.csv"
    args = ["--ref-dir", refs, "--dist-dir", dists, "-o", out, "--weights", weights_file]
    args += ["--engine", "ray", "--ray-address", cluster]
    run = _start(args)
    _wait_for_rows(out, 2, run)
    run.kill()
    run.wait()
    kept = len(_rows(out))
    assert 0 < kept < 40
    again = _start([*args, "--resume"])
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-2000:]
    assert f"{kept} already done" in stderr
    _assert_each_pair_once(out, dists)


@pytest.mark.heavy  # a Ray cluster
def test_ctrl_c_keeps_the_rows_written(cluster, weights_file, tmp_path):
    refs, dists = _folders(tmp_path, refs=10, per_ref=4, side=160)
    out = tmp_path / "scores.csv"
    args = ["--ref-dir", refs, "--dist-dir", dists, "-o", out, "--weights", weights_file]
    run = _start([*args, "--engine", "ray", "--ray-address", cluster])
    _wait_for_rows(out, 2, run)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr[-2000:]
    assert "(interrupted)" in stderr and "Traceback" not in stderr
    rows = _rows(out)
    assert 2 <= len(rows) < 40 and all(r["score"] for r in rows)


@pytest.mark.heavy  # a Ray cluster
def test_too_few_gpus_fail_before_the_output_is_opened(cluster, weights_file, tmp_path):
    refs, dists = _folders(tmp_path, refs=1, per_ref=1, side=64)
    out = tmp_path / "scores.csv"
    args = ["--ref-dir", refs, "--dist-dir", dists, "-o", out, "--weights", weights_file]
    result = _batch(*args, "--engine", "ray", "--ray-address", cluster, "--gpus-per-actor", "1")
    assert result.exit_code == 1 and "the Ray cluster has 0 GPU(s)" in result.output, result.output
    assert not out.exists()  # nothing to --resume or --overwrite: the same command works once fixed
