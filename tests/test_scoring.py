import pytest
import torch
from conftest import seeded_model

from radn_cli.devices import resolve_device
from radn_cli.errors import DeviceError, SizeMismatchError
from radn_cli.models.radn import RADNConfig
from radn_cli.scoring import Scorer
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
@pytest.mark.heavy  # many full-size forward passes
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


@pytest.mark.heavy  # many full-size forward passes
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

    from radn_cli.devices import keep_freed_memory

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc


def _scored_many_cases():
    g = torch.Generator().manual_seed(11)
    refs = [
        torch.rand(3, 100, 140, generator=g),
        torch.rand(3, 64, 64, generator=g),
        torch.rand(3, 40, 200, generator=g),
    ]

    def noisy(image, amount):
        return (image + amount * torch.randn(image.shape, generator=g)).clamp(0, 1)

    # pairs in the order a batch would see them: several per reference, references of three sizes
    pairs = [(0, noisy(refs[0], 0.05)), (0, noisy(refs[0], 0.2)), (1, noisy(refs[1], 0.1)), (2, refs[2])]
    pairs += [(1, noisy(refs[1], 0.3)), (0, refs[0])]
    return refs, pairs


@pytest.mark.parametrize(
    "precision, batch_size",
    # one bf16 case: on a CPU without bf16 kernels (AVX2 only) it alone takes half a minute
    [("fp32", 5), ("fp32", 7), ("fp32", 256), ("bf16", 7)],
)
@pytest.mark.heavy  # many full-size forward passes
def test_score_many_equals_one_pair_at_a_time(weights_file, precision, batch_size):
    """Chunks that span several images (batch size 5 and 7 cut 12-, 4- and 6-patch images across
    chunks) and grouped attention give each pair its own score, patch scores and patch weights."""
    refs, pairs = _scored_many_cases()
    scorer = Scorer(load_weights(weights_file), device="cpu", precision=precision, batch_size=batch_size)
    together = scorer.encode_references(refs)
    alone = [scorer.encode_reference(r) for r in refs]
    for a, b in zip(together, alone):
        assert (a.width, a.height, a.grid) == (b.width, b.height, b.grid)
        torch.testing.assert_close(a.features, b.features, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a.offsets, b.offsets, rtol=1e-5, atol=1e-5)
    many = scorer.score_many([(together[r], image) for r, image in pairs])
    tolerance = 1e-5 if precision == "fp32" else 2e-2
    for (r, image), result in zip(pairs, many):
        single = scorer.score(alone[r], image)
        assert result.grid == single.grid and (result.width, result.height) == (single.width, single.height)
        assert result.score == pytest.approx(single.score, abs=tolerance)
        torch.testing.assert_close(result.patch_scores, single.patch_scores, rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(result.patch_weights, single.patch_weights, rtol=tolerance, atol=tolerance)
    scores = [result.score for result in many]
    assert len(set(round(s, 6) for s in scores)) == len(scores)  # every pair got its own number
    assert scorer.score_many([]) == [] and scorer.encode_references([]) == []


def test_score_many_refuses_a_pair_of_the_wrong_size(weights_file):
    refs, _ = _scored_many_cases()
    scorer = Scorer(load_weights(weights_file), device="cpu")
    encoded = scorer.encode_references(refs[:2])
    with pytest.raises(SizeMismatchError, match="64x64 but distorted is 140x100"):
        scorer.score_many([(encoded[0], refs[0]), (encoded[1], refs[0])])


def test_default_batch_size_follows_the_device(weights_file):
    from radn_cli.devices import default_batch_size

    assert Scorer(load_weights(weights_file), device="cpu").batch_size == default_batch_size(
        torch.device("cpu")
    )
    assert default_batch_size(torch.device("cuda")) > default_batch_size(torch.device("cpu"))
    assert Scorer(load_weights(weights_file), device="cpu", batch_size=9).batch_size == 9
    with pytest.raises(DeviceError, match="at least 1"):
        Scorer(load_weights(weights_file), device="cpu", batch_size=0)


def test_bf16_warning_only_where_bf16_is_slow(monkeypatch):
    import radn_cli.devices as devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_bf16_kernels", lambda: False)
    assert "no bf16 kernels" in devices.precision_warning("bf16", cpu)
    assert devices.precision_warning("fp32", cpu) is None
    assert devices.precision_warning("bf16", torch.device("cuda")) is None
    monkeypatch.setattr(devices, "cpu_has_bf16_kernels", lambda: True)
    assert devices.precision_warning("bf16", cpu) is None


def test_bf16_kernel_check_agrees_with_the_cpu_flags():
    """Linux: oneDNN's bf16 kernels need AVX-512 (avx512bw/vl/dq) or AMX; an AVX2-only CPU has none."""
    import platform
    import sys

    from radn_cli.devices import cpu_has_bf16_kernels

    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "i686"):
        pytest.skip("reads /proc/cpuinfo of an x86 Linux machine")
    flags = set()
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    avx512_core = {"avx512bw", "avx512vl", "avx512dq"} <= flags
    if not avx512_core and "amx_bf16" not in flags:
        assert cpu_has_bf16_kernels() is False
    elif avx512_core:
        assert cpu_has_bf16_kernels() is True


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_agrees_with_the_cpu_and_groups_like_one_pair(weights_file):
    """fp32 on CUDA (the Scorer turns cuDNN's TF32 off for it) within 1e-4 of the CPU; bf16 and fp16
    within 2% of the CPU's fp32; score_many on CUDA as one pair at a time."""
    assert torch.backends.cudnn.allow_tf32  # PyTorch's default, restored after every fp32 call
    refs, pairs = _scored_many_cases()
    cpu = Scorer(load_weights(weights_file), device="cpu")
    expected = [cpu.score_pair(refs[r], image).score for r, image in pairs]
    for precision, tolerance in (("fp32", 1e-4), ("bf16", 2e-2), ("fp16", 2e-2)):
        gpu = Scorer(load_weights(weights_file), device="cuda", precision=precision)
        encoded = gpu.encode_references(refs)
        many = [result.score for result in gpu.score_many([(encoded[r], image) for r, image in pairs])]
        alone = [gpu.score(encoded[r], image).score for r, image in pairs]
        span = max(expected) - min(expected)
        for e, m, a in zip(expected, many, alone):
            assert abs(m - e) <= tolerance * max(1.0, span), (precision, m, e)
            assert m == pytest.approx(a, abs=1e-5 if precision == "fp32" else tolerance)
    assert torch.backends.cudnn.allow_tf32


def test_exact_fp32_turns_tf32_off_only_for_cuda_fp32_and_restores_it():
    from radn_cli.devices import exact_fp32

    before = torch.backends.cudnn.allow_tf32
    with exact_fp32(torch.device("cuda"), torch.float32):
        assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 == before
    for device, dtype in (("cuda", torch.bfloat16), ("cpu", torch.float32)):
        with exact_fp32(torch.device(device), dtype):
            assert torch.backends.cudnn.allow_tf32 == before


def test_an_image_smaller_than_a_patch_is_refused(weights_file):
    from radn_cli.errors import ImageError

    scorer = Scorer(load_weights(weights_file), device="cpu")
    with pytest.raises(ImageError, match="20x40 pixels is smaller than one 32x32 patch"):
        scorer.encode_reference(torch.rand(3, 40, 20))
