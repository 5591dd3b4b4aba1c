"""Tests for radn_cli.train.distortions (the 25 KADID-10k distortion types x 5 levels).

Kept light (about 5 s of CPU on one thread): contract tests use 64x96 images, the severity tests
96x128 synthetic images and 192x256 photos from the shared pristine set (skipped when it is absent;
the synthetic images always run). The CUDA test runs only where a GPU is present.
"""

from __future__ import annotations

import colorsys
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from radn_cli.train import distortions as D
from radn_cli.train.distortions import DISTORTIONS, distort, get_distortion
from radn_cli.train.distortions.filters import gaussian_1d

torch.set_num_threads(1)

PRISTINE = SHARED_DATA / "pristine"
RANDOM_IDS = [d.id for d in DISTORTIONS if d.random]
ALL_IDS = [d.id for d in DISTORTIONS]


# ---------------------------------------------------------------------------------------------------
# Test images
# ---------------------------------------------------------------------------------------------------


def synthetic_image(h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    """A natural-looking RGB test image [1, 3, h, w] spanning [0, 1]: 1/f ("pink") noise texture
    with correlated colour channels, a smooth illumination gradient and a few solid shapes with hard
    edges. Deterministic; no periodic structure (which could make shift-type errors non-monotone)."""
    g = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(h).view(h, 1)
    fx = torch.fft.rfftfreq(w).view(1, -1)
    amp = 1.0 / torch.sqrt(fy**2 + fx**2).clamp_min(1.0 / max(h, w))
    base = torch.randn((1, h, w // 2 + 1), generator=g, dtype=torch.complex64) * amp
    tint = torch.randn((3, h, w // 2 + 1), generator=g, dtype=torch.complex64) * amp * 0.5
    tex = torch.fft.irfft2(base + tint, s=(h, w))
    tex = (tex - tex.mean()) / tex.std()
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = 0.5 + 0.12 * tex + 0.25 * (xx - 0.5) + torch.tensor([0.05, 0.0, -0.05]).view(3, 1, 1)
    img[:, h // 5 : h // 2, w // 8 : w // 3] = torch.tensor([0.85, 0.25, 0.2]).view(3, 1, 1)
    disc = (yy - 0.65) ** 2 + ((xx - 0.7) * w / h) ** 2 < 0.04
    img[:, disc] = torch.tensor([0.15, 0.3, 0.75]).view(3, 1)
    img[:, h - h // 6 :, : w // 2] = 0.05 + 0.05 * tex[:, h - h // 6 :, : w // 2]
    return D.mapmm(img.clamp(0, 1).unsqueeze(0))


def photo_images() -> torch.Tensor | None:
    """Two photos from the pristine set, resized to 192x256 (half of KADID's 384x512: at a quarter,
    type 05's 8 and 12 px shifts both exceed the photos' correlation length and tie), or None when
    the folder is missing."""
    from PIL import Image

    candidates = [
        PRISTINE / "wallpapers" / "Dragonfly_by_Bolly_0.webp",
        PRISTINE / "urban100" / "img_001.webp",
        PRISTINE / "bsds500" / "test_100007.jpg",
    ]
    found = [p for p in candidates if p.is_file()][:2]
    if not found:
        pool = sorted(PRISTINE.glob("*/*")) if PRISTINE.is_dir() else []
        found = pool[:2]
    if not found:
        return None
    tensors = []
    for p in found:
        im = Image.open(p).convert("RGB")
        im = im.resize((256, 192), Image.Resampling.LANCZOS)
        arr = np.array(im, dtype=np.float32) / 255.0
        tensors.append(torch.from_numpy(arr).permute(2, 0, 1))
    return torch.stack(tensors)


@pytest.fixture(scope="module")
def small_batch() -> torch.Tensor:
    return torch.cat([synthetic_image(seed=1), synthetic_image(seed=2)])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------


def test_registry_complete():
    assert [d.id for d in DISTORTIONS] == list(range(1, 26))
    assert len({d.name for d in DISTORTIONS}) == 25
    assert len({d.label for d in DISTORTIONS}) == 25
    assert all(len(d.levels) == 5 for d in DISTORTIONS)
    assert get_distortion("gblur").id == 1 and get_distortion("GBLUR").id == 1
    assert get_distortion(25).label == "Contrast Dist."
    assert set(RANDOM_IDS) == {3, 5, 11, 12, 13, 14, 15, 19, 20, 23}
    assert get_distortion(9).levels == (16, 32, 45, 120, 400)
    assert get_distortion(10).levels == (43, 36, 24, 7, 4)
    with pytest.raises(ValueError):
        get_distortion(26)
    with pytest.raises(ValueError):
        distort(torch.rand(1, 3, 8, 8), 1, 6)
    with pytest.raises(ValueError):
        distort(torch.rand(1, 1, 8, 8), 1, 1)


def test_labels_match_kadid_csv():
    csv = PRISTINE.parent / "labels" / "kadid10k.csv"
    if not csv.is_file():
        pytest.skip("KADID label file not available")
    names = {}
    for line in csv.read_text().splitlines()[1:]:
        path, label = line.split(",")[:2]
        names[int(Path(path).stem.split("_")[1])] = label
    assert names == {d.id: d.label for d in DISTORTIONS}


CATEGORY_OF = {
    **dict.fromkeys(range(1, 4), "blur"),
    **dict.fromkeys(range(4, 9), "color"),
    **dict.fromkeys(range(9, 11), "compression"),
    **dict.fromkeys(range(11, 16), "noise"),
    **dict.fromkeys(range(16, 19), "brightness"),
    **dict.fromkeys(range(19, 24), "spatial"),
    **dict.fromkeys(range(24, 26), "sharpness_contrast"),
}


def test_each_type_is_implemented_beside_its_table_row():
    """Each row of the table is registered on its own function, in its KADID category's module."""
    for d in DISTORTIONS:
        assert d.function.__name__ == f"_t{d.id:02d}_{d.name}"
        assert d.function.__module__ == f"{D.__name__}.{CATEGORY_OF[d.id]}"
    assert [m.__name__.rsplit(".", 1)[1] for m in D.CATEGORIES] == list(dict.fromkeys(CATEGORY_OF.values()))


REFERENCE_ENV = "RADN_DISTORTIONS_REFERENCE"


def _fixed_seed_outputs() -> dict:
    """Every type at levels 1, 3, 5 with fixed seeds: on one 3x64x64 image and on a 2x3x48x40 batch."""
    img = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1234))
    batch = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(99))
    out = {}
    for t in ALL_IDS:
        for level in (1, 3, 5):
            out[(t, level)] = distort(img, t, level, generator=gen(1000 + 10 * t + level))
            out[("b", t, level)] = distort(batch, t, level, generator=gen(7 + t * level))
    return {"img": img, "img4": batch, "out": out}


def test_fixed_seed_outputs_match_a_saved_reference():
    """Refactoring guard, opt-in: with RADN_DISTORTIONS_REFERENCE=/some/file.pt, a run on the code
    before a change writes the file (and skips), runs after it must reproduce every output bit for bit.
    The file depends on the machine and the torch version, so it is not kept in the repository."""
    path = os.environ.get(REFERENCE_ENV)
    if not path:
        pytest.skip(f"set {REFERENCE_ENV} to a .pt file to compare with (written when missing)")
    got = _fixed_seed_outputs()
    if not Path(path).is_file():
        torch.save(got, path)
        pytest.skip(f"wrote the reference {path}; run again after the change")
    ref = torch.load(path, weights_only=True)
    assert torch.equal(ref["img"], got["img"]) and torch.equal(ref["img4"], got["img4"])
    assert ref["out"].keys() == got["out"].keys()
    differ = [
        key
        for key, want in ref["out"].items()
        if want.dtype != got["out"][key].dtype
        or want.shape != got["out"][key].shape
        or not torch.equal(want.view(torch.int32), got["out"][key].view(torch.int32))  # -0.0, NaN too
    ]
    assert not differ, f"outputs differ from {path}: {differ}"


# ---------------------------------------------------------------------------------------------------
# Contract: shape, dtype, range, determinism
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_id", ALL_IDS)
def test_shape_dtype_range_determinism(type_id, small_batch):
    x = small_batch * 0.8 + 0.1  # not spanning [0, 1]: exercises the pre-normalisation
    for level in (1, 5):
        a = distort(x, type_id, level, generator=gen(7))
        assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
        assert torch.isfinite(a).all()
        assert a.min() >= 0.0 and a.max() <= 1.0
        b = distort(x, type_id, level, generator=gen(7))
        assert torch.equal(a, b), "same seed must give the same output"
        if type_id in RANDOM_IDS:
            c = distort(x, type_id, level, generator=gen(8))
            assert not torch.equal(a, c), "different seeds must differ for a random type"
    assert torch.equal(x, small_batch * 0.8 + 0.1), "input must not be modified"


def test_other_dtypes_and_unbatched(small_batch):
    x64 = small_batch.double()
    y = distort(x64, 24, 3)
    assert y.dtype == torch.float64 and y.shape == x64.shape
    single = distort(small_batch[0], 11, 2, generator=gen(1))
    assert single.shape == small_batch[0].shape
    batched = distort(small_batch[:1], 11, 2, generator=gen(1))
    assert torch.equal(single, batched[0])


def test_batch_images_get_their_own_randomness(small_batch):
    x = torch.cat([small_batch[:1], small_batch[:1]])
    y = distort(x, 11, 3, generator=gen(3))
    assert not torch.equal(y[0], y[1])


def test_pre_and_post_mapmm(small_batch):
    x = small_batch[:1] * 0.5 + 0.2
    # identity level of mean shift: output is exactly the stretched input
    assert torch.allclose(distort(x, 18, 3), D.mapmm(x), atol=1e-6)
    # non-identity levels still span [0, 1] thanks to the final mapmm
    y = distort(x, 18, 1)
    assert y.min() == 0.0 and y.max() == 1.0
    # mapmm is per image
    pair = torch.cat([x, x * 0.1])
    assert torch.allclose(D.mapmm(pair)[0], D.mapmm(pair)[1], atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# Severity: the error against the reference grows with the level
# ---------------------------------------------------------------------------------------------------

IDENTITY_LEVELS = {1: 1, 3: 1, 8: 1, 18: 3}  # numerically (near) the identity per the spec
SEEDS = (11, 12, 13)


def _mse(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return ((y - ref) ** 2).flatten(1).mean(1)


def _duplicate_fraction(y: torch.Tensor) -> torch.Tensor:
    """Fraction of horizontally or vertically adjacent pixel pairs that are exactly equal."""
    h = (y[..., :, 1:] == y[..., :, :-1]).all(1).flatten(1).float().mean(1)
    v = (y[..., 1:, :] == y[..., :-1, :]).all(1).flatten(1).float().mean(1)
    return (h + v) / 2


def _affine_free_mse(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """MSE left after the best global gain and offset, i.e. var(ref) * (1 - corr(y, ref)^2)."""
    a = y.flatten(1) - y.flatten(1).mean(1, keepdim=True)
    b = ref.flatten(1) - ref.flatten(1).mean(1, keepdim=True)
    corr = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return b.pow(2).mean(1) * (1 - corr**2)


def _changed_fraction(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Share of pixels that differ from the reference in any channel."""
    return ((y - ref).abs() > 1e-6).any(1).flatten(1).float().mean(1)


# Types whose level is the number of local replacements (20: patches, 23: blocks). Their MSE per
# replacement depends on what happens to lie under it (a block whose colour matches the background,
# a patch copied within a flat region, an overlap with an earlier one), so MSE is very noisy from
# level to level (measured on 192x256 photos, 3 seeds: L4 < L3 for colour blocks on 2 of 5 photos).
# What the level controls is how much of the image is replaced: measure the changed area instead,
# averaged over more seeds.
AREA_TYPES = (20, 23)
AREA_SEEDS = (11, 12, 13, 14, 15)


def severity(type_id: int, x: torch.Tensor) -> np.ndarray:
    """[levels, images] error of each level against the (mapmm-ed) reference."""
    ref = D.mapmm(x)
    if type_id in AREA_TYPES:
        seeds = AREA_SEEDS
    else:
        seeds = SEEDS if type_id in RANDOM_IDS else (0,)
    out = []
    for level in range(1, 6):
        errs = []
        for s in seeds:
            y = distort(x, type_id, level, generator=gen(s))
            if type_id == 21:
                # Pixelate: MATLAB's nearest resize maps rows with the requested scale z going down
                # but with the ceil()-rounded size going up, so the result drifts by up to ~1 px
                # across the image by an amount that depends on the rounding, not on the level
                # (measured MSE on a 384x512 photo: L1 34.5 dB, L2 35.2, L3 36.2). MSE is dominated
                # by that sub-pixel drift. What the level controls is how many source rows/columns
                # survive, so measure pixelation directly: the share of duplicated neighbours, minus
                # the reference's.
                e = _duplicate_fraction(y) - _duplicate_fraction(ref)
            elif type_id in AREA_TYPES:
                e = _changed_fraction(y, ref)
            elif type_id == 6:
                # Colour quantisation: the palette's darkest and brightest colours are box means, so
                # they fall short of the image's extremes by an amount that depends on how the boxes
                # happen to split, not on their number; the generator's final global mapmm then
                # stretches the whole image by that amount (faithful to KADID). That stretch can
                # outweigh the quantisation error (synthetic image, plain MSE: 48 colours 0.00759,
                # 32 colours 0.00757). Remove the best global gain and offset before comparing.
                e = _affine_free_mse(y, ref)
            else:
                e = _mse(y, ref)
            errs.append(e)
        out.append(torch.stack(errs).mean(0).numpy())
    return np.stack(out)


def check_order(type_id: int, err: np.ndarray, label: str) -> None:
    """L1 < ... < L5, or growing with |level - 3| on both sides of L3 for types 18 and 25."""
    if type_id == 18:
        steps = [(3, 2), (2, 1), (3, 4), (4, 5)]  # (milder, stronger)
    elif type_id == 25:
        # Contrast change: the identity curve is a = -0.2, and L3 (a=0) and L4 (a=-0.4) sit at the
        # same distance from it with mirrored knots, so (spline being linear in its knot values)
        # their curves deviate from the identity by exactly opposite amounts: their MSE ties up to
        # clipping and either can come out lower (test_contrast_l3_l4_mirror checks the tie). The
        # spec's "L3 is closest" holds against L2, L1 and L5, which this checks; L3 vs L4 is
        # decided by people (4.29 vs 4.14), not by any symmetric error measure.
        steps = [(3, 2), (4, 2), (2, 1), (4, 5), (3, 5)]
    else:
        steps = [(1, 2), (2, 3), (3, 4), (4, 5)]
    for lo, hi in steps:
        a, b = err[lo - 1], err[hi - 1]
        if IDENTITY_LEVELS.get(type_id) == lo:
            ok = np.all(a <= b)
        else:
            ok = np.all(a < b)
        assert ok, f"type {type_id} on {label}: error at L{lo} {a} not below L{hi} {b}; all: {err.T}"


@pytest.mark.parametrize("type_id", ALL_IDS)
def test_severity_synthetic(type_id):
    # 96x128; the area types need room: ten 32x32 blocks would cover most of a tiny image
    h, w = (192, 256) if type_id in AREA_TYPES else (96, 128)
    x = torch.cat([synthetic_image(h, w, seed=3), synthetic_image(h, w, seed=4)])
    check_order(type_id, severity(type_id, x), "synthetic")


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    imgs = photo_images()
    if imgs is None:
        pytest.skip(f"{PRISTINE} not available")
    return imgs


@pytest.mark.parametrize("type_id", ALL_IDS)
def test_severity_photos(type_id, photos):
    check_order(type_id, severity(type_id, photos), "photos")


# ---------------------------------------------------------------------------------------------------
# Spot checks against the spec
# ---------------------------------------------------------------------------------------------------


def test_gaussian_kernel_sizes_and_identity_level():
    sizes = [D.gaussian_size(s) for s in get_distortion(1).levels]
    assert sizes == [3, 3, 5, 9, 21]
    k = D.fspecial_gaussian(3, 0.1)
    assert k[1, 1] == 1.0 and k.sum() == 1.0  # sigma 0.1: a numerical delta
    k = D.fspecial_gaussian(13, 3.0)
    assert abs(k.sum() - 1) < 1e-12 and k.shape == (13, 13)
    sep = np.outer(gaussian_1d(3.0, 13), gaussian_1d(3.0, 13))
    assert np.abs(sep - k).max() < 1e-12


def test_disk_kernel():
    sizes = [D.fspecial_disk(r).shape[0] for r in get_distortion(2).levels]
    assert sizes == [3, 5, 9, 13, 17]
    k = D.fspecial_disk(1.0)
    # MATLAB fspecial('disk', 1)
    assert np.allclose(
        k, [[0.0251, 0.1453, 0.0251], [0.1453, 0.3183, 0.1453], [0.0251, 0.1453, 0.0251]], atol=1e-4
    )
    # exact area against 64x64 supersampling of each pixel
    r = 2.7
    k = D.fspecial_disk(r)
    n = k.shape[0]
    sub = (np.arange(64) + 0.5) / 64 - 0.5
    c = np.arange(n) - n // 2
    yy = c[:, None, None, None] + sub[None, None, :, None]
    xx = c[None, :, None, None] + sub[None, None, None, :]
    approx = ((yy**2 + xx**2) <= r * r).mean(axis=(2, 3))
    assert np.abs(approx / approx.sum() - k).max() < 2e-4


def test_motion_kernel():
    assert np.allclose(D.fspecial_motion(1, 37), [[1.0]])
    assert np.allclose(D.fspecial_motion(2, 0), [[0.25, 0.5, 0.25]])
    for length in (2, 4, 6, 10):
        for angle in (0, 30, 45, 90, 135, 180):
            k = D.fspecial_motion(length, angle)
            assert abs(k.sum() - 1) < 1e-9 and (k >= 0).all()
    assert np.allclose(D.fspecial_motion(6, 90), D.fspecial_motion(6, 0).T)
    assert np.allclose(D.fspecial_motion(10, 0), D.fspecial_motion(10, 180))
    # 45 degrees counter-clockwise: weight on the anti-diagonal (top right to bottom left)
    k = D.fspecial_motion(6, 45)
    assert k[0, -1] > 0 and k[-1, 0] > 0 and k[0, 0] == 0 and k[-1, -1] == 0
    # len 1 motion blur leaves the image alone
    x = synthetic_image()
    assert torch.allclose(distort(x, 3, 1, generator=gen(0)), x, atol=1e-6)


def test_pixelate_sizes():
    s = get_distortion(21).levels
    assert [D.pixelate_size(384, 512, v) for v in s] == [
        (341, 455),
        (302, 402),
        (269, 358),
        (219, 292),
        (112, 149),
    ]
    x = torch.rand(1, 3, 384, 512)
    y = distort(x, 21, 5)
    assert y.shape == x.shape
    # exactly 149 distinct columns survive at L5 (rows: 112)
    assert torch.unique(y[0, 0], dim=1).shape[1] == 149
    assert torch.unique(y[0, 0], dim=0).shape[0] == 112


def test_jitter_overshoot_goes_into_the_final_mapmm():
    """As imwarpmap.m (audit item 3): the bicubic warp's overshoot at hard edges is not clipped, so
    the final global mapmm lowers the contrast of the whole image instead."""
    x = torch.zeros(1, 3, 64, 64)
    x[..., 16:48, 16:48] = 1.0  # a white square on black: hard edges
    x[..., 0, 0] = 0.5  # one mid-grey pixel: the input's range is still exactly [0, 1]
    raw = get_distortion(19).function(D.mapmm(x), 1.0, gen(0))
    assert raw.min() < -0.02 and raw.max() > 1.02  # Keys' negative lobes overshoot
    y = distort(x, 19, 5, generator=gen(0))
    assert y.min() == 0.0 and y.max() == 1.0
    inside, outside = y[..., 28:36, 28:36].mean(), y[..., 56:, 56:].mean()
    assert 0.6 < inside - outside < 0.95  # the 0/1 step lost contrast (clipped first: about 1)


def test_curves_formula():
    x = torch.linspace(0, 1, 101)
    for c in (0.3, 0.5, 0.55, 0.75, 1.05):
        expect = ((2 - 4 * c) * x**2 + (4 * c - 1) * x).clamp(0, 1)
        assert torch.allclose(D.curves(x, c), expect, atol=1e-6)
    # brighten's RGB curve: x + 2a x (1 - x); darken: x - 2a x (1 - x)
    a = 0.4
    assert torch.allclose(D.curves(x, 0.5 + a / 2), (x + 2 * a * x * (1 - x)).clamp(0, 1), atol=1e-6)
    img = synthetic_image()
    y = distort(img, 17, 4)
    expect = D.mapmm((img - 2 * 0.4 * img * (1 - img)).clamp(0, 1))
    assert torch.allclose(y, expect, atol=1e-5)


def test_contrast_spline():
    for a in get_distortion(25).levels:
        p, q = 0.25 - a / 4, 0.75 + a / 4
        knots_x = torch.tensor([0.0, 0.3, 0.5, 0.7, 1.0], dtype=torch.float64)
        knots_y = torch.tensor([0.0, p, 0.5, q, 1.0], dtype=torch.float64)
        assert torch.allclose(D.curves(knots_x, (p, q)), knots_y.clamp(0, 1), atol=1e-12)
        xs = torch.linspace(0, 1, 257, dtype=torch.float64)
        ys = D.not_a_knot_spline(knots_x.tolist(), knots_y.tolist(), xs)
        interp = pytest.importorskip("scipy.interpolate")
        oracle = interp.CubicSpline(knots_x.numpy(), knots_y.numpy(), bc_type="not-a-knot")(xs.numpy())
        assert np.abs(ys.numpy() - oracle).max() < 1e-10
    # a = -0.2 is the identity curve
    xs = torch.rand(1000, dtype=torch.float64)
    assert torch.allclose(D.curves(xs, (0.3, 0.7)), xs, atol=1e-12)


def test_contrast_l3_l4_mirror():
    # L3 (a=0) and L4 (a=-0.4) deviate from the identity curve (a=-0.2) by exactly opposite amounts
    xs = torch.linspace(0, 1, 513, dtype=torch.float64)
    knots = [0.0, 0.3, 0.5, 0.7, 1.0]
    f3 = D.not_a_knot_spline(knots, [0.0, 0.25, 0.5, 0.75, 1.0], xs)
    f4 = D.not_a_knot_spline(knots, [0.0, 0.35, 0.5, 0.65, 1.0], xs)
    assert torch.allclose(f3 - xs, -(f4 - xs), atol=1e-12)
    assert (f3 - xs).abs().max() > 0.04


def test_lab_conversions():
    x = torch.rand(2, 3, 17, 19, generator=gen(0))
    lab = D.rgb_to_lab(x)
    assert (D.lab_to_rgb(lab) - x).abs().max() < 1e-3
    ref = D.rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten()
    assert torch.allclose(ref, torch.tensor([53.24, 80.09, 67.20]), atol=0.05)
    white = D.rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-3)
    # Lab saturation at factor 1 is the identity up to the round trip
    img = synthetic_image()
    assert (distort(img, 8, 1) - img).abs().max() < 1e-3


def test_ycbcr_studio_range():
    white = D.rgb_to_ycbcr(torch.ones(1, 3, 1, 1)).flatten() * 255
    black = D.rgb_to_ycbcr(torch.zeros(1, 3, 1, 1)).flatten() * 255
    assert torch.allclose(white, torch.tensor([235.0, 128.0, 128.0]), atol=1e-3)
    assert torch.allclose(black, torch.tensor([16.0, 128.0, 128.0]), atol=1e-3)
    x = torch.rand(1, 3, 8, 8, generator=gen(1))
    assert (D.ycbcr_to_rgb(D.rgb_to_ycbcr(x)) - x).abs().max() < 1e-5


def test_hsv_matches_colorsys():
    x = torch.rand(1, 3, 6, 7, generator=gen(2))
    hsv = D.rgb_to_hsv(x)
    for i in range(6):
        for j in range(7):
            expect = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
            assert np.allclose(hsv[0, :, i, j].numpy(), expect, atol=1e-5)
    assert (D.hsv_to_rgb(hsv) - x).abs().max() < 1e-5


def test_multithresh_is_optimal():
    # exact DP against exhaustive search for 2 thresholds on a coarse histogram
    x = torch.rand(1, 3, 20, 20, generator=gen(5)) ** 2
    bins = 32
    t = D.multithresh(x, 2, bins=bins)[0].numpy()
    idx = np.round((x.flatten().numpy() - x.min().item()) / (x.max() - x.min()).item() * (bins - 1))
    hist = np.bincount(idx.astype(int), minlength=bins).astype(float)
    centres = np.arange(bins)

    def score(a: int, b: int) -> float:
        total = 0.0
        for lo, hi in ((0, a), (a + 1, b), (b + 1, bins - 1)):
            w = hist[lo : hi + 1].sum()
            if w > 0:
                total += (hist[lo : hi + 1] * centres[lo : hi + 1]).sum() ** 2 / w
        return total

    best = max((score(a, b), a, b) for a in range(bins) for b in range(a + 1, bins - 1))
    got = score(*[int(round((v - x.min().item()) / (x.max() - x.min()).item() * (bins - 1))) for v in t])
    assert got == pytest.approx(best[0], rel=1e-12)
    # 20 thresholds (type 22, L1) come back sorted and inside the range
    t20 = D.multithresh(synthetic_image(), 20)[0]
    assert t20.shape == (20,) and torch.all(t20[1:] > t20[:-1])


def test_quantization_values():
    img = synthetic_image()
    y = distort(img, 22, 5)  # 7 thresholds: at most 8 distinct values per channel, 0 and 1 included
    values = torch.unique(y)
    assert len(values) <= 8 and values[0] == 0 and values[-1] == 1


def test_codecs_available():
    from PIL import features

    assert features.check("jpg") and features.check("jpg_2000")


def test_colour_quantization_palette_size():
    img = synthetic_image()
    y = distort(img, 6, 5)  # 8 colours
    colours = torch.unique((y[0] * 255).round().reshape(3, -1).T, dim=0)
    assert len(colours) <= 8


def test_colour_block_draws():
    img = synthetic_image()
    y = distort(img, 23, 1, generator=gen(4))
    changed = (y != img).any(1)[0]
    # two 32x32 blocks (possibly overlapping or partly identical to the image)
    assert 0 < changed.sum() <= 2 * 32 * 32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_contract(small_batch):
    x = small_batch.cuda()
    for type_id in ALL_IDS:
        g = torch.Generator(device="cuda").manual_seed(1)
        a = distort(x, type_id, 4, generator=g)
        g = torch.Generator(device="cuda").manual_seed(1)
        b = distort(x, type_id, 4, generator=g)
        assert a.device == x.device and a.shape == x.shape and torch.equal(a, b)
        assert a.min() >= 0 and a.max() <= 1
        # a CPU generator with CUDA images also works
        c = distort(x, type_id, 4, generator=gen(1))
        assert c.device == x.device
        if type_id not in RANDOM_IDS and type_id not in (6, 9, 10, 22):
            # same maths on both devices (codecs and Otsu bins can flip on rounding: excluded)
            cpu = distort(small_batch, type_id, 4)
            assert (cpu - c.cpu()).abs().mean() < 1e-3
