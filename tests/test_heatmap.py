"""Tests for radn_cli.heatmap: patch maps, overlay rendering, raw CSV and terminal preview."""

from __future__ import annotations

import csv
import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw
from rich.cells import cell_len
from rich.console import Console

from radn_cli import heatmap as hm
from radn_cli.heatmap.colormap import srgb_to_oklab

SCORES = np.array([0.2, 0.5, 0.9, 0.4, 0.7, 0.1])
WEIGHTS = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 2.0])
GREY = 128


def _grey(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def _blend(color: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """What render_overlay makes of a grey pixel under ``color``."""
    a = round(alpha * 256)
    return (GREY * (256 - a) + color.astype(int) * a + 128) >> 8


def _luma(rgb) -> float:
    r, g, b = (float(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# ------------------------------------------------------------------------------------------ patch_map


def test_patch_map_scores_and_weights_are_reshaped_row_major():
    scores = hm.patch_map(SCORES, WEIGHTS, (2, 3), "scores")
    weights = hm.patch_map(SCORES, WEIGHTS, (2, 3), "weights")
    assert scores.dtype == np.float64 and scores.shape == (2, 3)
    assert scores.tolist() == [[0.2, 0.5, 0.9], [0.4, 0.7, 0.1]]
    assert weights.tolist() == [[1.0, 2.0, 0.5], [3.0, 1.5, 2.0]]


def test_patch_map_contribution_by_hand_and_sums_to_image_score():
    contrib = hm.patch_map(SCORES.tolist(), WEIGHTS.tolist(), (2, 3), "contribution")
    total_w = 1.0 + 2.0 + 0.5 + 3.0 + 1.5 + 2.0  # 10
    expected = [
        [1.0 * 0.2 / total_w, 2.0 * 0.5 / total_w, 0.5 * 0.9 / total_w],
        [3.0 * 0.4 / total_w, 1.5 * 0.7 / total_w, 2.0 * 0.1 / total_w],
    ]
    np.testing.assert_allclose(contrib, expected, rtol=1e-15)
    image_score = (0.2 + 1.0 + 0.45 + 1.2 + 1.05 + 0.2) / total_w  # sum(w s) / sum(w) = 0.41
    assert contrib.sum() == pytest.approx(image_score, rel=1e-12)
    assert contrib.sum() == pytest.approx(np.average(SCORES, weights=WEIGHTS), rel=1e-12)


def test_patch_map_accepts_2d_input_and_returns_a_copy():
    scores = SCORES.reshape(2, 3)
    out = hm.patch_map(scores, WEIGHTS.reshape(1, 6), (2, 3), "scores")
    out[0, 0] = 99.0
    assert scores[0, 0] == 0.2


@pytest.mark.parametrize(
    ("scores", "weights", "grid", "kind"),
    [
        (SCORES, WEIGHTS, (2, 3), "nope"),
        (SCORES, WEIGHTS, (3, 3), "scores"),
        (SCORES[:5], WEIGHTS, (2, 3), "scores"),
        (SCORES, np.zeros(6), (2, 3), "contribution"),
        (SCORES, -WEIGHTS, (2, 3), "weights"),
        (SCORES, np.full(6, np.nan), (2, 3), "weights"),
        (SCORES, WEIGHTS, (0, 3), "scores"),
    ],
)
def test_patch_map_rejects_bad_input(scores, weights, grid, kind):
    with pytest.raises(ValueError):
        hm.patch_map(scores, weights, grid, kind)


def test_maps_and_labels_agree():
    assert hm.MAPS == ("scores", "weights", "product") and hm.DEFAULT_MAP == "scores"
    assert hm.MAP_ALIASES == {"contribution": "product"}  # the former name still works
    assert set(hm.MAP_LABELS) == set(hm.MAPS) | set(hm.MAP_ALIASES)
    contribution = hm.patch_map(SCORES, WEIGHTS, (2, 3), "contribution")
    assert np.array_equal(contribution, hm.patch_map(SCORES, WEIGHTS, (2, 3), "product"))


# ------------------------------------------------------------------------------------------- colormap


def test_colormap_is_dark_to_bright_and_monotonic_in_lightness():
    lut = hm.COLORMAP
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (0x44, 0x01, 0x54) and tuple(lut[-1]) == (0xFD, 0xE7, 0x25)
    lightness = srgb_to_oklab(lut / 255.0)[:, 0]
    assert np.all(np.diff(lightness) > -1e-3)  # up to uint8 rounding
    assert np.all(np.diff(lightness[::8]) > 0.01)


# ------------------------------------------------------------------------------------- render_overlay


def test_render_overlay_size_is_image_plus_legend():
    values = np.linspace(0, 1, 12 * 16).reshape(12, 16)
    out = hm.render_overlay(_grey(384, 512), values, kind="scores")
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    assert out.size == (512, 384 + hm.legend_height(512, 384))
    titled = hm.render_overlay(_grey(384, 512), values, kind="scores", title="a title")
    assert titled.size == (512, 384 + hm.legend_height(512, 384, "a title"))
    assert hm.legend_height(512, 384, "a title") > hm.legend_height(512, 384)


def test_legend_grows_with_the_image_for_readability():
    assert hm.legend_height(1920, 1080) > hm.legend_height(512, 384) >= 40
    out = hm.render_overlay(_grey(1080, 1920), np.ones((33, 60)), kind="weights", title="t")
    assert out.size == (1920, 1080 + hm.legend_height(1920, 1080, "t"))


def test_tiny_image_gets_a_wide_enough_canvas():
    out = hm.render_overlay(_grey(32, 32), [[0.5]], kind="contribution")
    assert out.size == (320, 32 + hm.legend_height(32, 32))


def test_high_and_low_patches_follow_the_colormap():
    values = np.full((3, 4), 0.5)
    values[0, 0] = 0.0  # low
    values[2, 3] = 1.0  # high
    out = np.asarray(hm.render_overlay(_grey(96, 128), values, kind="scores"))
    low = out[16, 16]  # centre of patch (0, 0)
    high = out[2 * 32 + 16, 3 * 32 + 16]  # centre of patch (2, 3)
    np.testing.assert_array_equal(low, _blend(hm.COLORMAP[0]))
    np.testing.assert_array_equal(high, _blend(hm.COLORMAP[255]))
    assert _luma(high) > _luma(low) + 50
    # viridis-like: low is purple (blue > green), high is yellow (red, green > blue)
    assert low[2] > low[1] and high[0] > high[2] and high[1] > high[2]


def test_remainder_strip_is_not_coloured():
    values = np.array([[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]])
    out = np.asarray(hm.render_overlay(_grey(70, 100), values, kind="weights"))
    image = out[:70, :100].astype(int)
    right, bottom = image[:, 96:], image[64:, :]
    for strip in (right, bottom):
        assert np.all(strip[..., 0] == strip[..., 1]) and np.all(strip[..., 1] == strip[..., 2])
    covered = image[:64, :96]
    assert np.any(covered[..., 0] != covered[..., 2])  # the patches are coloured
    assert not np.array_equal(right, np.full_like(right, GREY))  # dimmed or hatched, not just left as is


def test_nan_patch_is_shown_as_not_scored():
    values = np.array([[0.0, np.nan], [0.5, 1.0]])
    out = np.asarray(hm.render_overlay(_grey(64, 64), values, kind="scores")).astype(int)
    cell = out[1:32, 33:64]
    assert np.all(cell[..., 0] == cell[..., 2])
    assert not np.all(out[1:32, 1:32, 0] == out[1:32, 1:32, 2])


def test_constant_map_renders_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = hm.render_overlay(_grey(64, 96), np.full((2, 3), 0.25), kind="contribution")
    pixels = np.asarray(out)
    np.testing.assert_array_equal(pixels[16, 16], _blend(hm.COLORMAP[128]))
    np.testing.assert_array_equal(pixels[48, 80], pixels[16, 16])


def test_all_nan_map_renders():
    out = hm.render_overlay(_grey(64, 64), np.full((2, 2), np.nan), kind="scores")
    assert out.size[1] == 64 + hm.legend_height(64, 64)


def test_pil_and_numpy_input_give_the_same_result():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    values = rng.random((2, 3))
    from_np = hm.render_overlay(pixels, values, kind="scores", title="x")
    from_pil = hm.render_overlay(Image.fromarray(pixels), values, kind="scores", title="x")
    from_rgba = hm.render_overlay(Image.fromarray(pixels).convert("RGBA"), values, kind="scores", title="x")
    assert np.array_equal(np.asarray(from_np), np.asarray(from_pil))
    assert np.array_equal(np.asarray(from_np), np.asarray(from_rgba))
    # deterministic
    again = hm.render_overlay(pixels, values.tolist(), kind="scores", title="x")
    assert np.array_equal(np.asarray(from_np), np.asarray(again))


def test_grid_lines_only_between_large_patches():
    values = np.array([[0.5, 0.5]])
    out = np.asarray(hm.render_overlay(_grey(32, 64), values, kind="scores", alpha=0.0)).astype(int)
    assert out[10, 32, 0] < GREY and out[10, 31, 0] == GREY and out[10, 0, 0] == GREY
    small = np.asarray(
        hm.render_overlay(_grey(8, 16), np.array([[0.5, 0.5]]), kind="scores", patch=8, alpha=0.0)
    )
    assert np.all(small[:8, :16] == GREY)


def test_render_overlay_rejects_bad_arguments():
    img = _grey(64, 64)
    with pytest.raises(ValueError):
        hm.render_overlay(img, np.ones((2, 2)), kind="heat")
    with pytest.raises(ValueError):
        hm.render_overlay(img, np.ones((3, 2)), kind="scores")  # grid larger than the image
    with pytest.raises(ValueError):
        hm.render_overlay(img, np.ones(4), kind="scores")  # not 2-D
    with pytest.raises(ValueError):
        hm.render_overlay(img.astype(np.float32), np.ones((2, 2)), kind="scores")
    with pytest.raises(ValueError):
        hm.render_overlay(img, np.ones((2, 2)), kind="scores", alpha=1.5)


def test_direction_labels_say_which_way_is_better():
    assert hm.direction_labels("scores") == ("lower = worse quality", "higher = better quality")
    assert hm.direction_labels("contribution") == hm.direction_labels("scores")
    assert hm.direction_labels("scores", higher_is_better=False) == (
        "lower = better quality",
        "higher = worse quality",
    )
    low, high = hm.direction_labels("weights", higher_is_better=False)  # no score direction in weights
    assert low == "lower = less weight" and high.startswith("higher = more weight")
    assert "where the model looks" in high
    with pytest.raises(ValueError):
        hm.direction_labels("heat")


def _legend_texts(monkeypatch, image, values, **kwargs) -> tuple[Image.Image, list[tuple[float, str, float]]]:
    """render_overlay's output and the (x, text, text width) of every string it draws."""
    drawn = []
    draw_text = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kw):
        drawn.append((xy[0], text, kw["font"].getlength(text)))
        return draw_text(self, xy, text, *args, **kw)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    return hm.render_overlay(image, values, **kwargs), drawn


@pytest.mark.parametrize("size", [(384, 512), (40, 70), (1080, 1920)])
def test_overlay_legend_states_the_direction_in_words(monkeypatch, size):
    height, width = size
    values = np.linspace(0, 1, (height // 32) * (width // 32)).reshape(height // 32, width // 32)
    for kind, direction, low, high in [
        ("scores", True, "lower = worse quality", "higher = better quality"),
        ("contribution", True, "lower = worse quality", "higher = better quality"),
        ("scores", False, "lower = better quality", "higher = worse quality"),
        ("weights", True, "less weight", "more weight"),
    ]:
        out, drawn = _legend_texts(
            monkeypatch, _grey(height, width), values, kind=kind, title="t", higher_is_better=direction
        )
        texts = [text for _, text, _ in drawn]
        assert high in texts[-1]  # the high end's words come last, right-aligned ...
        max_x, _, max_w = next(d for d in drawn if d[1] == "1")  # the max tick, at the bar's right end
        assert abs(drawn[-1][0] + drawn[-1][2] - (max_x + max_w)) <= 1  # ... under the bar's right end
        if kind != "weights" or width >= 512:  # the low end's words too, left-aligned under the bar
            assert low in texts[-2] and drawn[-2][0] == drawn[texts.index("0")][0]
        for x, _, w in drawn:  # nothing runs off the canvas
            assert 0 <= x and x + w <= out.width


# -------------------------------------------------------------------------------------- write_raw_csv


def test_write_raw_csv_round_trips_exactly(tmp_path):
    values = np.array([[1 / 3, 0.1 + 0.2, -2.5e-300], [1e300, 123456789.123456789, -0.0]])
    path = tmp_path / "map.csv"
    hm.write_raw_csv(path, values, patch=32)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["row", "col", "x", "y", "value"]
        rows = list(reader)
    assert len(rows) == 6
    assert [(int(r), int(c), int(x), int(y)) for r, c, x, y, _ in rows] == [
        (0, 0, 0, 0), (0, 1, 32, 0), (0, 2, 64, 0), (1, 0, 0, 32), (1, 1, 32, 32), (1, 2, 64, 32),
    ]  # fmt: skip
    back = np.array([float(v) for *_, v in rows]).reshape(2, 3)
    assert np.array_equal(back, values)
    pairs = zip(back.ravel().tolist(), values.ravel().tolist(), strict=True)
    assert all(a.hex() == b.hex() for a, b in pairs)  # bit-exact, sign of -0.0 included


# ----------------------------------------------------------------------------------- terminal_heatmap


def _render(renderable, width: int) -> tuple[str, str]:
    console = Console(record=True, width=width, color_system="truecolor", file=io.StringIO())
    console.print(renderable)
    return console.export_text(clear=False), console.export_text(styles=True)


@pytest.mark.parametrize("grid", [(1, 1), (2, 2), (12, 16), (135, 240)])
@pytest.mark.parametrize("width", [80, 40, 12])
def test_terminal_heatmap_fits_the_width(grid, width):
    rows, cols = grid
    values = np.arange(rows * cols, dtype=float).reshape(rows, cols)
    text, styled = _render(hm.terminal_heatmap(values, max_width=width, title="patch score map"), width)
    lines = text.splitlines()
    assert lines and max(cell_len(line) for line in lines) <= width
    assert "▀" in text
    assert "\x1b[38;2;" in styled  # truecolor foreground
    if rows * cols > 1:
        assert "48;2;" in styled


def test_terminal_heatmap_shrinks_wide_grids_by_averaging():
    values = np.tile(np.arange(240, dtype=float), (135, 1))
    text, _ = _render(hm.terminal_heatmap(values, max_width=80), 80)
    lines = text.splitlines()
    grid_lines = lines[:-1]
    assert all(cell_len(line) == 80 for line in grid_lines)  # 240 / 3
    assert len(grid_lines) == 23  # ceil(ceil(135 / 3) / 2)
    assert "min 0" in lines[-1] and "max 239" in lines[-1] and "3x3" in lines[-1]


def test_terminal_heatmap_legend_and_small_grids():
    text, _ = _render(hm.terminal_heatmap(np.array([[0.25, 0.75], [0.5, 1.0]]), max_width=80), 80)
    assert "min 0.25" in text and "max 1" in text
    text, _ = _render(hm.terminal_heatmap([[0.5]], max_width=80, title="t"), 80)
    assert text.splitlines()[0] == "t" and "all = 0.5" in text


def test_terminal_heatmap_constant_and_nan_maps():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text, _ = _render(hm.terminal_heatmap(np.full((4, 4), 2.5), max_width=30), 30)
        assert "all = 2.5" in text
        text, _ = _render(hm.terminal_heatmap(np.array([[0.0, np.nan], [1.0, 2.0]]), max_width=30), 30)
        assert "·" in text
        text, _ = _render(hm.terminal_heatmap(np.full((2, 2), np.nan), max_width=30), 30)
        assert "no finite values" in text


def test_terminal_heatmap_legend_states_the_direction_when_given_the_kind():
    values = np.array([[0.25, 0.75], [0.5, 1.0]])
    text, _ = _render(hm.terminal_heatmap(values, max_width=80), 80)
    assert "better" not in text and "weight" not in text  # no kind: only the numbers, as before
    text, _ = _render(hm.terminal_heatmap(values, max_width=80, kind="scores"), 80)
    assert "min 0.25" in text and "max 1  higher = better quality" in text.splitlines()[-1]
    text, _ = _render(
        hm.terminal_heatmap(values, max_width=80, kind="contribution", higher_is_better=False), 80
    )
    assert "max 1  higher = worse quality" in text
    text, _ = _render(hm.terminal_heatmap(values, max_width=80, kind="weights"), 80)
    assert "max 1  higher = more weight" in text
    text, _ = _render(hm.terminal_heatmap(values, max_width=40, kind="scores"), 40)
    assert text.splitlines()[-1].endswith("max 1  better")  # shorter words where the width is short
    text, _ = _render(hm.terminal_heatmap(np.full((2, 2), 0.5), max_width=80, kind="scores"), 80)
    assert "all = 0.5  higher = better quality" in text
    wide = np.tile(np.arange(240, dtype=float), (135, 1))
    for width in (80, 60, 40, 25, 12):
        text, _ = _render(hm.terminal_heatmap(wide, max_width=width, kind="weights", title="t"), width)
        assert max(cell_len(line) for line in text.splitlines()) <= width
    text, _ = _render(hm.terminal_heatmap(wide, max_width=80, kind="scores"), 80)
    assert "higher = better quality (3x3 patches per cell)" in text


def test_terminal_heatmap_rejects_non_2d():
    with pytest.raises(ValueError):
        hm.terminal_heatmap(np.ones(3), max_width=80)


# --------------------------------------------------------------------------------------- save_heatmap


def test_save_heatmap_writes_the_overlay_and_the_raw_values(tmp_path):
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    pixels = torch.rand(3, 70, 100, generator=torch.Generator().manual_seed(0))
    result = SimpleNamespace(
        patch_scores=torch.tensor(SCORES, dtype=torch.float32),
        patch_weights=torch.tensor(WEIGHTS, dtype=torch.float32),
        grid=(2, 3),
    )
    hm.save_heatmap(
        tmp_path / "m.png",
        SimpleNamespace(tensor=pixels),
        result,
        kind="scores",
        raw=tmp_path / "m.csv",
        title="t",
    )
    u8 = (pixels.permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    values = hm.patch_map(SCORES.astype(np.float32), WEIGHTS.astype(np.float32), (2, 3), "scores")
    expected = hm.render_overlay(u8, values, kind="scores", title="t")
    with Image.open(tmp_path / "m.png") as written:
        assert np.array_equal(np.asarray(written), np.asarray(expected))
    assert len((tmp_path / "m.csv").read_text().splitlines()) == 1 + 6
    lower = tmp_path / "lower.png"
    hm.save_heatmap(
        lower, SimpleNamespace(tensor=pixels), result, kind="scores", title="t", higher_is_better=False
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lower.png", "m.csv", "m.png"]
    with Image.open(lower) as a, Image.open(tmp_path / "m.png") as b:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and np.array_equal(a[:70], b[:70])  # the same map ...
        assert not np.array_equal(a, b)  # ... with other words in the legend
