"""KADID-10k category compression: 09 JPEG2000, 10 JPEG, both through Pillow on the CPU.

Each type's table row, ``@register(id, name, KADID label, parameter=..., levels=...)`` with the
five values that ``imdist_generator.m`` passes for levels 1..5, sits right above its implementation.

09 uses OpenJPEG (through Pillow) instead of MATLAB's JPEG2000 codec. MATLAB's CompressionRatio does
not count the headers, OpenJPEG's rate does; the rate is corrected so that ``raw / ratio`` bytes go to
the data, as in MATLAB. 10 uses libjpeg(-turbo) through Pillow, 4:2:0, baseline, standard tables.
Both round the image to 8 bit, as MATLAB's ``imwrite`` does.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image
from torch import Generator, Tensor

from .registry import register
from .uint8 import from_uint8_images, to_uint8_images

_J2K_SOD = b"\xff\x93"


def _j2k_encode(arr: np.ndarray, rate: float, resolutions: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(
        buf,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[float(rate)],
        irreversible=True,
        num_resolutions=resolutions,
        no_jp2=True,
    )
    return buf.getvalue()


@lru_cache(maxsize=64)
def _j2k_header_bytes(h: int, w: int, resolutions: int) -> int:
    """Bytes before the first start-of-data marker of our J2K codestream for an h x w RGB image
    (main header + tile-part header; they do not depend on the pixels)."""
    code = _j2k_encode(np.zeros((h, w, 3), dtype=np.uint8), 50.0, resolutions)
    return code.index(_J2K_SOD) + len(_J2K_SOD)


@register(9, "jpeg2000", "JP2K", parameter="compression ratio", levels=(16, 32, 45, 120, 400), codec=True)
def _t09_jpeg2000(x: Tensor, ratio: float, gen: Generator | None) -> Tensor:
    """OpenJPEG through Pillow: irreversible 9/7 wavelet, one quality layer, 5 resolutions (4
    decomposition levels). MATLAB's CompressionRatio does not count the headers, OpenJPEG's rate
    does, so the rate passed to OpenJPEG is raised to leave ``raw / ratio`` bytes for the data."""
    out = []
    for arr in to_uint8_images(x):
        h, w = arr.shape[:2]
        resolutions = max(1, min(5, int(math.floor(math.log2(min(h, w)))) + 1))
        raw = h * w * 3
        rate = raw / (raw / float(ratio) + _j2k_header_bytes(h, w, resolutions))
        buf = io.BytesIO(_j2k_encode(arr, max(rate, 1.0), resolutions))
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("RGB")))
    return from_uint8_images(out, x)


@register(10, "jpeg", "JPEG", parameter="IJG quality", levels=(43, 36, 24, 7, 4), codec=True)
def _t10_jpeg(x: Tensor, quality: float, gen: Generator | None) -> Tensor:
    """Baseline JPEG, IJG quality scaling, standard tables, 4:2:0, through Pillow."""
    out = []
    for arr in to_uint8_images(x):
        buf = io.BytesIO()
        Image.fromarray(arr).save(
            buf,
            format="JPEG",
            quality=int(quality),
            subsampling="4:2:0",
            optimize=False,
            progressive=False,
        )
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("RGB")))
    return from_uint8_images(out, x)
