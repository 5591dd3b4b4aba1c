"""Image decoding policy: how an image file becomes the float32 RGB tensor that RADN scores.

Formats are PNG, JPEG, WebP, TIFF and BMP, recognised by content (the file suffix is not used).

- Bit depth: 8-bit samples are divided by 255, 16-bit samples by 65535; 16-bit data is never reduced
  to 8 bits. Pillow reduces 16-bit colour PNGs to 8 bits, so they are decoded here in two passes of
  Pillow's PNG decoder, one for each byte of the samples. 16-bit grey TIFFs are read by Pillow;
  16-bit RGB and RGBA TIFFs are read here when stored in strips, uncompressed or Deflate-compressed.
  Other 16-bit TIFF layouts are refused with a message that says how to convert them.
- Grey, 1-bit and palette images become RGB by repeating the grey channel or expanding the palette.
- EXIF orientation (all 8 values) is applied: width, height and pixels are those of the image as
  displayed. In a PNG only an eXIf chunk before the image data counts, as the PNG specification says.
- Colour: an embedded ICC profile is converted to sRGB with the relative colorimetric intent (the
  only one that matrix/TRC profiles define; no black-point compensation). A profile that maps every
  probe colour to within 2/255 of itself counts as sRGB and is left alone; so are images without a
  profile. 8-bit images are converted by LittleCMS (PIL.ImageCms). 16-bit images are converted in
  float32 here, which covers matrix/TRC profiles (Adobe RGB, Display P3, ProPhoto, ...); a 16-bit
  image with a LUT-based profile is refused rather than reduced to 8 bits.
- Alpha: alpha that is opaque everywhere is dropped. Any other alpha is composited over white, in
  sRGB after the colour conversion, and a note says how many pixels were not opaque; non-opaque alpha
  is never dropped silently.
- Size: an image over ``max_pixels`` (default 100 megapixels, or RADN_MAX_PIXELS) is refused from its
  header, before any pixel is decoded. While this module opens and decodes a file, Pillow's own
  decompression-bomb limit is switched off so that this limit and its message apply.
- Errors: every failure is an ImageError with a one-line message. Truncated data is an error, never
  grey pixels (this relies on Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` staying False).
"""

from __future__ import annotations

import functools
import io
import os
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageCms, UnidentifiedImageError

from .constants import IMAGE_SUFFIXES, PATCH
from .errors import ImageError, SizeMismatchError, UsageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "PATCH",
    "SUPPORTED_SUFFIXES",
    "LoadedImage",
    "check_pair",
    "load_image",
    "read_size",
]

DEFAULT_MAX_PIXELS: int = 100_000_000
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES

_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_NOT_IMAGE = "not a recognised image (PNG, JPEG, WebP, TIFF, BMP)"
_CORRUPT = "truncated or corrupt image data"
_CONVERT_HINT = "convert it to a 16-bit sRGB PNG first (e.g. `magick INPUT -profile sRGB.icc OUTPUT.png`)"
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)
_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
_ORIENTATIONS = {
    2: "mirror horizontal",
    3: "rotate 180",
    4: "mirror vertical",
    5: "transpose",
    6: "rotate 90 clockwise",
    7: "transverse",
    8: "rotate 90 counter-clockwise",
}
_TIFF_COMPRESSIONS = {5: "LZW", 6: "old JPEG", 7: "JPEG", 32773: "PackBits", 34925: "LZMA", 50000: "Zstd"}
# Linear sRGB from CIE XYZ relative to D50 (Bradford-adapted sRGB primaries, the ICC connection space).
_SRGB_FROM_XYZ_D50 = torch.tensor(
    [
        [3.1338561, -1.6168667, -0.4906146],
        [-0.9787684, 1.9161415, 0.0334540],
        [0.0719453, -0.2289914, 1.4052427],
    ]
)


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image ready for RADN."""

    tensor: torch.Tensor  # float32 [3, H, W] in [0, 1], contiguous
    path: str
    width: int
    height: int
    bit_depth: int  # bits per channel of the source: 8 or 16
    notes: tuple[str, ...]  # what was done to the pixels, for humans


@dataclass
class _Pixels:
    """Decoded planes before alpha, grey expansion and orientation."""

    color: torch.Tensor  # float32 [1 or 3, H, W] in [0, 1]
    alpha: torch.Tensor | None  # float32 [1, H, W] in [0, 1]
    bit_depth: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Profile:
    """What this module needs to know about an embedded ICC profile."""

    name: str
    space: str  # ICC colour space: "RGB", "GRAY", "CMYK", ...
    is_srgb: bool
    cms: ImageCms.ImageCmsProfile


class _UnsupportedProfile(Exception):
    """An ICC profile that the float32 path cannot apply (not matrix/TRC)."""


# ---------------------------------------------------------------------------------------------------
# Public API


def read_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the file header only."""
    shown = os.fspath(path)
    with _open_file(path) as fp, _pillow_limit_off(), _collect_warnings():
        im = _open_image(fp, shown)
        return _displayed_size(im.size, _orientation(im))


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> LoadedImage:
    """Decode an image file into a float32 [3, H, W] sRGB tensor in [0, 1] (see the module docstring).

    Example:
        >>> image = load_image("examples/ref.png")
        >>> image.tensor.shape, image.bit_depth
        (torch.Size([3, 384, 512]), 8)
    """
    shown = os.fspath(path)
    limit, from_env = _pixel_limit(max_pixels)
    with _open_file(path) as fp, _pillow_limit_off(), _collect_warnings() as warned:
        im = _open_image(fp, shown)
        orientation = _orientation(im)
        width, height = _displayed_size(im.size, orientation)
        _check_pixels(width, height, limit, from_env, shown)
        pixels = _decode_guarded(im, fp, shown)
    tensor, notes = _finish(pixels, orientation)
    notes += [f"decoder warning: {_one_line(message)}" for message in dict.fromkeys(warned)]
    return LoadedImage(tensor, shown, width, height, pixels.bit_depth, tuple(notes))


def check_pair(
    ref: LoadedImage | tuple[int, int],
    dist: LoadedImage | tuple[int, int],
    *,
    ref_path: str | os.PathLike[str] | None = None,
    dist_path: str | os.PathLike[str] | None = None,
) -> None:
    """Raise unless reference and distorted images have the same size of at least one patch."""
    ref_size, ref_shown = _size_and_path(ref, ref_path)
    dist_size, dist_shown = _size_and_path(dist, dist_path)
    for (width, height), shown in ((ref_size, ref_shown), (dist_size, dist_shown)):
        if width < PATCH or height < PATCH:
            raise ImageError(f"image is {width}x{height}, smaller than one {PATCH}x{PATCH} patch", shown)
    if ref_size != dist_size:
        names = ", ".join(p for p in (ref_shown, dist_shown) if p)
        where = f" ({names})" if names else ""
        raise SizeMismatchError(
            f"reference is {ref_size[0]}x{ref_size[1]} but distorted is {dist_size[0]}x{dist_size[1]}{where}"
        )


# ---------------------------------------------------------------------------------------------------
# Files, limits and headers


def _size_and_path(
    image: LoadedImage | tuple[int, int], path: str | os.PathLike[str] | None
) -> tuple[tuple[int, int], str | None]:
    if isinstance(image, LoadedImage):
        return (image.width, image.height), os.fspath(path) if path is not None else image.path
    width, height = image
    return (int(width), int(height)), None if path is None else os.fspath(path)


def _pixel_limit(max_pixels: int | None) -> tuple[int, bool]:
    """The pixel limit in force, and whether it came from the default or RADN_MAX_PIXELS."""
    if max_pixels is not None:
        return max_pixels, False
    raw = os.environ.get("RADN_MAX_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS, True
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"RADN_MAX_PIXELS must be a positive whole number of pixels, got {raw!r}")
    return value, True


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f}" if pixels >= 100_000 else f"{pixels / 1e6:.3g}"


def _check_pixels(width: int, height: int, limit: int, from_env: bool, shown: str) -> None:
    pixels = width * height
    if pixels > limit:
        hint = " (set RADN_MAX_PIXELS to raise it)" if from_env else ""
        raise ImageError(
            f"image is {width}x{height} ({_megapixels(pixels)} megapixels), "
            f"over the limit of {_megapixels(limit)} megapixels{hint}",
            shown,
        )


def _open_file(path: str | os.PathLike[str]) -> BinaryIO:
    """The file opened for binary reading, or an ImageError saying why it cannot be."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError("no such file", path) from None
    except PermissionError:
        raise ImageError("permission denied", path) from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read file ({_one_line(exc)})", path) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("is a directory, not an image file", path)
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("not a regular file", path)
    if info.st_size == 0:
        raise ImageError("empty file (0 bytes)", path)
    try:
        return open(path, "rb")
    except PermissionError:
        raise ImageError("permission denied", path) from None
    except OSError as exc:
        raise ImageError(f"cannot read file ({_one_line(exc)})", path) from None


_limit_lock = threading.Lock()
_limit_users = 0
_limit_saved: int | None = None


@contextmanager
def _pillow_limit_off() -> Iterator[None]:
    """Switch Pillow's decompression-bomb check off while this module uses Pillow (ours replaces it)."""
    global _limit_users, _limit_saved
    with _limit_lock:
        if _limit_users == 0:
            _limit_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _limit_saved


@contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    """Collect the decoders' warnings as messages instead of letting them reach the console."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    messages.extend(str(w.message) for w in caught)


def _one_line(error: object, limit: int = 100) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _sniff(fp: BinaryIO) -> str | None:
    """The format that the first bytes announce, if it is one of ours."""
    fp.seek(0)
    head = fp.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _open_image(fp: BinaryIO, shown: str) -> Image.Image:
    """Pillow's lazy image (header read, no pixels decoded), restricted to our formats."""
    try:
        return Image.open(fp, formats=_FORMATS)
    except UnidentifiedImageError:
        pass
    except MemoryError:
        raise ImageError("not enough memory to read the image header", shown) from None
    except Exception as exc:
        raise ImageError(f"{_CORRUPT} ({_one_line(exc)})", shown) from None
    announced = _sniff(fp)
    if announced:
        raise ImageError(f"{_CORRUPT}, or an unsupported {announced} variant (header unreadable)", shown)
    raise ImageError(_NOT_IMAGE, shown)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8 from the header; 1 when absent or unreadable."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _displayed_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = size
    return (height, width) if orientation >= 5 else (width, height)


# ---------------------------------------------------------------------------------------------------
# Decoding


def _decode_guarded(im: Image.Image, fp: BinaryIO, shown: str) -> _Pixels:
    """Decode pixels, turning every decoder failure into an ImageError."""
    try:
        pixels = _decode(im, fp, shown)
        frames = getattr(im, "n_frames", 1)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode the image", shown) from None
    except Exception as exc:
        raise ImageError(f"{_CORRUPT} ({_one_line(exc)})", shown) from None
    if pixels.color.shape[1:] != (im.height, im.width):
        raise ImageError(f"{_CORRUPT} (decoded size differs from the header)", shown)
    if frames > 1:
        pixels.notes.append(f"first of {frames} frames used")
    return pixels


def _decode(im: Image.Image, fp: BinaryIO, shown: str) -> _Pixels:
    if im.format == "PNG" and _png_header_byte(fp, 24) == 16:
        return _decode_png16(im, fp, shown)
    if im.format == "TIFF" and _tiff_multisample_16(im):
        return _decode_tiff16(im, fp, shown)
    return _decode_pillow(im, shown)


def _planes(samples: np.ndarray, scale: float) -> torch.Tensor:
    """Integer samples [H, W] or [H, W, C] -> float32 [C, H, W] in [0, 1], with a single float copy."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    floats = np.ascontiguousarray(samples.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(floats).div_(scale)


def _split(planes: torch.Tensor, has_alpha: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    return (planes[:-1], planes[-1:]) if has_alpha else (planes, None)


def _png_header_byte(fp: BinaryIO, index: int) -> int:
    """A byte of the IHDR data (24: bit depth, 25: colour type), which PNG requires to come first."""
    fp.seek(index)
    value = fp.read(1)
    return value[0] if value else 0


def _decode_png16(im: Image.Image, fp: BinaryIO, shown: str) -> _Pixels:
    """16-bit PNG at full precision (Pillow alone keeps only 8 bits of colour and grey + alpha PNGs)."""
    color_type = _png_header_byte(fp, 25)
    values = _planes(_png16_samples(im, fp, color_type), 1.0)  # (C, H, W), 0..65535
    key = im.info.get("transparency")
    key_alpha = _key_alpha(values, key) if key is not None and color_type in (0, 2) else None
    color, alpha = _split(values.div_(65535.0), color_type in (4, 6))
    pixels = _Pixels(color, alpha if key_alpha is None else key_alpha, 16)
    pixels.color = _icc_float(pixels.color, im.info.get("icc_profile"), pixels.notes, shown)
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


def _tiff_multisample_16(im: Image.Image) -> bool:
    bits = im.tag_v2.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 and int(im.tag_v2.get(277, 1)) > 1


def _tiff16_problem(tags: Mapping[int, Any], spp: int) -> str | None:
    """Why this multi-sample TIFF cannot be read at full precision here, or None."""
    bits = tags.get(258)
    bits = bits if isinstance(bits, tuple) else (bits,)
    formats = tags.get(339, 1)
    formats = formats if isinstance(formats, tuple) else (formats,)
    compression = int(tags.get(259, 1))
    photometric = tags.get(262)
    if set(bits) != {16}:
        return f"TIFF with {'/'.join(map(str, bits))} bits per sample"
    if set(formats) != {1}:
        return "TIFF with signed or floating-point samples"
    if 322 in tags or 324 in tags:
        return "tiled 16-bit TIFF"
    if int(tags.get(284, 1)) != 1:
        return "16-bit TIFF with separate colour planes"
    if compression not in (1, 8, 32946):
        name = _TIFF_COMPRESSIONS.get(compression, f"type {compression}")
        return f"16-bit TIFF with {name} compression (only uncompressed or Deflate)"
    if int(tags.get(317, 1)) not in (1, 2):
        return "16-bit TIFF with a floating-point predictor"
    if photometric != 2 or spp not in (3, 4):
        return f"16-bit TIFF with photometric interpretation {photometric} and {spp} samples per pixel"
    return None


def _decode_tiff16(im: Image.Image, fp: BinaryIO, shown: str) -> _Pixels:
    """16-bit RGB or RGBA TIFF strips (Pillow would keep only 8 bits)."""
    tags = im.tag_v2
    spp = int(tags.get(277, 1))
    problem = _tiff16_problem(tags, spp)
    if problem:
        raise ImageError(f"{problem} is not supported; {_CONVERT_HINT}", shown)
    samples = _tiff16_samples(tags, fp, im.size, spp)
    extra = tags.get(338, (0,))
    extra = extra if isinstance(extra, tuple) else (extra,)
    planes = _planes(samples, 65535.0)
    color = planes[:3]
    alpha = planes[3:] if spp == 4 and extra[0] in (1, 2) else None
    if alpha is not None and extra[0] == 1:  # associated (premultiplied) alpha
        color = torch.where(alpha > 0, color / alpha.clamp_min(1e-12), 0.0).clamp_(0.0, 1.0)
    pixels = _Pixels(color, alpha, 16)
    pixels.color = _icc_float(color, im.info.get("icc_profile"), pixels.notes, shown)
    return pixels


def _tiff16_samples(tags: Mapping[int, Any], fp: BinaryIO, size: tuple[int, int], spp: int) -> np.ndarray:
    """uint16 samples [H, W, spp] from uncompressed or Deflate strips, predictor undone."""
    width, height = size
    row_bytes = width * spp * 2
    rows_per_strip = min(int(tags.get(278, height)), height)
    strip_bytes = rows_per_strip * row_bytes
    compressed = int(tags.get(259, 1)) != 1
    offsets, counts = tags[273], tags[279]
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    needed = height * row_bytes
    strips, total = [], 0
    for offset, count in zip(offsets, counts, strict=False):
        if total >= needed:
            break
        fp.seek(offset)
        raw = fp.read(count)
        if compressed:
            raw = zlib.decompressobj().decompress(raw, strip_bytes)
        strips.append(raw[:strip_bytes])
        total += len(strips[-1])
    if total < needed:
        raise ValueError("image data is shorter than the image")
    data = b"".join(strips)
    fp.seek(0)
    dtype = "<u2" if fp.read(2) == b"II" else ">u2"
    samples = np.frombuffer(data, dtype=dtype, count=height * width * spp).reshape(height, width, spp)
    if int(tags.get(317, 1)) == 2:  # horizontal differencing, wraps modulo 2**16
        samples = np.cumsum(samples, axis=1, dtype=np.uint16)
    return samples


_STANDARD_MODES = {"L", "LA", "RGB", "RGBA", "CMYK"}
_MODE_MAP = {"1": "L", "P": "RGB", "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB"}
_GREY16_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def _decode_pillow(im: Image.Image, shown: str) -> _Pixels:
    """Everything Pillow decodes at full precision: 8-bit images and 16-bit grey."""
    im.load()
    icc = im.info.get("icc_profile")
    notes: list[str] = []
    if im.mode in _GREY16_MODES:
        grey = _grey16(im, shown)
        return _Pixels(_icc_float(grey, icc, notes, shown), None, 16, notes)
    im = _standard_mode(im, shown)
    alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
    color_im = im.convert(im.mode[:-1]) if alpha is not None else im
    color_im = _icc_8bit(color_im, icc, notes)
    if color_im.mode == "CMYK":
        color_im = color_im.convert("RGB")
        notes.append("CMYK converted to RGB without a colour profile (approximate colours)")
    color = _planes(np.asarray(color_im), 255.0)
    alpha_planes = None if alpha is None else _planes(np.asarray(alpha), 255.0)
    return _Pixels(color, alpha_planes, 8, notes)


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
    return _planes(samples, 65535.0)


# ---------------------------------------------------------------------------------------------------
# Colour management


_SPACE_OF = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}


@functools.lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=32)
def _profile(icc: bytes) -> _Profile | None:
    """The profile's name, colour space and whether it is sRGB in effect; None when unreadable."""
    try:
        cms = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = (ImageCms.getProfileDescription(cms) or "").strip() or "unnamed"
        space = cms.profile.xcolor_space.strip()
    except Exception:
        return None
    return _Profile(_one_line(name, 60), space, _maps_to_itself(cms, space), cms)


@functools.lru_cache(maxsize=2)
def _probe(mode: str) -> Image.Image:
    """A grey ramp ("L") or a 16x16x16 colour grid ("RGB")."""
    if mode == "L":
        return Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    levels = np.arange(0, 256, 17, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    return Image.fromarray(grid.reshape(64, 64, 3))


def _maps_to_itself(cms: ImageCms.ImageCmsProfile, space: str) -> bool:
    """Whether converting to sRGB changes no probe colour by more than 2/255."""
    if space not in ("RGB", "GRAY"):
        return False
    probe = _probe("RGB" if space == "RGB" else "L")
    try:
        out = ImageCms.profileToProfile(probe, cms, _srgb(), renderingIntent=_INTENT, outputMode="RGB")
    except Exception:
        return False
    before = np.asarray(probe.convert("RGB"), dtype=np.int16)
    return int(np.abs(np.asarray(out, dtype=np.int16) - before).max()) <= 2


def _usable_profile(icc: bytes | None, space: str, notes: list[str]) -> _Profile | None:
    """The profile to convert from, or None (no profile, sRGB, or one that cannot apply; noted)."""
    if not icc:
        return None
    profile = _profile(icc)
    if profile is None:
        notes.append("ICC profile unreadable, ignored (colours taken as sRGB)")
        return None
    if profile.space != space:
        notes.append(f"ICC profile '{profile.name}' is for {profile.space}, not {space}: ignored")
        return None
    return None if profile.is_srgb else profile


def _converted_note(profile: _Profile) -> str:
    return f"ICC profile '{profile.name}' converted to sRGB (relative colorimetric)"


def _icc_8bit(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """An L, RGB or CMYK image converted to sRGB by LittleCMS when its profile is not sRGB."""
    profile = _usable_profile(icc, _SPACE_OF[im.mode], notes)
    if profile is None:
        return im
    try:
        out = ImageCms.profileToProfile(im, profile.cms, _srgb(), renderingIntent=_INTENT, outputMode="RGB")
    except Exception as exc:
        notes.append(f"ICC profile '{profile.name}' could not be applied ({_one_line(exc, 60)}): ignored")
        return im
    notes.append(_converted_note(profile))
    return out


def _icc_float(color: torch.Tensor, icc: bytes | None, notes: list[str], shown: str) -> torch.Tensor:
    """16-bit planes [1 or 3, H, W] converted to sRGB in float32 when their profile is not sRGB."""
    profile = _usable_profile(icc, "RGB" if color.shape[0] == 3 else "GRAY", notes)
    if profile is None:
        return color
    try:
        transform = _float_transform(icc)
    except _UnsupportedProfile:
        raise ImageError(
            f"16-bit image with ICC profile '{profile.name}', which is not a matrix/TRC profile, "
            f"cannot be converted to sRGB at full precision; {_CONVERT_HINT}",
            shown,
        ) from None
    notes.append(_converted_note(profile))
    return transform(color)


@functools.lru_cache(maxsize=8)
def _float_transform(icc: bytes) -> Callable[[torch.Tensor], torch.Tensor]:
    """Matrix/TRC profile -> function from its planes to sRGB planes (relative colorimetric)."""
    try:
        tags = _icc_tags(icc)
        if any(name in tags for name in ("A2B0", "A2B1", "A2B2")) or icc[20:24] != b"XYZ ":
            raise _UnsupportedProfile
        if icc[16:20] == b"GRAY":
            return functools.partial(_grey_to_srgb, curve=_curve(tags["kTRC"]))
        curves = tuple(_curve(tags[name]) for name in ("rTRC", "gTRC", "bTRC"))
        to_xyz = torch.tensor([_xyz(tags[name]) for name in ("rXYZ", "gXYZ", "bXYZ")]).T
    except (KeyError, struct.error, ValueError, ZeroDivisionError):
        raise _UnsupportedProfile from None
    return functools.partial(_rgb_to_srgb, curves=curves, matrix=_SRGB_FROM_XYZ_D50 @ to_xyz)


def _icc_tags(icc: bytes) -> dict[str, bytes]:
    (count,) = struct.unpack_from(">I", icc, 128)
    tags = {}
    for index in range(min(count, 256)):
        signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * index)
        tags[signature.decode("latin-1")] = icc[offset : offset + size]
    return tags


def _xyz(tag: bytes) -> tuple[float, float, float]:
    if tag[:4] != b"XYZ ":
        raise ValueError("not an XYZ tag")
    x, y, z = struct.unpack_from(">3i", tag, 8)
    return x / 65536, y / 65536, z / 65536


def _curve(tag: bytes) -> Callable[[torch.Tensor], torch.Tensor]:
    """An ICC tone curve (curv or para) as a function on [0, 1] tensors."""
    if tag[:4] == b"curv":
        (count,) = struct.unpack_from(">I", tag, 8)
        if count == 0:
            return lambda x: x
        if count == 1:
            gamma = struct.unpack_from(">H", tag, 12)[0] / 256
            return lambda x: x.clamp(0.0, 1.0).pow(gamma)
        table = torch.tensor(struct.unpack_from(f">{count}H", tag, 12), dtype=torch.float32) / 65535
        return functools.partial(_lookup, table=table)
    if tag[:4] == b"para":
        (kind,) = struct.unpack_from(">H", tag, 8)
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[kind]
        params = [value / 65536 for value in struct.unpack_from(f">{count}i", tag, 12)]
        return functools.partial(_parametric, params=_general_params(kind, params))
    raise ValueError("unknown curve type")


def _general_params(kind: int, p: list[float]) -> tuple[float, ...]:
    """ICC parametric curve parameters as (g, a, b, c, d, e, f) of function type 4."""
    if kind == 0:
        return (p[0], 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if kind == 1:
        return (p[0], p[1], p[2], 0.0, -p[2] / p[1], 0.0, 0.0)
    if kind == 2:
        return (p[0], p[1], p[2], 0.0, -p[2] / p[1], p[3], p[3])
    if kind == 3:
        return (*p, 0.0, 0.0)
    return tuple(p)


def _parametric(x: torch.Tensor, params: tuple[float, ...]) -> torch.Tensor:
    g, a, b, c, d, e, f = params
    x = x.clamp(0.0, 1.0)
    upper = (a * x + b).clamp_min(0.0).pow(g) + e
    return torch.where(x >= d, upper, c * x + f).clamp_(0.0, 1.0)


def _lookup(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Linear interpolation in a table sampled evenly over [0, 1]."""
    position = x.clamp(0.0, 1.0) * (table.numel() - 1)
    index = position.floor().long().clamp_(max=table.numel() - 2)
    low = table[index]
    return low + (position - index) * (table[index + 1] - low)


def _srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    linear = linear.clamp(0.0, 1.0)
    curved = 1.055 * linear.clamp_min(1e-12).pow(1 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, 12.92 * linear, curved)


def _grey_to_srgb(grey: torch.Tensor, curve: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    return _srgb_encode(curve(grey))


def _rgb_to_srgb(
    rgb: torch.Tensor, curves: tuple[Callable[[torch.Tensor], torch.Tensor], ...], matrix: torch.Tensor
) -> torch.Tensor:
    linear = torch.stack([curve(plane) for curve, plane in zip(curves, rgb, strict=True)])
    mixed = (matrix @ linear.reshape(3, -1)).reshape(rgb.shape)  # (3, H, W) linear sRGB
    return _srgb_encode(mixed)


# ---------------------------------------------------------------------------------------------------
# Final steps: alpha, grey -> RGB, orientation


def _finish(pixels: _Pixels, orientation: int) -> tuple[torch.Tensor, list[str]]:
    notes = list(pixels.notes)
    color = pixels.color
    if pixels.alpha is not None:
        color, note = _composite_over_white(color, pixels.alpha)
        notes += [note] if note else []
    if color.shape[0] == 1:
        color = color.expand(3, -1, -1)
    if orientation != 1:
        color = _orient(color, orientation)
        notes.append(f"EXIF orientation applied ({_ORIENTATIONS[orientation]})")
    return color.contiguous(), notes


def _composite_over_white(color: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, str | None]:
    """Colour over a white background; no change and no note when alpha is opaque everywhere."""
    not_opaque = int((alpha < 1.0).sum())
    if not_opaque == 0:
        return color, None
    share = 100 * not_opaque / alpha.numel()
    shown = f"{share:.1f}%" if share >= 0.1 else "<0.1%"
    return color * alpha + (1.0 - alpha), f"alpha composited over white ({shown} of pixels not opaque)"


def _orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation to planes [C, H, W] (as PIL.ImageOps.exif_transpose does)."""
    if orientation == 2:
        return image.flip(2)
    if orientation == 3:
        return image.flip(1, 2)
    if orientation == 4:
        return image.flip(1)
    if orientation == 5:
        return image.transpose(1, 2)
    if orientation == 6:
        return torch.rot90(image, -1, dims=(1, 2))
    if orientation == 7:
        return image.transpose(1, 2).flip(1, 2)
    return torch.rot90(image, 1, dims=(1, 2))
