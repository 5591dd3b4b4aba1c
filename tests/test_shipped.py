"""The shipped default weights: found, intact, honest metadata, and the README's first command works."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from radn_cli.weights import load_weights, resolve_weights, shipped_weights_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.shipped


def test_shipped_weights_are_the_default_and_intact():
    resolved = resolve_weights()
    assert resolved.source == "shipped default" and resolved.path == shipped_weights_path()
    info = load_weights(resolved.path).info  # verifies the sha256
    assert info.config.arch in ("radn", "radn-lite") and info.config.deformable and info.config.attention
    assert info.metadata["score_direction"] == "higher_is_better"
    assert "KADID-10k DMOS" in info.metadata["score_scale"]
    if "tid2013_dev" in info.metadata["training_data"]:  # trained on its labels: only folds are honest
        assert "tid2013_dev_fp32" not in info.metrics
        srocc = info.metrics["tid2013_dev_fold_estimate"]["srocc"]
    else:
        srocc = info.metrics["tid2013_dev_fp32"]["radn"]["srocc"]
    assert srocc > 0.5
    card = (resolved.path.parent / "README.md").read_text()
    assert info.sha256 in card and f"{srocc:.3f}" in card


@pytest.mark.heavy  # the shipped model at full size
def test_readme_example_scores_with_the_shipped_weights():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "radn_cli",
            "score",
            str(EXAMPLES / "ref.png"),
            str(EXAMPLES / "dist.png"),
            "--json",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    document = json.loads(out.stdout)
    score = document["results"][0]["score"]
    assert document["model"]["weights"].startswith("radn-lite-kadid-synthetic-")
    assert 1.0 <= score <= 5.0
    assert document["results"][0]["grid"] == [12, 16]
