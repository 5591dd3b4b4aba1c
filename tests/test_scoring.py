import pytest
import torch
from conftest import seeded_model

from radn_cli.errors import DeviceError, SizeMismatchError
from radn_cli.model import RADNConfig
from radn_cli.scoring import Scorer, resolve_device
from radn_cli.tiling import tile
from radn_cli.weights import load_weights


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    ref = torch.rand(3, 100, 140, generator=g)
    dist = (ref + 0.1 * torch.randn(3, 100, 140, generator=g)).clamp(0, 1)
    return ref, dist


def test_scorer_equals_model_forward(weights_file, images):
    ref, dist = images
    scorer = Scorer(load_weights(weights_file), device="cpu", batch_size=5)
    result = scorer.score_pair(ref, dist)
    model = seeded_model().float()
    d, grid = tile(dist[None])
    r, _ = tile(ref[None])
    with torch.no_grad():
        expected = model(d, r)
    assert result.grid == grid == (3, 4) and result.patches == 12
    assert (result.width, result.height) == (140, 100)
    assert result.score == pytest.approx(float(expected.score), abs=1e-5)
    torch.testing.assert_close(
        result.patch_weights.flatten(), expected.patch_weights[0], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("config", [RADNConfig(), RADNConfig.wresnet()])
def test_score_does_not_depend_on_batch_size(tmp_path, images, config):
    from radn_cli.weights import save_weights

    path = save_weights(seeded_model(config), tmp_path / "w.safetensors", name="w").path
    ref, dist = images
    scores = {
        bs: Scorer(load_weights(path), device="cpu", batch_size=bs).score_pair(ref, dist) for bs in (1, 5, 12)
    }
    for result in scores.values():
        assert result.score == pytest.approx(scores[12].score, abs=1e-5)
        torch.testing.assert_close(result.patch_scores, scores[12].patch_scores, rtol=1e-5, atol=1e-5)


def test_reference_reuse_gives_the_same_scores(weights_file, images):
    ref, dist = images
    scorer = Scorer(load_weights(weights_file), device="cpu")
    encoded = scorer.encode_reference(ref)
    first = scorer.score(encoded, dist).score
    scorer.score(encoded, ref)
    assert scorer.score(encoded, dist).score == first
    assert scorer.score_pair(ref, dist).score == first


def test_identical_pair_scores_differently_from_distorted(weights_file, images):
    ref, dist = images
    scorer = Scorer(load_weights(weights_file), device="cpu")
    assert abs(scorer.score_pair(ref, ref).score - scorer.score_pair(ref, dist).score) > 1e-3


def test_bf16_is_close_to_fp32(weights_file, images):
    ref, dist = images
    fp32 = Scorer(load_weights(weights_file), device="cpu").score_pair(ref, dist).score
    bf16 = Scorer(load_weights(weights_file), device="cpu", precision="bf16").score_pair(ref, dist).score
    assert bf16 == pytest.approx(fp32, rel=0.05)


def test_size_mismatch_is_refused(weights_file, images):
    ref, _ = images
    scorer = Scorer(load_weights(weights_file), device="cpu")
    with pytest.raises(SizeMismatchError, match="140x100 but distorted is 96x64"):
        scorer.score(scorer.encode_reference(ref), torch.rand(3, 64, 96))


def test_device_and_precision_checks(weights_file):
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda:0")
    with pytest.raises(DeviceError, match="fp16 is for CUDA"):
        Scorer(load_weights(weights_file), device="cpu", precision="fp16")
    with pytest.raises(DeviceError, match="unknown precision"):
        Scorer(load_weights(weights_file), device="cpu", precision="int8")


def test_keep_freed_memory_takes_effect_with_glibc():
    """Where the C library is glibc the settings must take (they are worth 15% of fp32 scoring time)."""
    import platform
    import sys

    from radn_cli.scoring import keep_freed_memory

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
