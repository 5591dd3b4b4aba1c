"""End-to-end tests of the `radn` command line (radn_cli.cli package), run in-process with Typer's CliRunner.

Every image is generated in tmp_path and is small (64x96: a 2x3 patch grid) so that a model forward
is cheap. The conventions checked are those of /work/shared/CLI_CONVENTIONS.md: results on stdout
(`score<TAB>path`), everything for humans on stderr, one line per error starting with "radn: error:",
exit codes 0 / 1 (input or runtime error) / 2 (usage error), no traceback without --verbose.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import seeded_model
from PIL import Image
from typer.testing import CliRunner

from radn_cli import __version__
from radn_cli.cli import app

# One thread: these forwards are tiny, and on a shared 2-core machine a second thread makes them
# several times slower (measured: 0.2 s vs 0.75-1.3 s per 64x96 pair). test_images.py does the same.
torch.set_num_threads(1)

H, W = 64, 96  # a 2x3 grid of 32x32 patches
CSV_HEADER = "ref,dist,score,patches,width,height,weights,precision,error,scale"
SCORE_LINE = re.compile(r"^-?\d+\.\d{6}\t(.+)$")

# ---------------------------------------------------------------------------------------------------
# Helpers


def run(*args, env: dict[str, str] | None = None):
    """Invoke `radn ARGS...` in-process; stdout and stderr are kept apart (result.stdout/.stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def picture(seed: int = 0, height: int = H, width: int = W) -> np.ndarray:
    """uint8 [H, W, 3]: gradients plus texture, so that patches differ from each other."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin((x + 2 * y) / 7.0)], axis=-1)
    mixed = 255 * (0.65 * base + 0.35 * rng.random((height, width, 3)))
    return np.clip(mixed, 0, 255).round().astype(np.uint8)


def distorted(image: np.ndarray, seed: int, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path)
    return path


def write_png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (Pillow writes only 8-bit colour PNGs)."""
    height, width, _ = samples.shape
    rows = samples.astype(">u2").reshape(height, -1).tobytes()
    stride = width * 3 * 2
    raw = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def score_lines(stdout: str) -> list[tuple[str, str]]:
    """[(score text, path)] of plain `radn score` output; fails on any other line."""
    lines = stdout.splitlines()
    assert stdout.endswith("\n") or not stdout, repr(stdout)
    parsed = []
    for line in lines:
        match = SCORE_LINE.match(line)
        assert match, f"not a `score<TAB>path` line: {line!r}"
        parsed.append((line.split("\t")[0], match.group(1)))
    return parsed


def assert_one_error(result, *fragments: str, code: int = 1) -> str:
    """Exit `code`, exactly one stderr line starting with "radn: error:", no traceback; returns the line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    line = lines[0]
    assert line.startswith("radn: error: "), line
    assert "\x1b[" not in line, repr(line)  # no escape codes when stderr is not a terminal
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def read_csv(path: Path) -> tuple[str, list[dict[str, str]]]:
    text = path.read_text(encoding="utf-8")
    return text.splitlines()[0], list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def pair(tmp_path):
    """ref.png, d1.png (light noise), d2.png (strong noise), all 64x96 RGB."""
    ref = picture(0)
    return (
        save(tmp_path / "ref.png", ref),
        save(tmp_path / "d1.png", distorted(ref, 1, 6.0)),
        save(tmp_path / "d2.png", distorted(ref, 2, 30.0)),
    )


_LOADED: dict = {}


@pytest.fixture(autouse=True)
def _seeded_weights_loaded_once(monkeypatch, weights_file):
    """Every CLI call loads its weights (87 MB: checksum, model build); keep one loaded copy of the
    seeded weights for this module's many calls. Other files (corrupt, converted, installed) load for real."""
    import radn_cli.scoring
    import radn_cli.weights

    real = radn_cli.weights.load_weights

    def load_weights(path, *, verify=True):
        if Path(path) != weights_file:
            return real(path, verify=verify)
        if "seeded" not in _LOADED:
            _LOADED["seeded"] = real(path, verify=verify)
        return _LOADED["seeded"]

    monkeypatch.setattr(radn_cli.weights, "load_weights", load_weights)
    monkeypatch.setattr(radn_cli.scoring, "load_weights", load_weights)  # load_scorer's


@pytest.fixture
def weights_id(weights_file):
    from radn_cli.weights import read_info

    return read_info(weights_file).weights_id


# ---------------------------------------------------------------------------------------------------
# radn score: output formats and determinism


def test_score_plain_json_and_batch_agree(pair, weights_file, weights_id, tmp_path):
    ref, d1, d2 = pair
    plain = run("score", ref, d2, d1, "--weights", weights_file)
    assert plain.exit_code == 0, plain.output
    # one `score<TAB>path` line per image, in input order, and nothing else on stdout
    assert [path for _, path in score_lines(plain.stdout)] == [str(d2), str(d1)]
    # stderr is not a terminal here: no heatmap, no ranking table, nothing at all
    assert plain.stderr == ""

    as_json = run("score", ref, d1, d2, "--weights", weights_file, "--json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)  # one JSON document, nothing else on stdout

    assert document["reference"] == str(ref)
    model = document["model"]
    assert model["weights"] == weights_id
    assert model["score_direction"] == "higher_is_better"
    assert model["precision"] == "fp32" and model["device"] == "cpu"
    assert len(model["sha256"]) == 64 and model["architecture"] == "radn"
    results = document["results"]
    assert [r["dist"] for r in results] == [str(d1), str(d2)]
    for record in results:
        assert record["error"] is None
        assert record["grid"] == [2, 3] and record["patches"] == 6
        assert (record["width"], record["height"]) == (W, H)
        assert np.asarray(record["patch_scores"]).shape == (2, 3)
        weights = np.asarray(record["patch_weights"])
        assert weights.shape == (2, 3) and (weights > 0).all()
        # the image score is the weighted mean of the patch scores
        pooled = (weights * np.asarray(record["patch_scores"])).sum() / weights.sum()
        assert record["score"] == pytest.approx(pooled, abs=1e-5)
    summary = document["summary"]
    assert summary["count"] == 2 and summary["scored"] == 2 and summary["failed"] == 0
    ranked = sorted(results, key=lambda r: r["score"], reverse=True)  # higher is better
    assert summary["ranking"] == [r["dist"] for r in ranked] and summary["best"] == ranked[0]["dist"]
    assert summary["mean"] == pytest.approx((results[0]["score"] + results[1]["score"]) / 2)

    # plain output is the JSON score to 6 decimals
    printed = dict((path, text) for text, path in score_lines(plain.stdout))
    for record in results:
        assert printed[record["dist"]] == f"{record['score']:.6f}"

    # `radn batch` writes exactly the same scores for the same pairs
    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text(f"ref,dist\n{ref.name},{d1.name}\n{ref.name},{d2.name}\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    batch = run("batch", "--pairs", pairs_csv, "-o", out, "--weights", weights_file)
    assert batch.exit_code == 0, batch.output
    assert batch.stdout == ""
    _, rows = read_csv(out)
    from_batch = {Path(row["dist"]).name: float(row["score"]) for row in rows}
    assert from_batch == {Path(r["dist"]).name: r["score"] for r in results}

    # the same command twice gives the same bytes
    assert run("score", ref, d2, d1, "--weights", weights_file).stdout == plain.stdout


def test_score_keeps_going_past_a_bad_image_and_exits_1(pair, weights_file, tmp_path):
    ref, d1, d2 = pair
    missing = tmp_path / "missing.png"
    result = run("score", ref, d1, missing, d2, "--weights", weights_file)
    assert result.exit_code == 1, result.output
    assert [path for _, path in score_lines(result.stdout)] == [str(d1), str(d2)]
    assert result.stderr.splitlines() == [f"radn: error: {missing}: no such file"]

    as_json = run("score", ref, d1, missing, "--weights", weights_file, "--json")
    assert as_json.exit_code == 1, as_json.output
    document = json.loads(as_json.stdout)
    assert [r["error"] for r in document["results"]] == [None, f"{missing}: no such file"]
    assert document["summary"]["failed"] == 1 and document["summary"]["scored"] == 1


# ---------------------------------------------------------------------------------------------------
# radn score: inputs that other tools get wrong


def test_16_bit_png_is_scored_at_16_bits(tmp_path, weights_file):
    """Only the low bytes differ: decoding at 8 bits would make the three distorted images identical."""
    rng = np.random.default_rng(5)
    high = picture(3).astype(np.uint16)
    ref16 = write_png16(tmp_path / "ref16.png", high << 8)
    low = rng.integers(0, 256, high.shape, dtype=np.uint16)
    dist16 = write_png16(tmp_path / "dist16.png", (high << 8) | low)
    ref8 = save(tmp_path / "ref8.png", high.astype(np.uint8))  # what an 8-bit decoder would see
    result = run("score", ref16, dist16, ref8, ref16, "--weights", weights_file, "--json")
    assert result.exit_code == 0, result.output
    scores = [r["score"] for r in json.loads(result.stdout)["results"]]
    assert all(np.isfinite(scores))
    assert len(set(scores)) == 3, scores


def test_rgba_with_transparency_is_scored_with_a_note(pair, tmp_path, weights_file):
    ref, _, _ = pair
    rgba = np.dstack([picture(0), np.full((H, W), 255, np.uint8)])
    rgba[:, : W // 2, 3] = 128
    dist = save(tmp_path / "alpha.png", rgba)
    result = run("score", ref, dist, "--weights", weights_file)
    assert result.exit_code == 0, result.output
    assert [path for _, path in score_lines(result.stdout)] == [str(dist)]
    assert result.stderr.splitlines() == [
        f"radn: note: {dist}: alpha composited over white (50.0% of pixels not opaque)"
    ]


def test_exif_rotated_jpeg_is_scored_upright(pair, tmp_path, weights_file):
    ref_path, _, _ = pair
    upright = picture(0)
    save(tmp_path / "upright.jpg", upright)
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))  # 96x64 stored: turned left
    exif = Image.Exif()
    exif[0x0112] = 6  # display: rotate 90 degrees clockwise
    stored.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    upside_down = save(tmp_path / "upside_down.jpg", np.ascontiguousarray(upright[::-1, ::-1]))
    result = run(
        "score",
        ref_path,
        tmp_path / "upright.jpg",
        tmp_path / "rotated.jpg",
        upside_down,
        "--weights",
        weights_file,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert f"radn: note: {tmp_path / 'rotated.jpg'}: EXIF orientation applied (rotate 90 clockwise)" in (
        result.stderr.splitlines()
    )
    s_upright, s_rotated, s_upside_down = (r["score"] for r in json.loads(result.stdout)["results"])
    # the rotated file, shown upright, scores like the upright file, not like a wrongly turned one
    assert abs(s_rotated - s_upright) < 0.25 * abs(s_upside_down - s_upright)


def test_grayscale_images_are_scored(tmp_path, weights_file):
    grey_ref = save(tmp_path / "grey_ref.png", picture(4), mode="L")
    grey_dist = save(tmp_path / "grey_dist.png", distorted(picture(4), 1, 10.0), mode="L")
    rgb_dist = save(tmp_path / "rgb_dist.png", distorted(picture(4), 1, 10.0))
    result = run("score", grey_ref, grey_dist, rgb_dist, "--weights", weights_file)
    assert result.exit_code == 0, result.output
    assert [path for _, path in score_lines(result.stdout)] == [str(grey_dist), str(rgb_dist)]


def test_different_sizes_are_one_error_line_naming_both_sizes(pair, tmp_path, weights_file):
    ref, _, _ = pair
    big = save(tmp_path / "big.png", picture(0, 96, 128))
    result = run("score", ref, big, "--weights", weights_file)
    assert result.stdout == ""
    assert_one_error(result, "96x64", "128x96", str(big))


def test_image_smaller_than_a_patch_is_one_error_line(pair, tmp_path, weights_file):
    tiny = save(tmp_path / "tiny.png", picture(0, 20, 20))
    for args in ([tiny, tiny, tiny], [pair[0], tiny]):  # as the reference: one line, not one per image
        result = run("score", *args, "--weights", weights_file)
        assert result.stdout == ""
        assert_one_error(result, "20x20", "32x32", str(tiny))


def _bad_input(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """(path, a fragment of the expected message) for each kind of unreadable image."""
    if kind == "truncated":
        good = save(tmp_path / "whole.png", picture(9))
        path = tmp_path / "truncated.png"
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        return path, "truncated or corrupt"
    if kind == "text":
        path = tmp_path / "notes.png"
        path.write_text("this is not an image\n", encoding="utf-8")
        return path, "not a recognised image"
    if kind == "missing":
        return tmp_path / "missing.png", "no such file"
    if kind == "directory":
        path = tmp_path / "folder.png"
        path.mkdir()
        return path, "is a directory"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "text", "missing", "directory"])
@pytest.mark.parametrize("role", ["ref", "dist"])
def test_unreadable_image_is_one_error_line(pair, tmp_path, weights_file, kind, role):
    good = pair[0]
    bad, fragment = _bad_input(kind, tmp_path)
    args = (bad, good) if role == "ref" else (good, bad)
    result = run("score", *args, "--weights", weights_file)
    assert result.stdout == ""
    assert_one_error(result, str(bad), fragment)


def test_verbose_shows_the_traceback(tmp_path, weights_file):
    missing = tmp_path / "missing.png"
    result = run("score", missing, missing, "--weights", weights_file, "--verbose")
    assert result.exit_code == 1, result.output
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == f"radn: error: {missing}: no such file"


def test_error_line_is_not_wrapped_nor_read_as_markup(tmp_path, weights_file):
    long_name = tmp_path / ("[bold]very_" + "long_" * 40 + "name[/bold].png")
    result = run("score", long_name, long_name, "--weights", weights_file, env={"COLUMNS": "40"})
    line = assert_one_error(result)
    assert line == f"radn: error: {long_name}: no such file"


def test_unexpected_exception_is_one_line_without_traceback(pair, weights_file, monkeypatch):
    import radn_cli.images

    def broken(*args, **kwargs):
        raise ValueError("something odd\nsecond line")

    monkeypatch.setattr(radn_cli.images, "load_image", broken)
    result = run("score", *pair[:2], "--weights", weights_file)
    assert_one_error(result, "unexpected ValueError: something odd", "--verbose")


def test_closed_stdout_ends_quietly(pair, weights_file, monkeypatch):
    """`radn score ... | head -1`: the reader goes away; no "unexpected BrokenPipeError" message."""
    import radn_cli.records

    def closed_pipe(score):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(radn_cli.records, "format_score", closed_pipe)
    result = run("score", *pair[:2], "--weights", weights_file)
    assert result.exit_code == 1, result.output
    assert result.output == ""


# ---------------------------------------------------------------------------------------------------
# radn score: weights problems


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_corrupt_weights_are_one_error_line_naming_the_file(pair, weights_file, tmp_path, damage):
    data = bytearray(weights_file.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 3 :]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    result = run("score", *pair[:2], "--weights", bad)
    assert result.stdout == ""
    assert_one_error(result, str(bad))


def test_no_weights_installed_names_the_searched_places(pair, tmp_path, monkeypatch):
    import radn_cli.weights

    nowhere = tmp_path / "not-shipped" / "default.safetensors"
    monkeypatch.setattr(radn_cli.weights, "shipped_weights_path", lambda: nowhere)
    result = run("score", *pair[:2])
    user_file = radn_cli.weights.user_weights_dir() / "default.safetensors"
    assert_one_error(result, "no RADN weights", "--weights", "$RADN_WEIGHTS", str(user_file), str(nowhere))
    listing = run("weights", "list")
    assert_one_error(listing, "no RADN weights")


def test_missing_weights_file_is_one_error_line(pair, tmp_path):
    missing = tmp_path / "nope.safetensors"
    assert_one_error(run("score", *pair[:2], "--weights", missing), str(missing), "not found")
    from_env = run("score", *pair[:2], env={"RADN_WEIGHTS": str(missing)})
    assert_one_error(from_env, str(missing), "$RADN_WEIGHTS")


# ---------------------------------------------------------------------------------------------------
# Usage errors (exit 2) and runtime option errors (exit 1)


@pytest.mark.parametrize(
    "args",
    [
        ["score", "REF", "DIST", "--bogus"],
        ["score", "REF"],
        ["score", "REF", "DIST", "--precision", "int8"],
        ["score", "REF", "DIST", "--batch-size", "0"],
        ["heatmap", "REF", "DIST"],  # no --output
        ["nosuchcommand"],
    ],
)
def test_usage_errors_exit_2(pair, args):
    ref, dist, _ = pair
    result = run(*[{"REF": ref, "DIST": dist}.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_precision_choice_is_case_insensitive_and_lists_the_values(pair, weights_file):
    result = run("score", *pair[:2], "--precision", "FP32", "--weights", weights_file, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["precision"] == "fp32"
    bad = run("score", *pair[:2], "--precision", "fp64")
    assert bad.exit_code == 2 and "fp32" in bad.stderr and "bf16" in bad.stderr


@pytest.mark.parametrize(
    "extra",
    [
        ["--pairs", "pairs.csv", "--ref-dir", "R"],
        ["--ref-dir", "R"],
        ["--pairs", "pairs.csv", "--resume", "--overwrite"],
    ],
)
def test_batch_option_conflicts_exit_2(tmp_path, extra):
    result = run("batch", *extra, "-o", tmp_path / "out.csv")
    assert_one_error(result, code=2)


def test_heatmap_unknown_map_exits_2(pair, tmp_path):
    result = run("heatmap", *pair[:2], "-o", tmp_path / "h.png", "--map", "bogus")
    assert_one_error(result, "--map", "scores, weights, product", code=2)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [(["--device", "tpu"], "tpu"), (["--precision", "fp16", "--device", "cpu"], "fp16")],
)
def test_unusable_device_or_precision_is_one_error_line(pair, weights_file, options, fragment):
    assert_one_error(run("score", *pair[:2], "--weights", weights_file, *options), fragment)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_one_error_line(pair, weights_file):
    assert_one_error(run("score", *pair[:2], "--weights", weights_file, "--device", "cuda"), "CUDA")


# ---------------------------------------------------------------------------------------------------
# radn batch


def test_batch_tid2013_layout(tmp_path, weights_file, weights_id):
    refs, dists = tmp_path / "reference_images", tmp_path / "distorted_images"
    for index, kinds in ((1, (1, 2)), (2, (1,))):
        image = picture(index)
        save(refs / f"I{index:02d}.BMP", image)
        for kind in kinds:
            save(dists / f"i{index:02d}_{kind:02d}_1.bmp", distorted(image, 10 * index + kind, 8.0 * kind))
    save(dists / "i03_01_1.bmp", picture(3))  # no reference I03
    save(refs / "I04.BMP", picture(4))  # no distorted image
    out = tmp_path / "tid.csv"
    result = run("batch", "--ref-dir", refs, "--dist-dir", dists, "-o", out, "--weights", weights_file)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"radn: 1 distorted without reference: {dists / 'i03_01_1.bmp'}" in result.stderr.splitlines()
    assert f"radn: 1 references without distorted: {refs / 'I04.BMP'}" in result.stderr.splitlines()
    assert "3 scored, 0 failed" in result.stderr
    header, rows = read_csv(out)
    assert header == CSV_HEADER
    assert [(Path(r["ref"]).name, Path(r["dist"]).name) for r in rows] == [
        ("I01.BMP", "i01_01_1.bmp"), ("I01.BMP", "i01_02_1.bmp"), ("I02.BMP", "i02_01_1.bmp"),
    ]  # fmt: skip
    for row in rows:
        assert row["error"] == "" and np.isfinite(float(row["score"]))
        assert (row["patches"], row["width"], row["height"]) == ("6", str(W), str(H))
        assert (row["weights"], row["precision"]) == (weights_id, "fp32")


def _pipal(tmp_path: Path) -> tuple[Path, Path]:
    refs, dists = tmp_path / "Ref", tmp_path / "Dis"
    for index in (1, 2):
        image = picture(index)
        save(refs / f"A000{index}.bmp", image)
        save(dists / f"A000{index}_00_00.bmp", distorted(image, index, 5.0))
        save(dists / f"A000{index}_01_00.bmp", distorted(image, index + 10, 25.0))
    return refs, dists


def test_batch_pipal_layout_records_a_bad_file_and_exits_1(tmp_path, weights_file):
    refs, dists = _pipal(tmp_path)
    bad = dists / "A0002_01_00.bmp"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    out = tmp_path / "pipal.csv"
    result = run("batch", "--ref-dir", refs, "--dist-dir", dists, "-o", out, "--weights", weights_file)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("radn: error:")]
    assert len(errors) == 1 and str(bad) in errors[0]
    assert "3 scored, 1 failed" in result.stderr
    header, rows = read_csv(out)
    assert header == CSV_HEADER
    by_dist = {Path(r["dist"]).name: r for r in rows}
    assert sorted(by_dist) == ["A0001_00_00.bmp", "A0001_01_00.bmp", "A0002_00_00.bmp", "A0002_01_00.bmp"]
    assert by_dist["A0002_01_00.bmp"]["score"] == "" and str(bad) in by_dist["A0002_01_00.bmp"]["error"]
    for name in ("A0001_00_00.bmp", "A0001_01_00.bmp", "A0002_00_00.bmp"):
        assert by_dist[name]["error"] == "" and np.isfinite(float(by_dist[name]["score"]))


@pytest.mark.heavy  # several radn batch runs
def test_batch_pairs_list_resume_and_refusals(tmp_path, weights_file):
    _pipal(tmp_path)
    names = ["A0001_00_00", "A0001_01_00", "A0002_00_00"]
    all_pairs, first_pair = tmp_path / "pairs.csv", tmp_path / "first.csv"
    listed = "".join(f"Ref/{n[:5]}.bmp,Dis/{n}.bmp\n" for n in names)
    all_pairs.write_text(f"ref,dist\n{listed}", encoding="utf-8")
    first_pair.write_text(f"ref,dist\nRef/A0001.bmp,Dis/{names[0]}.bmp\n", encoding="utf-8")
    out = tmp_path / "out.csv"

    # a run killed after its first row, in the middle of writing the second
    partial = run("batch", "--pairs", first_pair, "-o", out, "--weights", weights_file)
    assert partial.exit_code == 0, partial.output
    header, [first_row] = read_csv(out)
    assert header == CSV_HEADER and first_row["error"] == ""
    text = out.read_text(encoding="utf-8")
    out.write_text(text + text.splitlines()[1][:30], encoding="utf-8")

    # without --resume an existing output is refused, before anything else is looked at
    refused = run("batch", "--pairs", tmp_path / "no-such-pairs.csv", "-o", out, "--weights", tmp_path / "x")
    assert_one_error(refused, str(out), "--resume", "--overwrite")

    resumed = run("batch", "--pairs", all_pairs, "-o", out, "--weights", weights_file, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "2 scored, 0 failed, 1 already done" in resumed.stderr
    header, rows = read_csv(out)
    assert header == CSV_HEADER
    assert sorted(Path(r["dist"]).stem for r in rows) == names  # each pair once, no torn row
    assert rows[0] == first_row  # the finished row is kept as it was
    assert all(r["error"] == "" and np.isfinite(float(r["score"])) for r in rows)

    # --resume on a finished run does nothing; --overwrite starts again (and scores the same)
    again = run("batch", "--pairs", all_pairs, "-o", out, "--weights", weights_file, "--resume")
    assert again.exit_code == 0 and "0 scored, 0 failed, 3 already done" in again.stderr, again.output
    assert read_csv(out)[1] == rows
    fresh = run("batch", "--pairs", first_pair, "-o", out, "--weights", weights_file, "--overwrite")
    assert fresh.exit_code == 0, fresh.output
    assert read_csv(out) == (CSV_HEADER, [first_row])


def test_batch_refuses_an_unusable_output_before_any_work(tmp_path):
    # folders, pairs and weights that do not exist: the output is what must be reported
    common = ["--ref-dir", tmp_path / "R", "--dist-dir", tmp_path / "D", "--weights", tmp_path / "w"]
    missing_folder = tmp_path / "no" / "such" / "folder" / "out.csv"
    assert_one_error(run("batch", *common, "-o", missing_folder), "folder does not exist")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    assert_one_error(run("batch", *common, "-o", a_file / "out.csv"), str(a_file), "not a folder")
    as_folder = run("batch", *common, "-o", tmp_path)  # --output is a file option: a usage error
    assert as_folder.exit_code == 2 and "Invalid value for '--output'" in as_folder.stderr, as_folder.output
    assert not missing_folder.parent.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_batch_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run("batch", "--ref-dir", tmp_path, "--dist-dir", tmp_path, "-o", folder / "out.csv")
        assert_one_error(result, "cannot create files")
    finally:
        folder.chmod(0o755)


def test_batch_folders_that_give_no_pairs_are_one_error_line(tmp_path, weights_file):
    refs, dists = _pipal(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out.csv"
    assert_one_error(
        run("batch", "--ref-dir", refs, "--dist-dir", empty, "-o", out, "--weights", weights_file),
        str(empty),
        "no image files",
    )
    strangers = tmp_path / "strangers"
    save(strangers / "B0001_00_00.bmp", picture(4))
    assert_one_error(
        run("batch", "--ref-dir", refs, "--dist-dir", strangers, "-o", out, "--weights", weights_file),
        "none of the 1 distorted images matches",
    )
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------
# Heatmaps


def test_heatmap_command_writes_png_and_raw_csv(pair, tmp_path, weights_file):
    ref, d1, _ = pair
    png, raw = tmp_path / "out.png", tmp_path / "out.csv"
    options = ["-o", png, "--map", "contribution", "--raw", raw, "--weights", weights_file]
    result = run("heatmap", ref, d1, *options)
    assert result.exit_code == 0, result.output
    [(score, path)] = score_lines(result.stdout)
    assert path == str(d1)
    assert result.stderr.splitlines() == [f"radn: wrote {png} and {raw}"]
    with Image.open(png) as image:
        image.load()
        assert image.width >= W and image.height >= H
    header, rows = read_csv(raw)
    assert header == "row,col,x,y,value"
    assert [(r["row"], r["col"], r["x"], r["y"]) for r in rows] == [
        (str(r), str(c), str(32 * c), str(32 * r)) for r in range(2) for c in range(3)
    ]
    # the contributions add up to the image score
    assert sum(float(r["value"]) for r in rows) == pytest.approx(float(score), abs=2e-6)


def test_score_heatmap_option_writes_one_file_per_image(pair, tmp_path, weights_file):
    ref, d1, d2 = pair
    template = tmp_path / "maps" / "h.png"
    template.parent.mkdir()
    result = run("score", ref, d1, d2, "--heatmap", template, "--weights", weights_file)
    assert result.exit_code == 0, result.output
    assert len(score_lines(result.stdout)) == 2
    written = sorted(p.name for p in template.parent.iterdir())
    assert written == ["h_d1.png", "h_d2.png"]
    for name in written:
        with Image.open(template.parent / name) as image:
            assert image.width >= W and image.height >= H


def test_heatmap_into_a_missing_folder_is_refused_before_scoring(pair, tmp_path):
    folder = tmp_path / "no-such-folder"
    no_weights = tmp_path / "none.safetensors"  # reported only if the model were loaded first
    result = run("heatmap", *pair[:2], "-o", folder / "h.png", "--weights", no_weights)
    assert_one_error(result, str(folder), "folder does not exist")
    result = run("heatmap", *pair[:2], "-o", tmp_path / "h.png", "--raw", folder / "h.csv", "-w", no_weights)
    assert_one_error(result, str(folder), "folder does not exist")
    result = run("score", *pair[:2], "--heatmap", folder / "h.png", "--weights", no_weights)
    assert_one_error(result, str(folder), "folder does not exist")


# ---------------------------------------------------------------------------------------------------
# Terminal output


def test_terminal_gets_heatmaps_and_ranking_on_stderr_only(pair, weights_file):
    ref, d1, d2 = pair
    terminal = {"TTY_COMPATIBLE": "1", "COLUMNS": "80"}  # Rich then treats stderr as a terminal
    result = run("score", ref, d1, d2, "--weights", weights_file, env=terminal)
    assert result.exit_code == 0, result.output
    assert [path for _, path in score_lines(result.stdout)] == [str(d1), str(d2)]  # stdout unchanged
    assert "▀" in result.stderr and "ranking (higher is better)" in result.stderr
    # the temporary paths are too long for 80 columns: the map titles name the files
    assert len(f"{d1}: patch score map (2x3 patches), score -0.0000") > 80
    assert f"\n{d1.name}: patch score map (2x3 patches), score " in "\n" + result.stderr
    assert max(len(line) for line in result.stderr.splitlines()) <= 80
    quiet = run("score", ref, d1, "--weights", weights_file, "--quiet", env=terminal)
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.output


@pytest.mark.skipif(shutil.which("script") is None or sys.platform != "linux", reason="needs `script`")
def test_real_terminal_with_stdout_redirected(pair, weights_file, tmp_path):
    """stderr on a pseudo-terminal (util-linux `script`), stdout to a file: the map is drawn in colour
    on the terminal, stdout holds the score line only. A new process: about 5 s."""
    ref, d1, _ = pair
    out = tmp_path / "stdout.txt"
    radn = [sys.executable, "-m", "radn_cli", "score", str(ref), str(d1), "--weights", str(weights_file)]
    command = " ".join(_quote(a) for a in radn) + f" > {_quote(str(out))}"
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"}
    env.pop("RADN_VERBOSE", None)
    env.pop("TTY_COMPATIBLE", None)
    env.pop("FORCE_COLOR", None)
    env.pop("NO_COLOR", None)
    done = subprocess.run(["script", "-qec", command, "/dev/null"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout.decode(errors="replace")
    terminal = done.stdout.decode("utf-8", errors="replace")
    assert "▀" in terminal and "\x1b[" in terminal and "patch score map" in terminal
    assert [path for _, path in score_lines(out.read_text(encoding="utf-8"))] == [str(d1)]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------------------------------------------
# radn weights


def test_weights_list_and_info(weights_file, weights_id):
    listing = run("weights", "list", env={"RADN_WEIGHTS": str(weights_file)})
    assert listing.exit_code == 0, listing.output
    assert listing.stdout == f"{weights_id}\tradn\t$RADN_WEIGHTS\t{weights_file}\n"

    info = run("weights", "info", weights_file)
    assert info.exit_code == 0, info.output
    document = json.loads(info.stdout)
    assert document["checksum"] == "ok" and document["weights"] == weights_id
    assert document["found_by"] == "argument" and document["path"] == str(weights_file)
    assert document["name"] == "test-seeded" and document["score_direction"] == "higher_is_better"
    assert document["config"]["arch"] == "radn" and document["metrics"] == {"note": "untrained"}

    in_use = run("weights", "info", env={"RADN_WEIGHTS": str(weights_file)})
    assert in_use.exit_code == 0, in_use.output
    assert json.loads(in_use.stdout)["found_by"] == "$RADN_WEIGHTS"


def test_weights_info_on_a_missing_or_corrupt_file(weights_file, tmp_path):
    missing = tmp_path / "missing.safetensors"
    line = assert_one_error(run("weights", "info", missing), str(missing), "no such file")
    assert "--weights" not in line
    data = bytearray(weights_file.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    assert_one_error(run("weights", "info", bad), str(bad), "sha256")


def test_weights_convert_legacy_checkpoint_then_score(pair, tmp_path):
    ref, d1, _ = pair
    model = seeded_model().float()
    checkpoint = tmp_path / "RADN_legacy.pth"
    state = {f"module.{name}": tensor for name, tensor in model.state_dict().items()}
    torch.save(state, checkpoint, _use_new_zipfile_serialization=False)
    converted = tmp_path / "converted.safetensors"
    result = run("weights", "convert", checkpoint, "-o", converted)
    assert result.exit_code == 0, result.output
    fields = result.stdout.rstrip("\n").split("\t")
    assert fields[0].startswith("RADN_legacy@") and fields[1:] == ["radn", str(converted)]

    scored = run("score", ref, d1, "--weights", converted, "--json")
    assert scored.exit_code == 0, scored.output
    cli_score = json.loads(scored.stdout)["results"][0]["score"]

    from radn_cli.images import load_image
    from radn_cli.tiling import tile

    ref_patches, grid = tile(load_image(ref).tensor[None])
    dist_patches, _ = tile(load_image(d1).tensor[None])
    with torch.no_grad():
        expected = float(model(dist_patches, ref_patches).score)
    assert grid == (2, 3)
    assert cli_score == pytest.approx(expected, abs=1e-5)


def test_weights_convert_refuses_a_non_checkpoint(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02not a pickle at all")
    assert_one_error(run("weights", "convert", junk, "-o", tmp_path / "w.safetensors"), str(junk))
    assert not (tmp_path / "w.safetensors").exists()


def test_weights_install_makes_the_default(pair, weights_file, weights_id):
    from radn_cli.weights import user_weights_dir

    result = run("weights", "install", weights_file)
    assert result.exit_code == 0, result.output
    target = user_weights_dir() / "default.safetensors"
    assert result.stdout == f"{target}\n" and target.is_file()
    listing = run("weights", "list")
    assert listing.stdout.startswith(f"{weights_id}\tradn\tuser data dir\t{target}\n")
    default = run("score", *pair[:2], "--json")  # no --weights: the installed file is used
    assert default.exit_code == 0, default.output
    model = json.loads(default.stdout)["model"]
    assert (model["weights"], model["path"]) == (weights_id, str(target))


# ---------------------------------------------------------------------------------------------------
# Entry points


def test_python_dash_m_help_in_a_subprocess():
    command = [sys.executable, "-m", "radn_cli", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("score", "heatmap", "batch", "weights"):
        assert command in done.stdout


def test_version():
    result = run("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"radn {__version__}\n"


def test_no_arguments_shows_help():
    result = run()
    assert result.exit_code in (0, 2), result.output  # Click prints help; exit code depends on the version
    assert "score" in result.output


@pytest.mark.parametrize("has_kernels", [False, True])
def test_bf16_on_a_cpu_without_bf16_kernels_warns_once_and_still_scores(
    pair, weights_file, monkeypatch, has_kernels
):
    import radn_cli.devices

    monkeypatch.setattr(radn_cli.devices, "cpu_has_bf16_kernels", lambda: has_kernels)
    ref, d1, _ = pair
    result = run("score", ref, d1, "--weights", weights_file, "--precision", "bf16", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert len(score_lines(result.stdout)) == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("radn: warning:")]
    if has_kernels:
        assert warnings == []
    else:
        assert len(warnings) == 1 and "--precision fp32" in warnings[0]


def test_batch_pairs_per_step_gives_the_same_rows(pair, weights_file, tmp_path):
    ref, d1, d2 = pair
    listed = tmp_path / "pairs.csv"
    listed.write_text(f"ref,dist\n{ref},{d1}\n{ref},{d2}\n{ref},{ref}\n", encoding="utf-8")
    scores = {}
    for per_step in ("1", "3"):
        out = tmp_path / f"out{per_step}.csv"
        result = run(
            "batch", "--pairs", listed, "-o", out, "--weights", weights_file, "--pairs-per-step", per_step
        )
        assert result.exit_code == 0, result.output
        assert "3 scored, 0 failed" in result.stderr
        _, rows = read_csv(out)
        scores[per_step] = {r["dist"]: float(r["score"]) for r in rows}
    assert scores["1"].keys() == scores["3"].keys() and len(scores["1"]) == 3
    for dist, value in scores["1"].items():
        assert scores["3"][dist] == pytest.approx(value, abs=1e-5)


def test_score_heatmaps_of_images_with_the_same_name_do_not_overwrite_each_other(
    pair, tmp_path, weights_file
):
    ref, d1, d2 = pair
    a, b = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    a.parent.mkdir()
    b.parent.mkdir()
    shutil.copy(d1, a)
    shutil.copy(d2, b)
    template = tmp_path / "maps" / "h.png"
    template.parent.mkdir()
    result = run("score", ref, a, b, "--heatmap", template, "--weights", weights_file)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in template.parent.iterdir()) == ["h_a_x.png", "h_b_x.png"]
    assert (template.parent / "h_a_x.png").read_bytes() != (template.parent / "h_b_x.png").read_bytes()


def test_heatmap_paths_are_unique_and_readable(tmp_path):
    from radn_cli.records import heatmap_paths

    t = tmp_path / "m.png"
    assert heatmap_paths(t, [tmp_path / "d.png"]) == {tmp_path / "d.png": t}
    one, two = tmp_path / "p" / "x.png", tmp_path / "q" / "r" / "x.png"
    names = {k: v.name for k, v in heatmap_paths(t, [one, two, tmp_path / "y.png"]).items()}
    assert names == {one: "m_p_x.png", two: "m_q_r_x.png", tmp_path / "y.png": "m_y.png"}
    png, jpg = tmp_path / "x.png", tmp_path / "x.jpg"
    assert {v.name for v in heatmap_paths(t, [png, jpg]).values()} == {"m_x_png.png", "m_x_jpg.png"}
    named = heatmap_paths(tmp_path / "{name}-map.png", [one, two])
    assert {v.name for v in named.values()} == {"p_x-map.png", "q_r_x-map.png"}
    assert len(heatmap_paths(t, [one, one])) == 1  # the same image twice: one file


@pytest.mark.parametrize(
    "args, expected",
    [
        (["score"], "radn: error: Missing argument 'REF'. (try 'radn score --help')"),
        (["score", "a.png", "b.png", "--precision", "fp8"], "Invalid value for '--precision'"),
        (["bogus"], "radn: error: No such command 'bogus'. (try 'radn --help')"),
    ],
)
def test_usage_errors_from_the_entry_point_are_one_line_exit_2(args, expected):
    """The installed `radn` (and `python -m radn_cli`) turn Typer's usage-error panel into one line."""
    done = subprocess.run(
        [sys.executable, "-m", "radn_cli", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("radn: error: ") and expected in lines[0]


def test_ctrl_c_while_pytorch_loads_is_held_then_raised_in_our_code():
    import signal as _signal

    from radn_cli.cli.console import ctrl_c_deferred as _ctrl_c_deferred

    assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler  # conftest: as in a terminal
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_deferred():
            os.kill(os.getpid(), _signal.SIGINT)
            for _ in range(1000):  # give the interpreter every chance to run the handler here
                pass
            reached_end = True  # the Ctrl-C did not interrupt the block
    assert reached_end
    assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler  # restored
    with _ctrl_c_deferred():  # no Ctrl-C: nothing raised
        pass


def test_a_process_that_ignores_ctrl_c_keeps_ignoring_it_while_pytorch_loads():
    import signal as _signal

    from radn_cli.cli.console import ctrl_c_deferred as _ctrl_c_deferred

    terminal = _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # as `nohup radn batch ... &` starts it
    try:
        with _ctrl_c_deferred():
            os.kill(os.getpid(), _signal.SIGINT)
            for _ in range(1000):
                pass
        assert _signal.getsignal(_signal.SIGINT) is _signal.SIG_IGN
    finally:
        _signal.signal(_signal.SIGINT, terminal)


def test_verbose_shows_the_traceback_of_a_distorted_image_that_fails(pair, weights_file, tmp_path):
    result = run("score", pair[0], tmp_path / "missing.png", "--weights", weights_file, "-v")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "NoneType: None" not in result.stderr
    assert result.stderr.splitlines()[-1] == f"radn: error: {tmp_path / 'missing.png'}: no such file"


def test_weights_commands_check_their_files_before_loading_pytorch(tmp_path):
    """A missing file is reported by the light path checks (tests run in-process, so timing is for
    the subprocess test below; here: the message and the exit code)."""
    for args in (
        ("weights", "info"),
        ("weights", "install"),
        ("weights", "convert", "-o", tmp_path / "o.st"),
    ):
        missing = tmp_path / "nothing.safetensors"
        result = run(*args[:2], missing, *args[2:])
        assert_one_error(result, str(missing), "no such file")


def test_usage_and_missing_file_errors_come_before_pytorch_loads(tmp_path):
    code = (
        "import sys\n"
        "from radn_cli.cli import main\n"
        "sys.argv = ['radn'] + sys.argv[1:]\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('torch' in sys.modules, file=sys.stderr)\n"
    )
    for args in (["batch"], ["score", str(tmp_path / "a.png"), "b.png"], ["train", "--steps", "0"]):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode in (1, 2), done.stderr
        lines = done.stderr.splitlines()
        assert lines[0].startswith("radn: error: ") and lines[-1] == "False", lines
