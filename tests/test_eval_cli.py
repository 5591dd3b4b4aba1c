"""`radn eval` end to end on a tiny TID2013-layout database."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from radn_cli.cli import app


@pytest.fixture(scope="module")
def tid_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tid2013")
    (root / "reference_images").mkdir()
    (root / "distorted_images").mkdir()
    rng = np.random.default_rng(1)
    lines = []
    for r in (1, 2):
        ref = np.kron(rng.random((4, 6, 3)), np.ones((16, 16, 1)))  # 64x96
        Image.fromarray((ref * 255).astype(np.uint8)).save(root / "reference_images" / f"I0{r}.BMP")
        for level, sigma in enumerate((0.02, 0.08, 0.2), 1):
            dist = np.clip(ref + sigma * rng.standard_normal(ref.shape), 0, 1)
            name = f"i0{r}_01_{level}.bmp"
            Image.fromarray((dist * 255).astype(np.uint8)).save(root / "distorted_images" / name)
            lines.append(f"{6.0 - 1.5 * level:.4f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


def test_eval_reports_every_metric(tid_dir, weights_file, tmp_path):
    plot, scores = tmp_path / "scatter.png", tmp_path / "scores.csv"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(tid_dir),
            "--weights",
            str(weights_file),
            "--json",
            "--plot",
            str(plot),
            "--scores",
            str(scores),
            "--metric",
            "radn,psnr,ssim,ms-ssim",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["database"]["name"] == "tid2013" and report["database"]["pairs"] == 6
    assert set(report["metrics"]) == {"radn", "psnr", "ssim", "ms-ssim"}
    assert report["metrics"]["psnr"]["srocc"] > 0.9  # the noise level orders the MOS
    assert report["metrics"]["radn"]["n"] == 6
    assert report["skipped"]["ms-ssim"]["pairs"] == 6  # 64x96 is below MS-SSIM's minimum size
    assert "161" in report["skipped"]["ms-ssim"]["reason"]
    for name in ("radn", "psnr", "ssim", "ms-ssim"):
        assert (tmp_path / f"scatter_{name}.png").is_file()
    with open(scores, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and set(rows[0]) == {
        "ref",
        "dist",
        "mos",
        "type",
        "radn",
        "psnr",
        "ssim",
        "ms-ssim",
    }


def test_eval_plain_table(tid_dir, weights_file):
    result = CliRunner().invoke(
        app, ["eval", str(tid_dir), "--weights", str(weights_file), "--metric", "psnr"]
    )
    assert result.exit_code == 0, result.output
    header, psnr = result.stdout.splitlines()[:2]
    assert header.split("\t") == ["metric", "n", "srocc", "krcc", "plcc", "plcc_logistic", "rmse_logistic"]
    assert psnr.startswith("psnr\t6\t0.9")


def test_eval_usage_and_input_errors(tid_dir, tmp_path):
    bad_metric = CliRunner().invoke(app, ["eval", str(tid_dir), "--metric", "vif"])
    assert bad_metric.exit_code == 2
    missing = CliRunner().invoke(app, ["eval", str(tmp_path / "nowhere"), "--metric", "psnr"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


@pytest.mark.parametrize(
    "training_data, warned",
    [
        ("synthetic; human ratings of tid2013_dev (order only, all references)", True),
        ("synthetic; human ratings of kadid10k (order only, all references)", False),
        ("none: seeded random weights for tests", False),
    ],
)
def test_eval_warns_when_the_weights_trained_on_the_database(tid_dir, tmp_path, training_data, warned):
    """Weights trained on a rated database's labels (`radn train --db`) have no honest figure on it:
    `radn eval` says so on stderr (TID2013 under any folder name is one database), and still reports."""
    from conftest import seeded_model

    from radn_cli.weights import read_info, save_weights

    path = tmp_path / "w.safetensors"
    save_weights(seeded_model(), path, name="t", training_data=training_data, score_scale="arbitrary")
    info = read_info(path)
    assert (info.trained_on("TID2013") is not None) is warned
    assert info.trained_on("live") is None
    result = CliRunner().invoke(
        app, ["eval", str(tid_dir), "--weights", str(path), "--metric", "radn", "--json", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["radn"]["n"] == 6
    assert ("in-sample" in result.stderr) is warned
    if warned:
        assert "tid2013_dev" in result.stderr and "t@" in result.stderr
