"""Decoding: a file's pixels as float32 planes in [0, 1] at the source's bit depth (16-bit PNG in two
8-bit passes, 16-bit TIFFs that Pillow would reduce handed to ``tiff16``, everything else by Pillow),
with every decoder failure turned into an ImageError."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch
from PIL import Image

from ..errors import ImageError, reason
from .color import icc_8bit, icc_float
from .pixels import CORRUPT, Pixels, planes

if TYPE_CHECKING:
    from .files import Header
    from .tiff16 import TiffHeader


def decode(header: Header) -> Pixels:
    """Decode the pixels of an opened file, turning every decoder failure into an ImageError."""
    im, fp, shown = header.image, header.fp, header.shown
    try:
        pixels = _decode(im, fp, shown)
        frames = getattr(im, "n_frames", 1)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode the image", shown) from None
    except Exception as exc:
        raise ImageError(f"{CORRUPT} ({reason(exc)})", shown) from None
    width, height = (header.width, header.height) if pixels.oriented else header.stored
    if pixels.color.shape[1:] != (height, width):
        raise ImageError(f"{CORRUPT} (decoded size differs from the header)", shown)
    if frames > 1:
        pixels.notes.append(f"first of {frames} frames used")
    return pixels


def _decode(im: Image.Image | TiffHeader, fp: BinaryIO, shown: str) -> Pixels:
    if not isinstance(im, Image.Image) or (im.format == "TIFF" and _tiff_for_tifffile(im)):
        from .tiff16 import decode_tiff16  # imports tifffile

        return decode_tiff16(fp, shown)
    if im.format == "PNG" and _png_header_byte(fp, 24) == 16:
        return _decode_png16(im, fp, shown)
    return _decode_pillow(im, shown)


def _tiff_for_tifffile(im: Image.Image) -> bool:
    """A TIFF over 8 bits per sample that Pillow would not read at full precision: more than one sample
    per pixel (Pillow keeps 8 bits of each), or grey stored min-is-white (Pillow does not invert it)."""
    bits = im.tag_v2.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 and (int(im.tag_v2.get(277, 1)) > 1 or im.tag_v2.get(262) == 0)


def _split(planes: torch.Tensor, has_alpha: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    return (planes[:-1], planes[-1:]) if has_alpha else (planes, None)


def _png_header_byte(fp: BinaryIO, index: int) -> int:
    """A byte of the IHDR data (24: bit depth, 25: colour type), which PNG requires to come first."""
    fp.seek(index)
    value = fp.read(1)
    return value[0] if value else 0


def _decode_png16(im: Image.Image, fp: BinaryIO, shown: str) -> Pixels:
    """16-bit PNG at full precision (Pillow alone keeps only 8 bits of colour and grey + alpha PNGs)."""
    color_type = _png_header_byte(fp, 25)
    values = planes(_png16_samples(im, fp, color_type), 1.0)  # (C, H, W), 0..65535
    key = im.info.get("transparency")
    key_alpha = _key_alpha(values, key) if key is not None and color_type in (0, 2) else None
    color, alpha = _split(values.div_(65535.0), color_type in (4, 6))
    pixels = Pixels(color, alpha if key_alpha is None else key_alpha, 16)
    pixels.color = icc_float(pixels.color, im.info.get("icc_profile"), pixels.notes, shown)
    return pixels


def _png16_samples(im: Image.Image, fp: BinaryIO, color_type: int) -> np.ndarray:
    """uint16 samples [H, W, C] of a 16-bit PNG, decoded by Pillow's PNG decoder.

    Pillow has no 16-bit colour mode, but its unpackers can take either byte of each sample: one pass
    gives the high bytes and one the low bytes (grey + alpha fits in one 8-bit RGBA pass). Pillow is
    used rather than torchvision.io.decode_png, which crashes the process on corrupt data.
    """
    if color_type == 0:
        im.load()
        return np.asarray(im).astype(np.uint16)[:, :, None]
    if color_type == 4:
        packed = _png_bytes(fp, "RGBA")  # grey high, grey low, alpha high, alpha low
        return (packed[:, :, 0::2].astype(np.uint16) << 8) | packed[:, :, 1::2]
    high, low = {2: ("RGB;16B", "RGB;16L"), 6: ("RGBA;16B", "RGBA;16L")}[color_type]
    return (_png_bytes(fp, high).astype(np.uint16) << 8) | _png_bytes(fp, low)


def _png_bytes(fp: BinaryIO, rawmode: str) -> np.ndarray:
    """The PNG's pixel data unpacked with another raw mode of the same width in bits."""
    fp.seek(0)
    with Image.open(fp, formats=["PNG"]) as im:
        tile = im.tile[0]
        im.tile = [tile._replace(args=rawmode) if hasattr(tile, "_replace") else (*tile[:3], rawmode)]
        im.load()
        return np.asarray(im)


def _key_alpha(values: torch.Tensor, key: int | tuple[int, ...]) -> torch.Tensor:
    """Alpha from a PNG tRNS colour key: 0 where every channel equals the key, else 1."""
    keys = torch.tensor(key if isinstance(key, tuple) else (key,), dtype=torch.float32)
    match = (values == keys.view(-1, 1, 1)).all(dim=0, keepdim=True)
    return (~match).to(torch.float32)


_STANDARD_MODES = {"L", "LA", "RGB", "RGBA", "CMYK"}
_MODE_MAP = {"1": "L", "P": "RGB", "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB"}
_GREY16_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def _decode_pillow(im: Image.Image, shown: str) -> Pixels:
    """Everything Pillow decodes at full precision: 8-bit images and 16-bit grey."""
    tagged = im.format == "TIFF" and 0x0112 in im.tag_v2
    im.load()
    # Recent Pillow versions turn a TIFF by its orientation while loading it, then drop the tag
    oriented = tagged and 0x0112 not in im.tag_v2
    icc = im.info.get("icc_profile")
    notes: list[str] = []
    if im.mode in _GREY16_MODES:
        grey = _grey16(im, shown)
        return Pixels(icc_float(grey, icc, notes, shown), None, 16, notes, oriented)
    im = _standard_mode(im, shown)
    alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
    color_im = im.convert(im.mode[:-1]) if alpha is not None else im
    color_im = icc_8bit(color_im, icc, notes)
    if color_im.mode == "CMYK":
        color_im = color_im.convert("RGB")
        notes.append("CMYK converted to RGB without a colour profile (approximate colours)")
    color = planes(np.asarray(color_im), 255.0)
    alpha_planes = None if alpha is None else planes(np.asarray(alpha), 255.0)
    return Pixels(color, alpha_planes, 8, notes, oriented)


def _standard_mode(im: Image.Image, shown: str) -> Image.Image:
    """The image in L, LA, RGB, RGBA or CMYK (8 bits per sample)."""
    palette_alpha = im.mode == "P" and im.palette is not None and im.palette.mode == "RGBA"
    if palette_alpha or ("transparency" in im.info and im.mode in ("1", "L", "P", "RGB")):
        return im.convert("RGBA")
    if im.mode in _STANDARD_MODES:
        return im
    if im.mode in _MODE_MAP:
        return im.convert(_MODE_MAP[im.mode])
    kind = "floating-point samples" if im.mode == "F" else f"pixel mode {im.mode}"
    raise ImageError(f"{kind} not supported", shown)


def _grey16(im: Image.Image, shown: str) -> torch.Tensor:
    samples = np.asarray(im)
    if im.mode == "I" and samples.size and (samples.min() < 0 or samples.max() > 65535):
        raise ImageError("32-bit integer samples outside 0..65535 are not supported", shown)
    return planes(samples, 65535.0)
