"""Issue 26, the HTML report's heatmaps and numbers: the maps and colour ranges of `radn heatmap` (the
same defaults and choices in `radn report` and `radn batch --report`), pictures cached per range and
scale, the legend as text on the page, the method folder in the captions, confidence intervals only
from 3 scores and clipped to the score scale, and the viewing scale shown.
"""

from __future__ import annotations

import inspect
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_cli import assert_one_error, distorted, picture, run, save
from test_report import write_results

from radn_cli.report import summary
from radn_cli.report.assets import Assets, legend_facts
from radn_cli.report.page import interval_text, legend_text

torch.set_num_threads(1)

SCALE_1_5 = {"score_scale": "test DMOS: 1 (bad) .. 5 (good)", "score_direction": "higher_is_better"}


def _data(html: str) -> dict:
    return json.loads(
        re.search(r'<script type="application/json" id="radn-data">(.*?)</script>', html, re.S)[1]
    )


# ---------------------------------------------------------------------------------------------------
# the same maps and ranges as `radn heatmap`


def test_defaults_agree_across_score_heatmap_report_and_batch():
    from radn_cli import heatmap
    from radn_cli import report as html_report
    from radn_cli.cli import batch, report, score

    assert html_report.DEFAULT_MAP is heatmap.DEFAULT_MAP
    for command in (score.score, score.heatmap, report.report, batch.batch):
        parameters = inspect.signature(command).parameters
        assert parameters["kind"].default == heatmap.DEFAULT_MAP, command
        assert parameters["value_range"].default == heatmap.DEFAULT_RANGE, command


def test_report_takes_every_map_and_range_of_heatmap(tmp_path):
    scores = write_results(tmp_path / "s.csv", [("r.png", "a.png", "3.0", "w", "")])
    for options in (["--map", "product"], ["--map", "contribution"], ["--map", "weights", "--range", "auto"]):
        result = run("report", scores, "-o", tmp_path / "r.html", "--no-heatmaps", *options)
        assert result.exit_code == 0, (options, result.output)
    line = assert_one_error(run("report", scores, "--map", "bogus"), code=2)
    assert "--map must be one of scores, weights, product, not 'bogus'" in line
    assert_one_error(run("report", scores, "--range", "5,1"), "--range LO,HI must be", code=2)
    batch = run("batch", "--pairs", tmp_path / "p.csv", "--report", tmp_path / "b.html", "--map", "x")
    assert_one_error(batch, "--map must be one of", code=2)


def test_heatmap_names_change_with_the_colour_range_and_the_scale(tmp_path):
    assets = Assets(tmp_path)
    base = ("ref", "dist", "w", "fp32", "scores")
    names = {
        assets.heatmap_key(*base),
        assets.heatmap_key(*base, (1.0, 5.0)),
        assets.heatmap_key(*base, (0.0, 5.0)),
        assets.heatmap_key(*base, (1.0, 5.0), "0.5"),
        assets.heatmap_key(*base, (1.0, 5.0), "1024"),
    }
    assert len(names) == 5
    assert assets.heatmap_key(*base, (1, 5)) == assets.heatmap_key(*base, (1.0, 5.0))


# ---------------------------------------------------------------------------------------------------
# pictures and legends


@pytest.fixture(scope="module")
def scored(tmp_path_factory, weights_file):
    """Two pairs of 64x96 images scored by the seeded model, as `radn batch` hands them to the report."""
    from radn_cli import load_scorer
    from radn_cli.pairing import Pair
    from radn_cli.pipeline import score_pairs

    root = tmp_path_factory.mktemp("ranges")
    image = picture(6)
    ref = save(root / "ref.png", image)
    dists = [save(root / f"d{i}.png", distorted(image, i, 10.0 + 20 * i)) for i in range(2)]
    scorer = load_scorer(weights_file, device="cpu")
    return scorer, list(score_pairs(scorer, [Pair(ref, d) for d in dists]))


def _info(scorer, metadata=SCALE_1_5):
    import dataclasses

    return dataclasses.replace(scorer.info, metadata={**scorer.info.metadata, **metadata})


def test_batch_report_pictures_are_coloured_over_the_fixed_range(scored, tmp_path):
    from PIL import Image

    from radn_cli.report import BatchHeatmaps

    scorer, items = scored
    drawn = {}
    for spec in ("fixed", "auto"):
        pictures = BatchHeatmaps(tmp_path / f"{spec}.html", _info(scorer), "fp32", value_range=spec)
        for item in items:
            pictures(item)
        assert pictures.error is None
        assert pictures.colours == ((1.0, 5.0) if spec == "fixed" else None)
        folder = pictures.assets.folder / "heat"
        drawn[spec] = sorted(folder.glob("*.jpg"))
        legends = [json.loads(p.with_suffix(".json").read_text()) for p in drawn[spec]]
        assert len(legends) == 2 and all(legend["fixed"] == (spec == "fixed") for legend in legends)
        if spec == "fixed":
            assert all((legend["lo"], legend["hi"]) == (1.0, 5.0) for legend in legends)
        else:  # each its own min..max
            assert legends[0]["lo"] != legends[1]["lo"] or legends[0]["hi"] != legends[1]["hi"]
        for picture_path in drawn[spec]:  # the view of the distorted image, without a legend below
            with Image.open(picture_path) as opened:
                assert opened.size == (96, 64)
    assert [p.name for p in drawn["fixed"]] != [p.name for p in drawn["auto"]]
    fixed, auto = (np.asarray(Image.open(paths[0]).convert("RGB"), dtype=float) for paths in drawn.values())
    assert np.abs(fixed - auto).mean() > 1.0  # other colours


def test_legend_facts_and_text(scored):
    scorer, items = scored
    result = items[0].result
    facts = legend_facts(result, "scores", (1.0, 5.0))
    values = result.patch_scores.numpy()
    beyond = int(((values < 1) | (values > 5)).sum())
    assert facts == {
        "lo": 1.0,
        "hi": 5.0,
        "fixed": True,
        "beyond": beyond,
        "sum": None,
        "unscored": False,  # 64x96: whole patches
        "patches": 6,
    }
    product = legend_facts(result, "product", None)
    assert product["sum"] == pytest.approx(result.score, abs=1e-5) and not product["fixed"]
    assert legend_text(facts) == {"t": ["1", "3", "5"], "f": True, "b": beyond, "s": None, "u": False}
    constant = legend_text({"lo": 2.5, "hi": 2.5, "fixed": False, "beyond": 0, "sum": None, "unscored": True})
    assert constant["t"] == ["all = 2.5"] and constant["u"]
    assert legend_text(None) is None


def test_batch_report_then_report_at_another_range_draws_again(tmp_path, weights_file):
    image = picture(2)
    ref = save(tmp_path / "ref.png", image)
    dists = [save(tmp_path / "m" / name / "x.png", distorted(image, i, 12.0)) for i, name in enumerate("AB")]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("ref,dist\n" + "".join(f"{ref},{d}\n" for d in dists))
    page, scores = tmp_path / "r.html", tmp_path / "s.csv"
    batch = run(
        "batch",
        "--pairs",
        pairs,
        "-o",
        scores,
        "--report",
        page,
        "--range",
        "0,10",
        "--weights",
        weights_file,
    )
    assert "radn: report of 2 pairs (2 with a heatmap) ->" in batch.stderr, batch.output
    same = run("report", scores, "-o", page, "--range", "0,10", "--weights", weights_file)
    assert "(2 with a heatmap) ->" in same.stderr and "computed now" not in same.stderr
    other = run("report", scores, "-o", page, "--weights", weights_file)  # another range: not reused
    assert "(2 with a heatmap, 2 computed now)" in other.stderr, other.output
    html = page.read_text(encoding="utf-8")
    rows = _data(html)["rows"]
    assert {row["m"] for row in rows} == {"A", "B"} and all(row["hl"]["t"] for row in rows)
    assert 'id="detail-legend"' in html and 'src="r_files/ramp.png"' in html
    assert (tmp_path / "r_files" / "ramp.png").is_file()


# ---------------------------------------------------------------------------------------------------
# intervals and the viewing scale


def test_no_interval_under_three_scores_and_clipped_to_the_scale():
    from radn_cli.report.table import ResultRow

    def rows(*scores):
        return [ResultRow(i, "r", f"d{i}", s, 6, 96, 64, "w", "fp32", "") for i, s in enumerate(scores)]

    two = summary.summarize("two", rows(1.2, 4.9), (1.0, 5.0))  # the issue's -0.256 .. 6.013
    assert (two.n, two.low, two.high) == (2, None, None)
    three = summary.summarize("three", rows(4.7, 5.0, 4.95), (1.0, 5.0))
    unclipped = summary.mean_interval([4.7, 5.0, 4.95])
    assert three.high == 5.0 and three.high_clipped and unclipped[1] > 5.0
    assert three.low == unclipped[0] and not three.low_clipped
    assert interval_text(three) == f"{three.low:.4f} .. 5.0000 \u2020"
    free = summary.summarize("free", rows(4.7, 5.0, 4.95))  # no scale known: not clipped
    assert free.high == unclipped[1] and not free.high_clipped


def test_report_page_shows_intervals_methods_and_scales(tmp_path):
    from radn_cli.report import build_report, read_results

    scores = tmp_path / "s.csv"
    rows = [("r.png", f"out/A/{i}.png", s, "w", "") for i, s in enumerate(("1.2", "4.9"))]
    rows += [("r.png", f"out/B/{i}.png", s, "w", "") for i, s in enumerate(("4.7", "5.0", "4.95"))]
    write_results(scores, rows)
    lines = scores.read_text().splitlines()
    scaled = [lines[0]] + [line + ("," + ("1024" if i > 3 else "native")) for i, line in enumerate(lines[1:])]
    scores.write_text("\n".join(scaled) + "\n")
    info = SimpleNamespace(weights_id="w", higher_is_better=True, metadata=SCALE_1_5)
    page = tmp_path / "r.html"
    build_report(read_results(scores), page, info=info, scorer=None)
    html = page.read_text(encoding="utf-8")
    assert "n &lt; 3" in html  # method A: two scores, no interval
    assert "5.0000 \u2020" in html and "cut at its end" in html  # method B: clipped at 5
    assert re.search(r'id="summary-scale">1024 \(1\), native \(4\)|native \(4\), 1024 \(1\)', html)
    data = _data(html)
    assert [row["sc"] for row in data["rows"]] == ["native"] * 4 + ["1024"]
    assert data["rows"][-1]["g"].endswith("scale 1024)")  # ranked apart from the native rows
    assert data["rows"][-1]["r"] == 1
    assert data["mapWords"] == ["lower = worse quality", "higher = better quality"]
    plain = tmp_path / "plain.csv"
    write_results(plain, rows)  # one scale: no per-row scale in the data
    build_report(read_results(plain), tmp_path / "p.html", info=info, scorer=None)
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert all("sc" not in row for row in _data(text)["rows"])
    assert 'id="summary-scale">native (5): scored at the images' in text
    assert "colours fixed, 1 .. 5" in text
