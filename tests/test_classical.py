"""PSNR / SSIM / MS-SSIM: against an independent numpy transcription of Wang's ssim.m and msssim.m,
plus the properties and error messages users rely on."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import torch
from scipy import signal

from radn_cli.errors import ImageError, SizeMismatchError
from radn_cli.evaluation import classical
from radn_cli.evaluation.classical import MS_SSIM_MIN_SIZE, ms_ssim, psnr, ssim
from radn_cli.evaluation.metrics import METRICS
from radn_cli.evaluation.runner import measure
from radn_cli.pipeline import ScoredPair

GRAY = np.array([0.2989, 0.5870, 0.1140])
WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def fspecial_gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    half = (size - 1) / 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    h = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def matlab_box_downsample(img: np.ndarray, f: int) -> np.ndarray:
    """imfilter(img, ones(f)/f^2, 'symmetric', 'same'); img(1:f:end, 1:f:end)."""
    before = (f - 1) // 2
    padded = np.pad(img, ((before, f - 1 - before), (before, f - 1 - before)), mode="symmetric")
    return signal.correlate2d(padded, np.ones((f, f)) / f**2, mode="valid")[::f, ::f]


def ssim_index(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Wang's ssim_index.m core on [0, 1] planes: (mean SSIM, mean contrast-structure)."""
    window = fspecial_gaussian()
    c1, c2 = 0.01**2, 0.03**2

    def filt(z):
        return signal.correlate2d(z, window, mode="valid")

    mu1, mu2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
    cs = (2 * s12 + c2) / (s1 + s2 + c2)
    return float(((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs).mean()), float(cs.mean())


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    # MATLAB's round() takes halves away from zero (Python's round() would give 2 for 640 / 256).
    f = max(1, int((Decimal(min(a.shape)) / 256).quantize(Decimal(1), rounding=ROUND_HALF_UP)))
    if f > 1:
        a, b = matlab_box_downsample(a, f), matlab_box_downsample(b, f)
    return ssim_index(a, b)[0]


def reference_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    terms = []
    for scale in range(5):
        mean_ssim, mean_cs = ssim_index(a, b)
        terms.append(mean_ssim if scale == 4 else mean_cs)
        a, b = matlab_box_downsample(a, 2), matlab_box_downsample(b, 2)
    return float(np.prod(np.maximum(terms, 0) ** WEIGHTS))


def image_pair(h: int, w: int, seed: int = 0, noise: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image and a noisy, slightly darker copy, as [H, W, 3] float64 in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (h // 8 + 2, w // 8 + 2, 3))
    ref = np.stack([np.kron(coarse[..., c], np.ones((8, 8)))[:h, :w] for c in range(3)], axis=-1)
    ref = 0.15 + 0.7 * ref
    dist = np.clip(0.95 * ref + rng.normal(0, noise, ref.shape), 0, 1)
    return ref, dist


def as_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@pytest.mark.parametrize(("h", "w"), [(64, 80), (390, 400), (640, 650)])  # f = 1, 2, 3 (640/256 = 2.5)
def test_ssim_matches_matlab_transcription(h, w):
    ref, dist = image_pair(h, w)
    expected = reference_ssim(ref @ GRAY, dist @ GRAY)
    assert float(ssim(as_tensor(ref), as_tensor(dist))) == pytest.approx(expected, abs=1e-12)


def test_ssim_rgb_is_the_mean_over_channels():
    ref, dist = image_pair(100, 120, seed=1)
    expected = np.mean([reference_ssim(ref[..., c], dist[..., c]) for c in range(3)])
    assert float(ssim(as_tensor(ref), as_tensor(dist), channels="rgb")) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("h", "w"), [(161, 170), (200, 233)])  # odd sizes exercise the symmetric border
def test_ms_ssim_matches_matlab_transcription(h, w):
    ref, dist = image_pair(h, w, seed=2)
    expected = reference_ms_ssim(ref @ GRAY, dist @ GRAY)
    assert float(ms_ssim(as_tensor(ref), as_tensor(dist))) == pytest.approx(expected, abs=1e-12)
    expected_rgb = np.mean([reference_ms_ssim(ref[..., c], dist[..., c]) for c in range(3)])
    got_rgb = float(ms_ssim(as_tensor(ref), as_tensor(dist), channels="rgb"))
    assert got_rgb == pytest.approx(expected_rgb, abs=1e-12)


def test_psnr_values():
    ref = torch.zeros(3, 16, 16)
    dist = torch.full((3, 16, 16), 0.1)
    assert float(psnr(ref, dist, channels="rgb")) == pytest.approx(20.0, abs=1e-5)
    assert float(psnr(ref, dist)) == pytest.approx(20.0 - 20 * math.log10(0.9999), abs=1e-4)
    ref_np, dist_np = image_pair(40, 50, seed=3)
    mse_y = np.mean((ref_np @ GRAY - dist_np @ GRAY) ** 2)
    assert float(psnr(as_tensor(ref_np), as_tensor(dist_np))) == pytest.approx(
        -10 * math.log10(mse_y), abs=1e-10
    )
    assert math.isinf(float(psnr(ref, ref)))


def test_identical_images_score_perfectly():
    ref = torch.from_numpy(image_pair(170, 180, seed=4)[0].transpose(2, 0, 1).copy())
    assert float(ssim(ref, ref)) == pytest.approx(1.0, abs=1e-12)
    assert float(ms_ssim(ref, ref)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(ref, ref, channels="rgb")) == pytest.approx(1.0, abs=1e-12)


def test_batches_give_the_per_image_values_and_keep_the_dtype():
    pairs = [image_pair(170, 176, seed=s) for s in range(3)]
    refs = torch.stack([as_tensor(r) for r, _ in pairs]).float()
    dists = torch.stack([as_tensor(d) for _, d in pairs]).float()
    for metric in (psnr, ssim, ms_ssim):
        batch = metric(refs, dists)
        assert batch.shape == (3,) and batch.dtype == torch.float32
        singles = torch.stack([metric(r, d) for r, d in zip(refs, dists, strict=True)])
        torch.testing.assert_close(batch, singles)
        assert metric(refs[0], dists[0]).shape == ()
        assert metric(refs[0].double(), dists[0].double()).dtype == torch.float64


def test_more_distortion_scores_lower():
    ref, light = image_pair(170, 170, seed=5, noise=0.02)
    _, heavy = image_pair(170, 170, seed=5, noise=0.15)
    r, a, b = as_tensor(ref), as_tensor(light), as_tensor(heavy)
    for metric in (psnr, ssim, ms_ssim):
        assert float(metric(r, a)) > float(metric(r, b))


def test_luma_is_blind_to_a_saturation_change_and_rgb_is_not():
    ref, _ = image_pair(170, 170, seed=6)
    luma = (ref @ GRAY)[..., None]
    desaturated = np.clip(luma + 0.4 * (ref - luma), 0, 1)  # same Y, less colour
    r, d = as_tensor(ref), as_tensor(desaturated)
    assert float(ms_ssim(r, d)) > 0.9999
    assert float(ms_ssim(r, d, channels="rgb")) < 0.99


def test_ms_ssim_minimum_size_is_reported():
    assert MS_SSIM_MIN_SIZE == 161
    small = torch.rand(3, 160, 300)
    with pytest.raises(ImageError, match=r"at least 161x161 pixels.*got 300x160"):
        ms_ssim(small, small)
    ok = torch.rand(3, 161, 161)
    assert float(ms_ssim(ok, ok)) == pytest.approx(1.0)


def test_ssim_minimum_size_is_reported():
    tiny = torch.rand(3, 10, 12)
    with pytest.raises(ImageError, match="at least 11x11"):
        ssim(tiny, tiny)


def test_every_classical_metric_of_the_table_is_a_function_of_the_two_images():
    ref = torch.rand(3, MS_SSIM_MIN_SIZE, MS_SSIM_MIN_SIZE, generator=torch.Generator().manual_seed(3))
    dist = (ref + 0.05).clamp(0, 1)
    item = ScoredPair(pair=None, ref=_Loaded(ref), dist=_Loaded(dist))
    for name, metric in METRICS.items():
        if metric.model:
            continue
        function = getattr(classical, metric.function)
        assert measure(metric, item) == float(function(ref, dist, channels="rgb")), name


class _Loaded:
    def __init__(self, tensor):
        self.tensor = tensor


def test_bad_inputs_raise_typed_errors():
    a = torch.rand(3, 20, 20)
    with pytest.raises(SizeMismatchError, match="differ in shape"):
        psnr(a, torch.rand(3, 20, 21))
    with pytest.raises(ImageError, match=r"shape \[3, H, W\]"):
        psnr(torch.rand(1, 20, 20), torch.rand(1, 20, 20))
    with pytest.raises(ImageError, match="float tensor"):
        psnr((a * 255).to(torch.uint8), (a * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="channels"):
        psnr(a, a, channels="lab")  # type: ignore[arg-type]


TID_SROCC = {  # measured on the 480 pairs (make_tid2013.py), see the module docstring of classical
    ("psnr", "rgb"): 0.5831,
    ("ssim", "rgb"): 0.6386,
    ("ms_ssim", "rgb"): 0.7446,
    ("psnr", "y"): 0.3134,
    ("ssim", "y"): 0.5222,
    ("ms_ssim", "y"): 0.5520,
}


@pytest.mark.slow
def test_tid2013_dev_srocc(tid2013_dev):
    """All 480 TID2013 dev pairs (about 2 minutes on one core): opt-in with `-m slow`."""
    from PIL import Image

    from radn_cli.evaluation import classical
    from radn_cli.evaluation.databases import load_database
    from radn_cli.evaluation.stats import srocc

    out = tid2013_dev
    db = load_database(out)

    def load(path):
        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)

    scores: dict[tuple[str, str], list[float]] = {key: [] for key in TID_SROCC}
    for pair in db.pairs:
        ref, dist = load(pair.ref), load(pair.dist)
        for name, channels in TID_SROCC:
            scores[(name, channels)].append(float(getattr(classical, name)(ref, dist, channels=channels)))
    mos = [p.mos for p in db.pairs]
    for key, expected in TID_SROCC.items():
        assert srocc(scores[key], mos) == pytest.approx(expected, abs=5e-4), key
