import pytest
import torch
import torch.nn.functional as F

from radn_cli.models.radn import RADN, PatchAttention, RADNConfig, parameter_count


def _randomize(model: RADN, seed: int = 0) -> RADN:
    """Non-degenerate weights (PyTorch's default init makes scores nearly input-independent)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if name.startswith("Nonlocal") and name.split(".")[1] in ("theta", "phi", "W"):
                    p.mul_(0.1)
                if name.startswith("conv_offset"):
                    p.mul_(0.05)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.01)
        model.fc2_w.bias.fill_(1.0)
    return model.eval()


def test_sizes_match_the_spec():
    radn, wres = RADN(), RADN(RADNConfig.wresnet())
    assert (len(radn.state_dict()), parameter_count(radn)) == (74, 21_881_812)
    assert (len(wres.state_dict()), parameter_count(wres)) == (48, 14_889_410)
    assert radn.state_dict()["Nonlocal1.theta.weight"].shape == (256, 512, 1, 1)
    assert radn.state_dict()["conv_offset.weight"].shape == (18, 256, 3, 3)
    assert "conv21.weight" not in wres.state_dict()


def test_ablation_configs_drop_their_keys():
    keys = RADN(RADNConfig(deformable=False, attention=False)).state_dict().keys()
    assert not any(k.startswith(("conv_offset", "deform", "Nonlocal")) for k in keys)
    with pytest.raises(ValueError):
        RADNConfig(arch="wresnet")
    with pytest.raises(ValueError):
        RADNConfig(arch="vgg")


def test_config_json_round_trip():
    config = RADNConfig(deformable=False)
    assert RADNConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("config", [RADNConfig(), RADNConfig.wresnet()])
@pytest.mark.heavy  # full-size forward passes, one by one
def test_batched_forward_equals_one_image_at_a_time(config):
    model = _randomize(RADN(config)).double()
    dist = torch.rand(3, 5, 3, 32, 32, dtype=torch.float64)
    ref = torch.rand(3, 5, 3, 32, 32, dtype=torch.float64)
    out = model(dist, ref)
    assert out.score.shape == (3,) and out.patch_scores.shape == (3, 5)
    assert (out.patch_weights > 0).all()
    for i in range(3):
        single = model(dist[i : i + 1], ref[i : i + 1])
        torch.testing.assert_close(single.score, out.score[i : i + 1], rtol=0, atol=1e-10)
    pooled = (out.patch_scores * out.patch_weights).sum(1) / out.patch_weights.sum(1)
    torch.testing.assert_close(out.score, pooled)


def test_attention_matches_explicit_softmax():
    block = PatchAttention().double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.05)
    x = torch.randn(2, 7, 512, dtype=torch.float64, generator=g)

    def conv(layer, v):  # the reference's [B, C, N, 1] 1x1 convolution layout
        return F.conv2d(v.transpose(1, 2).unsqueeze(3), layer.weight, layer.bias).squeeze(3).transpose(1, 2)

    f = torch.softmax(conv(block.theta, x) @ conv(block.phi, x).transpose(1, 2), dim=-1)
    expected = x + conv(block.W, f @ conv(block.g, x))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-10)


def test_fresh_attention_is_identity():
    x = torch.randn(1, 4, 512)
    torch.testing.assert_close(PatchAttention()(x), x)


def test_identical_images_differ_from_distorted():
    model = _randomize(RADN())
    g = torch.Generator().manual_seed(2)  # seeded: an unlucky draw of the global generator can pass 1e-3
    ref = torch.rand(1, 6, 3, 32, 32, generator=g)
    noisy = (ref + 0.2 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    same = model(ref, ref).score
    other = model(noisy, ref).score
    assert abs(float((same - other).detach())) > 1e-3


def test_gradients_reach_every_parameter():
    model = _randomize(RADN()).train()
    model.Nonlocal1.W.weight.data.normal_(0, 0.01)
    model.Nonlocal2.W.weight.data.normal_(0, 0.01)
    out = model(torch.rand(2, 4, 3, 32, 32), torch.rand(2, 4, 3, 32, 32))
    out.score.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_forward_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        RADN()(torch.rand(1, 2, 3, 32, 32), torch.rand(1, 3, 3, 32, 32))


def test_deform_conv3x3_equals_torchvision():
    from torchvision.ops import deform_conv2d

    from radn_cli.models.radn import deform_conv3x3

    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 16, 8, 8, generator=g, dtype=torch.float64)
    offsets = 2.0 * torch.randn(3, 18, 8, 8, generator=g, dtype=torch.float64)  # many samples fall outside
    weight = torch.randn(7, 16, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(7, generator=g, dtype=torch.float64)
    expected = deform_conv2d(x, offsets, weight, bias, padding=1)
    torch.testing.assert_close(deform_conv3x3(x, offsets, weight, bias), expected, rtol=0, atol=1e-12)
    grads = [t.requires_grad_() for t in (x, offsets, weight)]
    ours = torch.autograd.grad(deform_conv3x3(x, offsets, weight, bias).square().sum(), grads)
    theirs = torch.autograd.grad(deform_conv2d(x, offsets, weight, bias, padding=1).square().sum(), grads)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


def test_deform_conv3x3_in_bf16_is_accurate_to_bf16():
    """bf16 input: positions and weights from fp32 offsets; errors are bf16 rounding (2^-9) only."""
    from radn_cli.models.radn import deform_conv3x3

    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 32, 8, 8, generator=g).bfloat16()
    offsets = 1.7 * torch.randn(4, 18, 8, 8, generator=g)
    weight = (0.05 * torch.randn(16, 32, 3, 3, generator=g)).bfloat16()
    bias = torch.randn(16, generator=g).bfloat16()
    exact = deform_conv3x3(x.double(), offsets.double(), weight.double(), bias.double())
    ours = deform_conv3x3(x, offsets, weight, bias)
    assert ours.dtype == torch.bfloat16
    # measured 0.0026 (the output's own rounding alone is about 0.0025); a wrong tap order or
    # position gives errors of order 1
    error = (ours.double() - exact).abs().max() / exact.abs().max()
    assert error < 2**-8


def test_layout_does_not_change_results():
    model = _randomize(RADN())
    patches = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        plain = model.encode_reference(patches)
        model.use_layout(torch.channels_last, torch.contiguous_format)
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert model.conv17.weight.is_contiguous() and not model.conv17.weight.is_contiguous(
            memory_format=torch.channels_last
        )
        laid_out = model.encode_reference(patches)
    for a, b in zip(plain, laid_out):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_shared_reference_equals_separate_pairs():
    model = _randomize(RADN()).double()
    ref = torch.rand(2, 4, 3, 32, 32, dtype=torch.float64)
    dist = torch.rand(2, 3, 4, 3, 32, 32, dtype=torch.float64)
    shared = model.forward_shared_reference(dist, ref)
    assert shared.score.shape == (2, 3) and shared.patch_scores.shape == (2, 3, 4)
    for b in range(2):
        for k in range(3):
            single = model(dist[b, k][None], ref[b][None])
            torch.testing.assert_close(single.score[0], shared.score[b, k], rtol=0, atol=1e-10)
