"""Issue 26, the viewing scale (``--scale``): parsed and refused in one line, applied to both images alike
(antialiased, never enlarging), recorded in the CSV, the JSON and the eval report, a resumed batch at
another scale scoring its pairs again, heatmaps still drawn at input resolution, and native exactly as
before.

Images are small (64x96 RGB: a 2x3 patch grid, one patch at --scale 0.5); the model is the seeded one,
loaded once.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import assert_one_error, distorted, picture, run, save

from radn_cli.pairing import Pair
from radn_cli.viewing import Scale, heatmap_at_input, parse_scale, resize, scaled_pixels

torch.set_num_threads(1)

H, W = 64, 96
_LOADED: dict = {}


@pytest.fixture(autouse=True)
def _seeded_weights_loaded_once(monkeypatch, weights_file):
    import radn_cli.weights

    real = radn_cli.weights.load_weights

    def load_weights(path, *, verify=True):
        if "seeded" not in _LOADED:
            _LOADED["seeded"] = real(weights_file, verify=verify)
        return _LOADED["seeded"]

    monkeypatch.setattr(radn_cli.weights, "load_weights", load_weights)


@pytest.fixture(scope="module")
def scorer(weights_file):
    from radn_cli import load_scorer

    return load_scorer(weights_file, device="cpu")


@pytest.fixture
def files(tmp_path):
    """ref.png and two distorted versions, 64x96."""
    image = picture(3, H, W)
    ref = save(tmp_path / "ref.png", image)
    return (
        ref,
        save(tmp_path / "d1.png", distorted(image, 1, 8.0)),
        save(tmp_path / "d2.png", distorted(image, 2, 25.0)),
    )


# ---------------------------------------------------------------------------------------------------
# Parsing and sizes


@pytest.mark.parametrize(
    ("text", "canonical", "long_side", "factor"),
    [
        ("native", "native", None, None),
        (" Native ", "native", None, None),
        ("1024", "1024", 1024, None),
        ("+512", "512", 512, None),
        ("0.5", "0.5", None, 0.5),
        (".50", "0.5", None, 0.5),
        ("1e-1", "0.1", None, 0.1),
        ("1.0", "native", None, None),  # a factor of 1 changes nothing
    ],
)
def test_scale_texts(text, canonical, long_side, factor):
    scale = parse_scale(text)
    assert (scale.text, scale.long_side, scale.factor) == (canonical, long_side, factor)
    assert scale.native == (canonical == "native")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0", "must be above 0"),
        ("0.0", "must be above 0"),
        ("-1", "must be above 0"),
        ("-0.5", "must be above 0"),
        ("big", "must be native, a long side in pixels (e.g. 1024) or a factor up to 1 (e.g. 0.5)"),
        ("", "must be native"),
        ("nan", "must be native"),
        ("inf", "must be native"),
        ("2.0", "would upscale: a factor goes up to 1"),
        ("1.5", "would upscale"),
        ("16", "a long side of at least 32 px (one patch)"),
    ],
)
def test_bad_scales_are_one_line_usage_errors(text, fragment, files):
    with pytest.raises(ValueError) as info:
        parse_scale(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    ref, d1, _ = files
    line = assert_one_error(run("score", ref, d1, "--scale", text), "--scale", fragment, code=2)
    assert "radn score --help" in line


def test_sizes_keep_the_aspect_and_never_enlarge():
    assert parse_scale("1024").size(4000, 3000) == (1024, 768)
    assert parse_scale("1024").size(3000, 4000) == (768, 1024)  # the long side, portrait too
    assert parse_scale("512").size(512, 384) == (512, 384)  # the long side itself: unchanged
    assert parse_scale("0.5").size(513, 385) == (257, 193)  # halves round up
    assert Scale().size(7, 9) == (7, 9)
    with pytest.raises(Exception, match=r"x\.png: --scale 1024 would upscale this 512x384 image"):
        parse_scale("1024").size(512, 384, "x.png")
    with pytest.raises(Exception, match="smaller than one 32x32 patch"):
        parse_scale("0.1").size(300, 200, "x.png")


def test_resize_is_antialiased_clamped_and_leaves_native_alone():
    stripes = torch.zeros(3, 64, 64)
    stripes[:, :, ::2] = 1.0  # one-pixel stripes: sampled without a low-pass they alias to 0 or 1
    half = resize(stripes, (32, 32))
    assert half.shape == (3, 32, 32) and half.dtype == torch.float32 and half.is_contiguous()
    assert torch.allclose(half[:, 4:-4, 4:-4], torch.full((3, 24, 24), 0.5), atol=0.02)
    edge = torch.zeros(3, 64, 64)
    edge[:, :, 32:] = 1.0
    assert 0.0 <= float(resize(edge, (24, 24)).min()) and float(resize(edge, (24, 24)).max()) <= 1.0
    assert resize(stripes, (64, 64)) is stripes
    image = type("Loaded", (), {"tensor": stripes, "width": 64, "height": 64, "path": "s.png"})()
    assert scaled_pixels(image, Scale()) is None  # native: the decoded pixels are scored


# ---------------------------------------------------------------------------------------------------
# The pipeline


def test_native_scores_are_bit_identical_and_scaled_pairs_are_resized(scorer, files):
    from radn_cli.images import load_image
    from radn_cli.pipeline import score_pairs

    ref, d1, d2 = files
    pairs = [Pair(ref, d1), Pair(ref, d2)]
    before = [scorer.score_pair(load_image(ref).tensor, load_image(p).tensor) for p in (d1, d2)]
    native = list(score_pairs(scorer, pairs))
    assert all(item.scaled is None for item in native)
    for item, expected in zip(native, before):
        assert item.result.score == expected.score  # bit for bit
        assert torch.equal(item.result.patch_scores, expected.patch_scores)
    half = list(score_pairs(scorer, pairs, scale="0.5"))
    for item in half:
        assert (item.ref.width, item.ref.height) == (W, H)  # the images as decoded are kept
        assert (item.result.width, item.result.height, item.result.grid) == (W // 2, H // 2, (1, 1))
        assert item.tensors[1].shape == (3, H // 2, W // 2)
    expected = scorer.score_pair(
        resize(load_image(ref).tensor, (48, 32)), resize(load_image(d1).tensor, (48, 32))
    )
    assert half[0].result.score == expected.score
    assert half[0].result.score != native[0].result.score
    too_big = list(score_pairs(scorer, pairs[:1], scale="1024"))  # a pair error, the run goes on
    assert too_big[0].result is None and "--scale 1024 would upscale this 96x64 image" in too_big[0].error


def test_classical_metrics_see_the_scaled_pair_too(files):
    from radn_cli.evaluation.metrics import METRICS
    from radn_cli.evaluation.runner import measure
    from radn_cli.pipeline import score_pairs

    ref, _, d2 = files
    native = next(score_pairs(None, [Pair(ref, d2)]))
    half = next(score_pairs(None, [Pair(ref, d2)], scale="0.5"))
    assert half.scaled[0].shape == (3, H // 2, W // 2)
    assert measure(METRICS["psnr"], half) != measure(METRICS["psnr"], native)


# ---------------------------------------------------------------------------------------------------
# Heatmaps at input resolution


def test_a_scaled_map_is_drawn_on_the_input_with_the_legend_of_the_patch_map():
    from types import SimpleNamespace

    from radn_cli.heatmap import image_pixels, render_overlay

    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.uniform(1, 5, (2, 3)).astype(np.float32))
    weights = torch.from_numpy(rng.uniform(0.5, 2, (2, 3)).astype(np.float32))
    pixels = torch.from_numpy(picture(1, 128, 192)).permute(2, 0, 1).float() / 255
    image = SimpleNamespace(tensor=pixels, width=192, height=128, path="d.png")
    # scored at 96x64 (2x3 patches of 32 px): 64 px patches on the input
    result = SimpleNamespace(patch_scores=scores, patch_weights=weights, grid=(2, 3), width=96, height=64)
    for kind in ("scores", "product"):
        drawn = np.asarray(heatmap_at_input(image, result, kind=kind, title="t", value_range=None))
        values = scores.numpy().astype(np.float64)
        if kind == "product":
            values = (weights * scores / weights.sum()).numpy().astype(np.float64)
        native = np.asarray(render_overlay(image_pixels(image), values, kind=kind, patch=64, title="t"))
        assert drawn.shape == native.shape  # input size, the legend below it
        assert np.array_equal(drawn[128:], native[128:])  # the legend of the per-patch map itself
        for row in range(2):
            for col in range(3):  # inside each patch (away from the lines between patches)
                y, x = slice(64 * row + 8, 64 * row + 56), slice(64 * col + 8, 64 * col + 56)
                assert np.array_equal(drawn[y, x], native[y, x]), (kind, row, col)
    bare = heatmap_at_input(image, result, kind="scores", legend=False)
    assert bare.size == (192, 128)


def test_native_maps_are_drawn_as_before(scorer, files):
    from radn_cli.heatmap import heatmap_image
    from radn_cli.images import load_image

    ref, d1, _ = files
    image = load_image(d1)
    result = scorer.score_pair(load_image(ref).tensor, image.tensor)
    options = dict(kind="scores", title="x", value_range=(1.0, 5.0))
    assert np.array_equal(
        np.asarray(heatmap_at_input(image, result, **options)),
        np.asarray(heatmap_image(image, result, **options)),
    )


def test_heatmap_command_at_a_scale_draws_at_input_resolution(files, weights_file, tmp_path):
    from PIL import Image

    from radn_cli.heatmap import legend_height

    ref, d1, _ = files
    out, raw = tmp_path / "h.png", tmp_path / "v.npy"
    result = run("heatmap", ref, d1, "-o", out, "--raw", raw, "--scale", "0.5", "--weights", weights_file)
    assert result.exit_code == 0, result.output
    with Image.open(out) as drawn:
        assert drawn.size == (max(W, 320), H + legend_height(W, H, f"{d1.name}: score 0.0000"))
    assert np.load(raw).shape == (1, 1)  # the per-patch values, on the grid scored


# ---------------------------------------------------------------------------------------------------
# Recorded: JSON, CSV, eval


def test_score_json_records_the_scale_and_plain_output_is_unchanged(files, weights_file):
    ref, d1, d2 = files
    native = json.loads(run("score", ref, d1, d2, "--weights", weights_file, "--json").stdout)
    assert native["scale"] == "native" and [r["width"] for r in native["results"]] == [W, W]
    half = json.loads(run("score", ref, d1, d2, "--weights", weights_file, "--json", "--scale", "0.5").stdout)
    assert half["scale"] == "0.5" and half["results"][0]["grid"] == [1, 1]
    assert (half["results"][0]["width"], half["results"][0]["height"]) == (W // 2, H // 2)
    plain = run("score", ref, d1, d2, "--weights", weights_file)
    assert plain.stderr == ""
    assert plain.stdout == "".join(f"{r['score']:.6f}\t{r['dist']}\n" for r in native["results"])
    same = run("score", ref, d1, d2, "--weights", weights_file, "--scale", "native")
    assert same.stdout == plain.stdout


def test_score_refuses_a_reference_it_would_enlarge_before_the_model_loads(files, monkeypatch):
    import radn_cli.cli.score

    monkeypatch.setattr(radn_cli.cli.score, "make_scorer", lambda *a, **k: pytest.fail("model loaded"))
    ref, d1, _ = files
    assert_one_error(run("score", ref, d1, "--scale", "4096"), f"{ref}: --scale 4096 would upscale", code=1)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_batch_records_the_scale_and_resume_at_another_scale_scores_again(files, weights_file, tmp_path):
    ref, d1, d2 = files
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"ref,dist\n{ref},{d1}\n{ref},{d2}\n")
    out = tmp_path / "scores.csv"
    first = run("batch", "--pairs", pairs, "-o", out, "--weights", weights_file)
    assert first.exit_code == 0, first.output
    assert out.read_text().splitlines()[0].endswith(",error,scale")
    assert [r["scale"] for r in _rows(out)] == ["native", "native"]
    again = run("batch", "--pairs", pairs, "-o", out, "--weights", weights_file, "--resume")
    assert "0 scored, 0 failed, 2 already done" in again.stderr
    half = run("batch", "--pairs", pairs, "-o", out, "--weights", weights_file, "--resume", "--scale", "0.5")
    assert half.exit_code == 0, half.output
    assert "2 scored, 0 failed, 0 already done" in half.stderr  # not done at that scale
    rows = _rows(out)
    assert [(r["scale"], r["width"], r["patches"]) for r in rows] == [
        ("native", str(W), "6"),
        ("native", str(W), "6"),
        ("0.5", str(W // 2), "1"),
        ("0.5", str(W // 2), "1"),
    ]
    big = run(
        "batch", "--pairs", pairs, "-o", tmp_path / "big.csv", "--weights", weights_file, "--scale", "4096"
    )
    assert big.exit_code == 1 and "radn: 0 scored, 2 failed" in big.stderr
    assert all("would upscale" in r["error"] and r["scale"] == "4096" for r in _rows(tmp_path / "big.csv"))


def test_eval_at_a_scale_says_so(files, weights_file, tmp_path):
    ref, d1, d2 = files
    d3 = save(tmp_path / "d3.png", distorted(picture(3, H, W), 3, 15.0))
    d4 = save(tmp_path / "d4.png", distorted(picture(3, H, W), 4, 40.0))
    db = tmp_path / "db.csv"
    db.write_text(f"ref,dist,mos\n{ref},{d1},4\n{ref},{d2},2\n{ref},{d3},3\n{ref},{d4},1\n")
    native = json.loads(run("eval", db, "--metric", "psnr", "--json").stdout)
    half = run("eval", db, "--metric", "psnr,radn", "--json", "--scale", "0.5", "--weights", weights_file)
    assert half.exit_code == 0, half.output
    assert native["scale"] == "native" and json.loads(half.stdout)["scale"] == "0.5"
    assert "scored at --scale 0.5" in half.stderr
    assert_one_error(run("eval", db, "--scale", "x"), "--scale must be native", code=2)
