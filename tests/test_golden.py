"""Our RADN and WResNet against numbers produced by the authors' reference code (tests/golden/README.md)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import seeded_model
from PIL import Image

from radn_cli.models.radn import RADNConfig
from radn_cli.tiling import tile

GOLDEN = Path(__file__).parent / "golden"
CASES = json.loads((GOLDEN / "golden.json").read_text())["cases"]
CONFIGS = {"RADN": RADNConfig(), "WResNet": RADNConfig.wresnet()}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


def _image(name: str) -> torch.Tensor:
    # float32 k/255, as the reference's to_tensor makes them (float64 runs widen these)
    array = np.asarray(Image.open(GOLDEN / name).convert("RGB"), dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def _run(model, case, dtype):
    dist, grid = tile(_image(case["dist"]).to(dtype))
    ref, _ = tile(_image(case["ref"]).to(dtype))
    assert list(grid) == case["grid"]
    with torch.no_grad():
        return model(dist, ref)


@pytest.fixture(scope="module")
def models():
    return {
        (arch, name): seeded_model(config).to(dtype)
        for arch, config in CONFIGS.items()
        for name, dtype in DTYPES.items()
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['arch']}-{c['dtype']}-{c['name']}")
def test_matches_reference_implementation(models, case):
    out = _run(models[case["arch"], case["dtype"]], case, DTYPES[case["dtype"]])
    tol = TOLERANCE[case["dtype"]]
    assert float(out.score[0]) == pytest.approx(case["score"], abs=tol)
    np.testing.assert_allclose(out.patch_scores[0].double().numpy(), case["patch_scores"], rtol=0, atol=tol)
    np.testing.assert_allclose(out.patch_weights[0].double().numpy(), case["patch_weights"], rtol=0, atol=tol)


def test_golden_cases_separate_identical_from_distorted():
    by_name = {(c["arch"], c["dtype"], c["name"]): c["score"] for c in CASES}
    gap = abs(by_name["RADN", "float64", "a_identical"] - by_name["RADN", "float64", "a_jpeg23"])
    assert gap > 100 * TOLERANCE["float64"], "the golden test would not see a distortion"


@pytest.mark.parametrize(
    "layer", ["conv7.weight", "deform.weight", "Nonlocal1.W.weight", "conv_offset.weight"]
)
@pytest.mark.heavy  # a reference forward pass per layer
def test_a_changed_layer_fails_the_comparison(layer):
    model = seeded_model()
    with torch.no_grad():
        model.get_parameter(layer).mul_(1.01)
    case = next(
        c for c in CASES if c["arch"] == "RADN" and c["dtype"] == "float64" and c["name"] == "a_jpeg23"
    )
    out = _run(model, case, torch.float64)
    worst = np.abs(out.patch_scores[0].numpy() - np.asarray(case["patch_scores"])).max()
    assert worst > 10 * TOLERANCE["float64"]
