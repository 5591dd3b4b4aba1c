"""Generate the small synthetic test images used by the golden RADN numbers.

Usage (from the repository root)::

    .venv/bin/python tests/golden/make_images.py            # writes tests/golden/*.png

The PNG files are committed; this script only documents how they were made (the JPEG step depends on
the libjpeg that Pillow was built with, so a rerun elsewhere may differ in a few pixels and the golden
numbers are tied to the committed files, not to this script).

Images (8-bit RGB, no photos; a smooth texture with structure):

* ``ref_a.png``  96 x 128 (H x W, both multiples of 32 -> a full 3 x 4 patch grid).
* ``dist_a.png`` ``ref_a`` saved as JPEG at quality 23 by Pillow (default subsampling/options) and decoded.
* ``ref_b.png``  100 x 140 (not multiples of 32: the 4-row / 12-column remainder is not scored -> 3 x 4).
* ``dist_b.png`` ``ref_b`` + seeded Gaussian noise, sigma 0.05 on the [0, 1] scale, clipped to [0, 1],
  quantised with ``round(255 * x)`` to uint8.

Texture: per channel, a sum of a few oriented sinusoids (random frequency, phase, orientation) plus
seeded Gaussian noise on a coarse grid upsampled bicubically, plus a little fine noise; then an
affine stretch of the whole image to the range [8, 247] and rounding.  All randomness comes from
``numpy.random.default_rng`` with fixed seeds.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic smooth-ish RGB texture, uint8 [H, W, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for _ in range(3):
        acc = np.zeros((height, width))
        for _ in range(4):
            period = rng.uniform(6.0, 40.0)  # pixels
            angle = rng.uniform(0.0, np.pi)
            phase = rng.uniform(0.0, 2 * np.pi)
            amp = rng.uniform(0.3, 1.0)
            acc += amp * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + phase)
        coarse = rng.normal(0.0, 1.0, size=(height // 8 + 2, width // 8 + 2)).astype(np.float32)
        coarse_img = Image.fromarray(coarse).resize((width + 16, height + 16), Image.BICUBIC)
        acc += 1.2 * np.asarray(coarse_img, dtype=np.float64)[8 : 8 + height, 8 : 8 + width]
        acc += 0.15 * rng.normal(0.0, 1.0, size=(height, width))
        channels.append(acc)
    img = np.stack(channels, axis=-1)
    # Mix the channels a little so they are correlated, as in natural images.
    mix = np.array([[1.0, 0.4, 0.2], [0.3, 1.0, 0.3], [0.2, 0.4, 1.0]])
    img = img @ mix.T
    lo, hi = img.min(), img.max()
    img = 8.0 + (img - lo) * (239.0 / (hi - lo))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through Pillow's JPEG encoder at the given quality."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def gaussian_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """img + N(0, sigma) on the [0, 1] scale, clipped and quantised back to uint8."""
    rng = np.random.default_rng(seed)
    x = img.astype(np.float64) / 255.0 + rng.normal(0.0, sigma, size=img.shape)
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def main(out_dir: Path = HERE) -> None:
    ref_a = texture(96, 128, seed=20210507)
    dist_a = jpeg(ref_a, quality=23)
    ref_b = texture(100, 140, seed=20210529)
    dist_b = gaussian_noise(ref_b, sigma=0.05, seed=7)
    for name, arr in [("ref_a", ref_a), ("dist_a", dist_a), ("ref_b", ref_b), ("dist_b", dist_b)]:
        path = out_dir / f"{name}.png"
        Image.fromarray(arr).save(path, format="PNG", optimize=True)
        print(f"{path}: {arr.shape[0]}x{arr.shape[1]}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
