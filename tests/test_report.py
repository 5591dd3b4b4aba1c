"""radn_cli.report without a browser: the results CSV read back, methods, statistics, the page's
escaping, the picture cache, and `radn report` / `radn batch --report` on the command line.

The browser side (console errors, sorting, filtering, the detail view) is tests/test_report_browser.py.
Images are small (64x96: 6 patches) and made here; the model is the seeded one of conftest.py.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_one_error, distorted, picture, run, save

from radn_cli.errors import RadnError
from radn_cli.report import files_folder, read_results, summary, table
from radn_cli.results import HEADER_LINE

METHODS = ('noise "a"', "blur<script>")
ODD_NAME = "<img src=x onerror=console.error(1)>.png"  # injected, it would load a file and log an error
INJECTED = 'x</script><script>console.error("injected")</script>.png'  # a missing file: a failed row


def make_study(root: Path) -> Path:
    """Two references ("ref 0.png", "ref'1.png"), one folder per method with a version of each, an
    extra version with a file name that is HTML, a size mismatch, and two missing files (one whose
    path would close a <script> element); returns the pairs list."""
    listed = []
    for index, name in enumerate(("ref 0.png", "ref'1.png")):
        image = picture(index)
        save(root / "refs" / name, image)
        for method, sigma in zip(METHODS, (5.0, 30.0)):
            save(root / "results" / method / name, distorted(image, 10 * index + len(method), sigma))
            listed.append((f"refs/{name}", f"results/{method}/{name}"))
    save(root / "results" / METHODS[1] / ODD_NAME, distorted(picture(0), 7, 15.0))
    save(root / "results" / METHODS[0] / "small.png", picture(5, 64, 64))
    listed += [
        ("refs/ref 0.png", f"results/{METHODS[1]}/{ODD_NAME}"),
        ("refs/ref 0.png", f"results/{METHODS[0]}/small.png"),
        ("refs/ref 0.png", f"results/{METHODS[0]}/gone.png"),
        ("refs/ref'1.png", f"results/{INJECTED}"),
    ]
    return write_csv(root / "pairs.csv", [("ref", "dist"), *listed])


def write_csv(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def write_results(path: Path, rows: list[tuple]) -> Path:
    """A results CSV of ``rows`` (ref, dist, score, weights, error[, precision: fp32]; the size
    columns filled in)."""
    full = []
    for ref, dist, score, weights, error, *precision in rows:
        size = (6, 96, 64) if score else ("", "", "")
        full.append((ref, dist, score, *size, weights, *(precision or ["fp32"]), error))
    write_csv(path, [tuple(HEADER_LINE.strip().split(",")), *full])
    return path


# ---------------------------------------------------------------------------------------------------
# statistics and methods


def test_t_quantile_agrees_with_scipy():
    t = pytest.importorskip("scipy.stats").t
    for df in (1, 2, 3, 4, 7, 10, 30, 31, 120, 999, 5000, 10_000, 10_001, 250_000):
        for p in (0.6, 0.9, 0.975, 0.995):
            assert summary.t_quantile(p, df) == pytest.approx(t.ppf(p, df), rel=1e-9), (p, df)
    with pytest.raises(ValueError):
        summary.t_quantile(0.4, 3)


def test_mean_interval_summary_and_histogram():
    values = [3.1, 3.5, 2.9, 4.0, 3.3]
    low, high = summary.mean_interval(values)
    mean, half = np.mean(values), 2.7764451051977987 * np.std(values, ddof=1) / math.sqrt(5)
    assert (low, high) == pytest.approx((mean - half, mean + half), rel=1e-9)
    assert summary.mean_interval([1.0]) is None
    bins = summary.histogram(values, bins=4)
    assert [b.count for b in bins] == [2, 1, 1, 1] and bins[0].low == 2.9 and bins[-1].high == 4.0
    assert summary.histogram([2.0, 2.0]) == [summary.Bin(2.0, 2.0, 2)] and summary.histogram([]) == []
    assert len(summary.histogram(list(np.linspace(0, 1, 10_000)))) == 40


def test_methods_are_the_first_folder_below_the_common_one():
    assert table.detect_methods(["/r/x/A/1.png", "/r/x/B/1.png", "/r/x/B/sub/2.png"]) == ["A", "B", "B"]
    assert table.detect_methods(["r/A/1.png", "r/2.png", "r/B/3.png"]) == ["A", None, "B"]
    assert table.detect_methods(["r/A/1.png", "r/A/2.png"]) == [None, None]  # one method: none
    assert table.detect_methods(["1.png", "2.png"]) == [None, None]
    assert table.detect_methods(["/a/A/1.png", "b/B/1.png"]) == [None, None]  # absolute and relative
    assert table.detect_methods([]) == []


# ---------------------------------------------------------------------------------------------------
# reading a results CSV


def test_read_results_rows_failures_methods_and_ranks(tmp_path):
    path = write_csv(
        tmp_path / "scores.csv",
        [
            tuple(HEADER_LINE.strip().split(",")),
            ("r/1.png", "out/A/1.png", 3.5, 6, 96, 64, "w@1", "fp32", ""),
            ("r/1.png", "out/B/1.png", 4.5, 6, 96, 64, "w@1", "fp32", ""),
            ("r/1.png", "out/B/2.png", "", "", "", "", "w@1", "fp32", "out/B/2.png: no such file"),
            ("r/2.png", "out/A/2.png", 2.0, 6, 96, 64, "w@2", "bf16", ""),
        ],
    )
    results = read_results(path)
    assert [row.method for row in results.rows] == ["A", "B", "B", "A"] and results.methods == ["A", "B"]
    assert [row.ok for row in results.rows] == [True, True, False, True]
    assert results.failures[0].error == "out/B/2.png: no such file" and results.failures[0].line == 4
    assert results.weights == {"w@1": 3, "w@2": 1} and results.precisions == {"fp32": 3, "bf16": 1}
    table.rank_by_reference(results.rows, higher_is_better=True)
    assert [row.rank for row in results.rows] == [2, 1, None, 1]
    table.rank_by_reference(results.rows, higher_is_better=False)
    assert [row.rank for row in results.rows] == [1, 2, None, 1]
    summaries = summary.method_summaries(results.rows, results.methods, higher_is_better=True)
    assert [(s.name, s.n, s.failed, s.mean) for s in summaries] == [("B", 1, 1, 4.5), ("A", 2, 0, 2.75)]


def test_ranks_compare_scores_of_one_weights_and_precision(tmp_path):
    """A resumed CSV may hold a pair under two weights or precisions: each set is ranked apart."""
    rows = [
        ("r/1.png", "out/A/1.png", 3.5, "w@1", ""),
        ("r/1.png", "out/B/1.png", 4.5, "w@1", ""),
        ("r/1.png", "out/A/1.png", 9.0, "w@2", ""),
        ("r/1.png", "out/B/1.png", 1.0, "w@2", ""),
        ("r/1.png", "out/A/1.png", 4.0, "w@1", "", "bf16"),
    ]
    results = read_results(write_results(tmp_path / "scores.csv", rows))
    table.rank_by_reference(results.rows, higher_is_better=True)
    assert [row.rank for row in results.rows] == [2, 1, 1, 2, 1]
    table.rank_by_reference(results.rows, higher_is_better=False)
    assert [row.rank for row in results.rows] == [1, 2, 2, 1, 1]


def test_report_groups_the_per_reference_list_by_weights_and_precision(tmp_path):
    """With several weights in the CSV, each row names its rank group for the page's script."""
    one = write_results(
        tmp_path / "one.csv", [("r.png", "a.png", 3.0, "w@1", ""), ("r.png", "b.png", 4.0, "w@1", "")]
    )
    two = write_results(
        tmp_path / "two.csv", [("r.png", "a.png", 3.0, "w@1", ""), ("r.png", "a.png", 1.0, "w@2", "")]
    )
    for scores, groups, ranks in (
        (one, [None, None], [2, 1]),
        (two, ["r.png (w@1, fp32)", "r.png (w@2, fp32)"], [1, 1]),
    ):
        page = tmp_path / f"{scores.stem}.html"
        result = run("report", scores, "-o", page, "--no-heatmaps")
        assert result.exit_code == 0, result.output
        rows = json.loads(_data(page.read_text(encoding="utf-8")))["rows"]
        assert [row.get("g") for row in rows] == groups and [row["r"] for row in rows] == ranks


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("ref,dist\na.png,b.png\n", "not a radn results CSV: line 1: expected a header naming the columns"),
        ("", "not a radn results CSV: line 1: empty file"),
        (HEADER_LINE + "a,b,high,6,96,64,w,fp32,\n", "line 2: score 'high' is not a number"),
        (HEADER_LINE + "a,b,nan,6,96,64,w,fp32,\n", "line 2: score 'nan' is not a finite number"),
        (HEADER_LINE + "a,b,,,,,w,fp32,\n", "line 2: neither a score nor an error"),
        (HEADER_LINE + "a,b,1.0,6,96,64,,fp32,\n", "line 2: no 'weights' value"),
    ],
)
def test_read_results_refuses_other_files_in_one_line(tmp_path, text, fragment):
    path = tmp_path / "scores.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RadnError) as caught:
        read_results(path)
    assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


# ---------------------------------------------------------------------------------------------------
# radn report and radn batch --report


def test_report_command_errors_are_one_line(tmp_path):
    scores = write_results(tmp_path / "scores.csv", [("a.png", "b.png", 3.0, "w@1", "")])
    out = tmp_path / "report.html"
    assert_one_error(run("report", tmp_path / "none.csv", "-o", out), "none.csv: results CSV not found")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("ref,dist\na.png,b.png\n", encoding="utf-8")
    assert_one_error(run("report", pairs, "-o", out), "pairs.csv: not a radn results CSV")
    assert_one_error(run("report", scores, "-o", tmp_path / "no" / "r.html"), "folder does not exist")
    assert_one_error(run("report", scores, "-o", scores), "would replace the results CSV", code=2)
    assert_one_error(run("report", scores, "--map", "nope"), "--map must be one of", code=2)
    (tmp_path / "blocked_files").write_text("a file in the way")
    assert_one_error(run("report", scores, "-o", tmp_path / "blocked.html"), "blocked_files: is in the way")
    assert not out.exists()


def _data(page: str) -> str:
    return re.search(r'<script type="application/json" id="radn-data">(.*?)</script>', page, re.S).group(1)


def test_no_heatmaps_escapes_names_and_never_loads_the_model(tmp_path, monkeypatch, weights_file):
    """Odd names stay text (escaped by Jinja, the JSON by tojson); --no-heatmaps loads no model."""
    import radn_cli.cli.report

    root = tmp_path / "study"
    make_study(root)
    ref = f"{root}/refs/ref 0.png"
    rows = [(ref, f"{root}/results/{m}/ref 0.png", s, "other@1", "") for m, s in zip(METHODS, (3.25, 4.5))]
    rows.append((ref, f"{root}/results/{INJECTED}", "", "other@1", f"{INJECTED}: no such file"))
    scores = write_results(tmp_path / "scores.csv", rows)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(radn_cli.cli.report, "make_scorer", no_model)
    result = run("report", scores, "-o", tmp_path / "report.html", "--no-heatmaps", "--weights", weights_file)
    assert result.exit_code == 0, result.output
    assert "radn: report of 3 pairs (0 with a heatmap) ->" in result.stderr
    assert (
        "radn: warning: " in result.stderr
        and "was scored with other@1, not with test-seeded@" in result.stderr
    )
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("<script") == 2 and page.count("</script>") == 2  # ours only
    assert "&lt;/script&gt;&lt;script&gt;console.error(&#34;injected&#34;)" in page  # the failure list
    assert "blur&lt;script&gt;" in page and "noise &#34;a&#34;" in page  # the method table
    assert "\\u003c/script\\u003e" in _data(page)  # in the JSON
    assert "not computed" in page
    folder = files_folder(tmp_path / "report.html")
    assert sorted(p.name for p in folder.iterdir()) == ["heat", "img", "ramp.png", "report.css", "report.js"]
    assert len(list((folder / "img").glob("*_t.jpg"))) == 3  # two distorted, one reference; no missing one
    assert not any((folder / "heat").iterdir())


@pytest.mark.heavy  # a batch and a report with the model
def test_batch_report_draws_heatmaps_while_scoring_and_report_reuses_them(
    tmp_path, weights_file, monkeypatch
):
    import radn_cli.cli.report

    root = tmp_path / "study"
    pairs = make_study(root)
    scores, page = tmp_path / "scores.csv", tmp_path / "my report.html"
    result = run("batch", "--pairs", pairs, "-o", scores, "--report", page, "--weights", weights_file)
    assert result.exit_code == 1, result.output  # three pairs failed
    assert "radn: 5 scored, 3 failed" in result.stderr
    assert "radn: report of 8 pairs (5 with a heatmap) ->" in result.stderr
    folder = tmp_path / "my report_files"
    heatmaps = sorted((folder / "heat").iterdir())
    pictures = [p for p in heatmaps if p.suffix == ".jpg"]
    assert len(pictures) == 5 and all(p.stat().st_size > 1000 for p in pictures)
    assert sorted(p.with_suffix(".json") for p in pictures) == [p for p in heatmaps if p.suffix == ".json"]
    assert _data(page.read_text(encoding="utf-8")).count('"hk": ""') == 3
    assert '<script src="my%20report_files/report.js"></script>' in page.read_text(encoding="utf-8")

    monkeypatch.setattr(radn_cli.cli.report, "make_scorer", lambda *a, **k: pytest.fail("model loaded"))
    again = run("report", scores, "-o", page, "--weights", weights_file)
    assert again.exit_code == 0, again.output
    assert "(5 with a heatmap) ->" in again.stderr and "computed now" not in again.stderr
    assert "warning" not in again.stderr
    assert sorted((folder / "heat").iterdir()) == heatmaps


@pytest.mark.heavy  # a batch and a report with the model
def test_report_of_file_names_that_are_not_utf8(tmp_path, weights_file):
    """radn writes such names with surrogateescape; the report reads them so, still finds the files
    and shows the names with U+FFFD (the page is strict UTF-8, no lone surrogate in it)."""
    name = os.fsdecode(b"caf\xe9.png")  # a Linux file name that is not UTF-8
    refs, dists = tmp_path / "refs", tmp_path / "dists"
    try:
        save(refs / name, picture(0))
        save(dists / name, distorted(picture(0), 1, 12.0))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    scores, first, second = tmp_path / "scores.csv", tmp_path / "batch.html", tmp_path / "report.html"
    args = ("--ref-dir", refs, "--dist-dir", dists, "-o", scores, "--weights", weights_file)
    batch = run("batch", *args, "--report", first)
    assert batch.exit_code == 0, batch.output
    assert b"caf\xe9.png" in scores.read_bytes()  # as radn wrote it: the file's name
    assert "radn: report of 1 pairs (1 with a heatmap) ->" in batch.stderr and "warning" not in batch.stderr
    report = run("report", scores, "-o", second, "--weights", weights_file)
    assert report.exit_code == 0, report.output
    assert "(1 with a heatmap, 1 computed now)" in report.stderr and "warning" not in report.stderr
    for page in (first, second):
        text = page.read_bytes().decode("utf-8")  # strict
        assert not re.search(r"[\ud800-\udfff]|\\ud[89a-f]", text, re.I), "a lone surrogate in the page"
        (row,) = json.loads(_data(text))["rows"]
        assert row["ref"] == str(refs / "caf\ufffd.png") and row["dist"] == str(dists / "caf\ufffd.png")
        folder = files_folder(page)
        assert row["ri"] and row["di"] and row["hk"]
        assert all((folder / "img" / f"{row[key]}_t.jpg").is_file() for key in ("ri", "di"))
        assert (folder / "heat" / f"{row['hk']}.jpg").is_file()


@pytest.mark.heavy  # a batch and a report with the model
def test_batch_heatmaps_decode_only_what_items_without_images_lack(tmp_path, weights_file, monkeypatch):
    """Items scored elsewhere (Ray) come without images: a shared reference is decoded once, and an
    image that does not decode here costs its own pictures only."""
    import radn_cli.report.build
    from radn_cli import load_scorer
    from radn_cli.images import load_image
    from radn_cli.pairing import Pair
    from radn_cli.pipeline import ScoredPair
    from radn_cli.report import BatchHeatmaps

    scorer = load_scorer(weights_file, device="cpu")
    ref = save(tmp_path / "ref.png", picture(0))
    dists = [save(tmp_path / f"d{i}.png", distorted(picture(0), i, 10.0)) for i in range(3)]
    reference = load_image(ref).tensor
    items = [
        ScoredPair(Pair(ref, d), result=scorer.score_pair(reference, load_image(d).tensor)) for d in dists
    ]
    dists[1].write_bytes(dists[1].read_bytes()[:100])  # scored elsewhere, broken here
    decoded = []

    def counting(path, **kwargs):
        decoded.append(Path(path).name)
        return load_image(path, **kwargs)

    monkeypatch.setattr(radn_cli.report.build, "load_image", counting)
    pictures = BatchHeatmaps(tmp_path / "report.html", scorer.info, scorer.precision)
    for item in items:
        pictures(item)
    assert decoded == ["ref.png", "d0.png", "d1.png", "d2.png"]
    assert pictures.error.startswith("no pictures: ") and "d1.png" in pictures.error
    assert "more" not in pictures.error
    assets = pictures.assets
    assert [assets.has_image(assets.image_key(path)) for path in (ref, *dists)] == [True, True, False, True]
    assert len(list((assets.folder / "heat").glob("*.jpg"))) == 2  # d0 and d2
    for item in items:  # all drawn that can be: nothing decoded again, not even the broken file
        pictures(item)
    assert len(decoded) == 4 and pictures.problem_count == 1


@pytest.mark.heavy  # two reports with the model
def test_report_computes_only_missing_heatmaps(tmp_path, weights_file):
    root = tmp_path / "study"
    pairs = make_study(root)
    scores = tmp_path / "scores.csv"
    assert run("batch", "--pairs", pairs, "-o", scores, "--weights", weights_file).exit_code == 1
    page = tmp_path / "report.html"
    first = run("report", scores, "-o", page, "--weights", weights_file, "--map", "weights")
    assert first.exit_code == 0, first.output
    assert "(5 with a heatmap, 5 computed now)" in first.stderr
    (next((tmp_path / "report_files" / "heat").iterdir())).unlink()
    second = run("report", scores, "-o", page, "--weights", weights_file, "--map", "weights")
    assert "(5 with a heatmap, 1 computed now)" in second.stderr, second.output


def test_batch_report_is_not_written_after_ctrl_c(tmp_path, weights_file, monkeypatch):
    import radn_cli.batch

    monkeypatch.setattr(
        radn_cli.batch, "run_batch", lambda *a, **k: radn_cli.batch.BatchSummary(scored=1, interrupted=True)
    )
    pairs = make_study(tmp_path)
    page = tmp_path / "report.html"
    result = run(
        "batch", "--pairs", pairs, "-o", tmp_path / "s.csv", "--report", page, "--weights", weights_file
    )
    assert result.exit_code == 130, result.output
    assert not page.exists()


def test_batch_report_refuses_to_replace_the_csv(tmp_path):
    pairs = make_study(tmp_path)
    result = run("batch", "--pairs", pairs, "-o", tmp_path / "s.csv", "--report", tmp_path / "s.csv")
    assert_one_error(result, "would replace the results CSV", code=2)
