"""Issue 26, what a new user sees of `radn score` and `radn heatmap`: progress while scoring, the
score scale on the terminal, the default heatmap and its colour range, the raw values, and --help.

Images are small (64x96: a 2x3 patch grid) and the seeded test weights are loaded once.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def scorer(weights_file):
    from radn_cli import load_scorer

    return load_scorer(weights_file, device="cpu", batch_size=4)


def _image(seed: int, height: int = 64, width: int = 96) -> torch.Tensor:
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------
# The scorer's progress hook


def test_progress_hook_counts_patches_after_each_chunk(scorer):
    ref, dist = _image(0), _image(1)
    calls: list[tuple[int, int]] = []
    encoded = scorer.encode_reference(ref, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]  # 6 patches in chunks of batch_size 4
    calls.clear()
    scored = scorer.score(encoded, dist, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]
    calls.clear()
    many = scorer.score_many([(encoded, dist), (encoded, ref)], progress=lambda *a: calls.append(a))
    assert calls == [(4, 12), (8, 12), (12, 12)]  # a chunk spans both images
    calls.clear()
    pair = scorer.score_pair(ref, dist, progress=lambda *a: calls.append(a))
    assert calls == [(4, 12), (6, 12), (10, 12), (12, 12)]  # both images' patches
    # the hook changes nothing in the scores
    assert scored.score == pair.score == scorer.score_pair(ref, dist).score
    assert many[0].score == pytest.approx(scored.score, abs=1e-5)  # other batches: float rounding


# ---------------------------------------------------------------------------------------------------
# The command line: helpers

H, W = 64, 96  # a 2x3 grid of 32x32 patches
# Rich then treats stderr as a terminal, one that can redraw a line
TERMINAL = {"TTY_COMPATIBLE": "1", "COLUMNS": "100", "TERM": "xterm-256color"}
SCALE = "test DMOS: 1 (bad) .. 5 (good), higher is better"
_LOADED: dict = {}


def run(*args, env: dict[str, str] | None = None):
    from typer.testing import CliRunner

    from radn_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def pair(tmp_path):
    """ref.png, d1.png (light noise), d2.png (strong noise), all 64x96 RGB."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    base = np.stack([x / W, y / H, 0.5 + 0.5 * np.sin((x + 2 * y) / 7.0)], axis=-1)
    ref = np.clip(255 * (0.65 * base + 0.35 * rng.random((H, W, 3))), 0, 255).round().astype(np.uint8)
    paths = []
    for name, sigma in (("ref", 0.0), ("d1", 6.0), ("d2", 30.0)):
        noisy = ref + rng.normal(0.0, sigma, ref.shape)
        Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    return tuple(paths)


@pytest.fixture(autouse=True)
def _seeded_weights_with_a_scale(monkeypatch, weights_file):
    """The seeded test weights, loaded once, their metadata stating a score scale of 1..5 (the test
    weights' own says "arbitrary", as a file without a scale would)."""
    import dataclasses

    import radn_cli.scoring
    import radn_cli.weights

    real = radn_cli.weights.load_weights

    def load_weights(path, *, verify=True):
        if "seeded" not in _LOADED:
            _LOADED["seeded"] = real(weights_file, verify=verify)
        loaded = _LOADED["seeded"]
        scale = {} if Path(path) == weights_file else {"score_scale": SCALE}
        info = dataclasses.replace(loaded.info, metadata={**loaded.info.metadata, **scale})
        return dataclasses.replace(loaded, info=info)

    monkeypatch.setattr(radn_cli.weights, "load_weights", load_weights)
    monkeypatch.setattr(radn_cli.scoring, "load_weights", load_weights)  # load_scorer's


@pytest.fixture
def scaled(tmp_path):
    """A weights path that loads as the seeded weights with the 1..5 scale (see the fixture above)."""
    path = tmp_path / "scaled.safetensors"
    path.write_bytes(b"a stand-in: load_weights is patched")
    return path


@pytest.fixture
def bar_at_once(monkeypatch):
    """The progress bar due at once, on a terminal that can redraw a line (Rich decides that when the
    console is made: here, at import, stderr was no terminal)."""
    import radn_cli.cli.console

    monkeypatch.setattr(radn_cli.cli.console, "PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(radn_cli.cli.console.stderr, "is_interactive", True)


@pytest.fixture
def no_bar(monkeypatch):
    """A terminal that can redraw a line, the work quicker than the bar's delay."""
    import radn_cli.cli.console

    monkeypatch.setattr(radn_cli.cli.console, "PROGRESS_AFTER", 1e6)
    monkeypatch.setattr(radn_cli.cli.console.stderr, "is_interactive", True)


def expected_stdout(pair, weights) -> str:
    """`radn score` plain output, from the scores of its --json document."""
    import json

    ref, d1, d2 = pair
    document = json.loads(run("score", ref, d1, d2, "--weights", weights, "--json").stdout)
    return "".join(f"{r['score']:.6f}\t{r['dist']}\n" for r in document["results"])


# ---------------------------------------------------------------------------------------------------
# Progress on stderr


def test_piped_output_is_unchanged_even_with_the_bar_due_at_once(pair, scaled, bar_at_once):
    """stderr not a terminal: stdout holds the score lines only and stderr nothing, as before."""
    ref, d1, d2 = pair
    result = run("score", ref, d1, d2, "--weights", scaled)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected_stdout(pair, scaled)
    assert result.stderr == ""


def test_progress_bar_on_a_terminal_not_with_quiet(pair, scaled, bar_at_once):
    ref, d1, d2 = pair
    result = run("score", ref, d1, d2, "--weights", scaled, env=TERMINAL)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected_stdout(pair, scaled)  # never on stdout
    assert "scoring" in result.stderr and "18/18 patches" in result.stderr  # 3 images of 6 patches
    quiet = run("score", ref, d1, d2, "--weights", scaled, "-q", env=TERMINAL)
    assert quiet.stdout == result.stdout and quiet.stderr == ""


def test_no_progress_bar_for_quick_work(pair, scaled, no_bar):
    ref, d1, _ = pair
    result = run("score", ref, d1, "--weights", scaled, env=TERMINAL)
    assert result.exit_code == 0, result.output
    assert "scoring" not in result.stderr and "elapsed" not in result.stderr


def test_work_progress_waits_counts_and_erases_itself(monkeypatch):
    import io
    import time

    from rich.console import Console

    import radn_cli.cli.console as console

    screen = io.StringIO()
    monkeypatch.setattr(
        console, "stderr", Console(file=screen, force_terminal=True, force_interactive=True, width=100)
    )
    monkeypatch.setattr(console, "PROGRESS_AFTER", 0.2)
    monkeypatch.setattr(console, "_waiting_since", None)  # the wait counts from the command's start
    with console.WorkProgress("loading") as progress:
        progress.begin("scoring", 300, "patches")
        progress.update(100)
        assert screen.getvalue() == ""  # not before PROGRESS_AFTER
        time.sleep(0.6)
        assert "scoring" in screen.getvalue() and "100/300 patches" in screen.getvalue()
        progress.update(50)  # never backwards
        assert progress.describe().startswith("100/300 patches  0:00 elapsed, about 0:0")
        progress.update(1000)  # never past the total
        assert progress.describe().startswith("300/300 patches")
    assert screen.getvalue().endswith("\x1b[2K")  # erased when closed
    screen.truncate(0)
    time.sleep(0.3)
    assert screen.getvalue() == ""  # and gone for good
    with console.WorkProgress("loading", enabled=False) as progress:  # -q
        time.sleep(0.3)
    assert screen.getvalue() == "" and not progress.active


@pytest.mark.skipif(shutil.which("script") is None or sys.platform != "linux", reason="needs `script`")
def test_real_terminal_bar_and_score_lines_do_not_mix(pair, weights_file, tmp_path):
    """stdout and stderr on one pseudo-terminal (util-linux `script`), the bar due at once: each score
    line is whole on a line of its own (the bar is erased before it). A new process: about 5 s."""
    ref, d1, d2 = pair
    start = (
        "import sys, radn_cli.cli.console as c; c.PROGRESS_AFTER = 0.0; "
        "from radn_cli.cli import main; sys.argv[0] = 'radn'; main()"
    )
    radn = [sys.executable, "-c", start, "score", str(ref), str(d1), str(d2), "--weights", str(weights_file)]
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"}
    for name in ("RADN_VERBOSE", "TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR"):
        env.pop(name, None)
    command = " ".join(shlex.quote(a) for a in radn)
    done = subprocess.run(["script", "-qec", command, "/dev/null"], env=env, capture_output=True, timeout=120)
    terminal = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0, terminal
    assert "scoring" in terminal and "patches" in terminal
    lines = re.findall(r"(^|\n|\x1b\[2K)(-?\d+\.\d{6}\t[^\r\n]*)\r\n", terminal)
    assert [line.split("\t")[1] for _, line in lines] == [str(d1), str(d2)], terminal


# ---------------------------------------------------------------------------------------------------
# The score scale, after the scores


def test_scale_line_on_a_terminal_only(pair, scaled, weights_file, no_bar):
    ref, d1, _ = pair
    result = run("score", ref, d1, "--weights", scaled, env=TERMINAL)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == f"radn: score scale: {SCALE}"  # says the direction once
    plain = run("score", ref, d1, "--weights", weights_file, env=TERMINAL)  # "arbitrary": no direction
    assert plain.stderr.splitlines()[-1] == "radn: score scale: arbitrary, higher is better"
    assert run("score", ref, d1, "--weights", scaled, "-q", env=TERMINAL).stderr == ""
    assert run("score", ref, d1, "--weights", scaled).stderr == ""  # not a terminal
    as_json = run("score", ref, d1, "--weights", scaled, "--json", env=TERMINAL)
    assert as_json.stderr.splitlines() == [f"radn: score scale: {SCALE}"]
    out = Path(ref).parent / "h.png"
    drawn = run("heatmap", ref, d1, "-o", out, "--weights", scaled, env=TERMINAL)
    assert drawn.stderr.splitlines() == [f"radn: wrote {out}", f"radn: score scale: {SCALE}"]


def test_scale_line_words():
    from types import SimpleNamespace

    from radn_cli.cli.score import scale_line

    def info(metadata, higher=True):
        return SimpleNamespace(metadata=metadata, metrics={}, higher_is_better=higher)

    kadid = "KADID-10k DMOS: 1 (very annoying) .. 5 (imperceptible), higher is better"
    assert scale_line(info({"score_scale": kadid})) == f"radn: score scale: {kadid}"
    assert scale_line(info({})) == "radn: score scale: unknown, higher is better"
    assert scale_line(info({"score_scale": "MOS"}, False)) == "radn: score scale: MOS, lower is better"
    identical = info({"score_scale": kadid})
    identical.metrics = {"identical_copy_score": 4.1234}
    assert scale_line(identical).endswith("higher is better; an identical copy scores about 4.1")
    assert scale_line(info({"score_scale": "x", "identical_copy_score": "n/a"})).endswith("higher is better")


# ---------------------------------------------------------------------------------------------------
# Heatmaps: the default map, the colour range, the raw values


def test_map_defaults_agree_across_score_heatmap_and_the_report():
    import inspect

    from radn_cli import heatmap
    from radn_cli import report as html_report
    from radn_cli.cli import report, score

    assert heatmap.DEFAULT_MAP == "scores" == html_report.DEFAULT_MAP
    for command in (score.score, score.heatmap, report.report):
        assert inspect.signature(command).parameters["kind"].default == heatmap.DEFAULT_MAP, command


def _pixels(path: Path, rows: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))[:rows]


def test_score_and_heatmap_draw_the_same_default_map(pair, scaled, tmp_path):
    ref, d1, _ = pair
    assert run("score", ref, d1, "--weights", scaled, "--heatmap", tmp_path / "s.png").exit_code == 0
    for name, options in (("h", []), ("scores", ["--map", "scores"]), ("weights", ["--map", "weights"])):
        result = run("heatmap", ref, d1, "-o", tmp_path / f"{name}.png", "--weights", scaled, *options)
        assert result.exit_code == 0, result.output
    default = _pixels(tmp_path / "h.png")
    assert np.array_equal(default, _pixels(tmp_path / "s.png"))
    assert np.array_equal(default, _pixels(tmp_path / "scores.png"))
    assert not np.array_equal(default[:H], _pixels(tmp_path / "weights.png")[:H])


def test_fixed_range_by_default_and_auto_restores_the_stretch(pair, scaled, tmp_path):
    ref, _, d2 = pair
    values = tmp_path / "v.npy"
    drawn = {}
    for name, options in (
        ("default", ["--raw", values]),
        ("given", ["--range", "1,5"]),
        ("auto", ["--range", "auto"]),
    ):
        result = run("heatmap", ref, d2, "-o", tmp_path / f"{name}.png", "--weights", scaled, *options)
        assert result.exit_code == 0, result.output
        drawn[name] = _pixels(tmp_path / f"{name}.png")
    scores = np.load(values)
    lo, hi = float(scores.min()), float(scores.max())
    assert hi > lo
    stretched = run(
        "heatmap", ref, d2, "-o", tmp_path / "lohi.png", "--weights", scaled, "--range", f"{lo!r},{hi!r}"
    )
    assert stretched.exit_code == 0, stretched.output
    assert np.array_equal(drawn["default"], drawn["given"])  # the weights' scale, 1..5
    assert not np.array_equal(drawn["default"][:H], drawn["auto"][:H])
    assert np.array_equal(drawn["auto"][:H], _pixels(tmp_path / "lohi.png", H))  # auto = the map's min..max


def test_range_and_map_usage_errors(pair, tmp_path):
    ref, d1, _ = pair
    for options, fragment in (
        (["--range", "1..5"], "--range must be fixed, auto or LO,HI"),
        (["--range", "5,1"], "LO < HI"),
        (["--map", "heat"], "--map must be one of scores, weights, product"),
    ):
        result = run("heatmap", ref, d1, "-o", tmp_path / "h.png", *options)
        assert result.exit_code == 2 and fragment in result.stderr, result.output
    old_name = run(
        "heatmap", ref, d1, "-o", tmp_path / "h.png", "--map", "contribution", "-w", tmp_path / "x"
    )
    assert old_name.exit_code == 1 and "weights file not found" in old_name.stderr  # accepted, went on


def test_raw_values_as_npy_and_csv_round_trip(pair, scaled, tmp_path):
    import csv
    import json

    ref, d1, _ = pair
    npy, table = tmp_path / "v.npy", tmp_path / "v.csv"
    result = run("heatmap", ref, d1, "-o", tmp_path / "h.png", "--raw", npy, "--raw", table, "-w", scaled)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"radn: wrote {tmp_path / 'h.png'}, {npy} and {table}"]
    values = np.load(npy, allow_pickle=False)
    assert values.dtype == np.float64 and values.shape == (2, 3)
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert np.array_equal(values.ravel(), [float(r["value"]) for r in rows])
    record = json.loads(run("score", ref, d1, "-w", scaled, "--json").stdout)["results"][0]
    assert np.array_equal(values, np.asarray(record["patch_scores"], dtype=np.float64))  # the default map


def test_overlay_and_terminal_legends_say_which_range():
    from radn_cli import heatmap as hm

    values = np.array([[2.0, 3.0, 6.0], [2.5, 3.5, 4.0]])  # one patch beyond 1..5
    grey = np.full((64, 96, 3), 128, dtype=np.uint8)
    fixed = np.asarray(hm.render_overlay(grey, values, kind="scores", value_range=(1.0, 5.0)))
    auto = np.asarray(hm.render_overlay(grey, values, kind="scores"))
    # 2 is a quarter up 1..5, but the lowest colour of the map's own 2..6
    assert not np.array_equal(fixed[16, 16], auto[16, 16])
    assert np.array_equal(
        auto[16, 16], hm.render_overlay(grey, values, kind="scores", value_range=(2, 6)).getpixel((16, 16))
    )
    from rich.console import Console

    console = Console(record=True, width=100, file=__import__("io").StringIO())
    console.print(hm.terminal_heatmap(values, max_width=100, kind="scores", value_range=(1.0, 5.0)))
    text = console.export_text()
    assert "fixed range, 1 patch beyond it" in text and "min" not in text
    console.print(hm.terminal_heatmap(values, max_width=100, kind="scores"))
    assert "min 2" in console.export_text()


def test_choices():
    from radn_cli.heatmap import color_range, parse_range, scale_range

    assert parse_range("fixed") == "fixed" and parse_range("AUTO") == "auto"
    assert parse_range("0,10") == (0.0, 10.0)
    for bad in ("1..5", "5,1", "1,1", "a,b", "1,2,3", "nan,1"):
        with pytest.raises(ValueError):
            parse_range(bad)
    shipped = "KADID-10k DMOS: 1 (very annoying) .. 5 (imperceptible), higher is better"
    assert scale_range({"score_scale": shipped}) == (1.0, 5.0)
    assert scale_range({"score_scale": "MOS 0..9"}) == (0.0, 9.0)
    assert scale_range({"score_scale": shipped, "score_range": "0, 100"}) == (0.0, 100.0)
    assert scale_range({"score_scale": "as trained (MOS / max MOS)"}) is None
    assert color_range("scores", "fixed", (1.0, 5.0)) == (1.0, 5.0)
    assert color_range("scores", "fixed", None) is None  # no scale: the map's own range
    assert color_range("weights", "fixed", (1.0, 5.0)) is None
    assert color_range("contribution", (0.0, 1.0), None) == (0.0, 1.0)
    assert color_range("scores", "auto", (1.0, 5.0)) is None


# ---------------------------------------------------------------------------------------------------
# --help


def test_help_shows_arguments_as_words():
    commands = (["score"], ["heatmap"], ["report"], ["eval"], ["weights", "info"], ["weights", "convert"])
    for command in commands:
        text = run(*command, "--help", env={"COLUMNS": "100"}).stdout
        usage = text.splitlines()[0]
        assert "{" not in usage and "<" not in usage, usage
        assert "list[" not in text and "<path>" not in text.split("Options:")[0], text
    score_help = run("score", "--help", env={"COLUMNS": "100"}).stdout
    assert score_help.splitlines()[0] == "Usage: radn score [OPTIONS] REF DIST..."
    assert "\n  REF      Reference (pristine) image." in score_help
    assert "\n  DIST...  One or more distorted images." in score_help
    assert run("weights", "info", "--help").stdout.splitlines()[0].endswith("[OPTIONS] [PATH]")


def test_choices_docstring_examples():
    import doctest

    import radn_cli.heatmap.choices

    result = doctest.testmod(radn_cli.heatmap.choices, raise_on_error=False, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_the_wait_counts_from_the_process_start(monkeypatch):
    """`radn` marks its start: the bar is due PROGRESS_AFTER s after the process started (Linux), not
    after the command did (the interpreter and the CLI's imports take a while before it runs)."""
    import time

    import radn_cli.cli.console as console

    monkeypatch.setattr(console, "_waiting_since", None)
    console.mark_start()
    waited = time.monotonic() - console._waiting_since
    assert waited >= 0.0  # (no upper bound: a whole suite may have run in this process before)
    if sys.platform == "linux":
        assert waited > 0.0  # this test process has run a while
    monkeypatch.setattr(console, "PROGRESS_AFTER", 1e6)
    progress = console.WorkProgress("loading", enabled=False)
    assert progress.started == console._waiting_since and progress.begun >= progress.started
