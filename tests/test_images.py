"""Tests of the image decoding policy (radn_cli.images); every fixture is generated in tmp_path."""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageFile, ImageOps

from radn_cli import images
from radn_cli.errors import ImageError, SizeMismatchError, UsageError
from radn_cli.images import LoadedImage, check_pair, load_image, read_size

torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------------
# Builders


def _pattern(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def _as_float(array: np.ndarray, scale: float = 255.0) -> torch.Tensor:
    """[H, W, C] or [H, W] integers -> float32 [3, H, W], grey repeated."""
    planes = torch.from_numpy(array.astype(np.float32) / np.float32(scale))
    planes = planes[None] if planes.ndim == 2 else planes.permute(2, 0, 1)
    return planes.expand(3, -1, -1) if planes.shape[0] == 1 else planes


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def _scanlines(samples: np.ndarray) -> bytes:
    """16-bit samples [H, W, C] as PNG scanlines, the filter type cycling through all five."""
    rows = samples.astype(">u2").reshape(samples.shape[0], -1).view(np.uint8).astype(np.int32)
    bpp = samples.shape[2] * 2
    previous = np.zeros_like(rows[0])
    out = b""
    for index, row in enumerate(rows):
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int32), previous[:-bpp]])
        guess = left + previous - up_left
        far_left, far_up, far_corner = abs(guess - left), abs(guess - previous), abs(guess - up_left)
        not_left = np.where(far_up <= far_corner, previous, up_left)
        paeth = np.where((far_left <= far_up) & (far_left <= far_corner), left, not_left)
        kind = index % 5
        predicted = (0, left, previous, (left + previous) // 2, paeth)[kind]
        out += bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes()
        previous = row
    return out


def _png16(
    samples: np.ndarray,
    color_type: int,
    extra: bytes = b"",
    icc: bytes | None = None,
    interlace: bool = False,
) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour PNGs)."""
    samples = samples if samples.ndim == 3 else samples[:, :, None]
    height, width = samples.shape[:2]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    raw = b"".join(_scanlines(samples[y::dy, x::dx]) for y, x, dy, dx in passes if y < height and x < width)
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, int(interlace))
    profile = _chunk(b"iCCP", b"test\x00\x00" + zlib.compress(icc)) if icc else b""
    body = _chunk(b"IHDR", header) + profile + extra + _chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b"")


def _tiff16(path: Path, samples: np.ndarray, **options) -> Path:
    """A 16-bit TIFF written by tifffile (Pillow cannot write 16-bit colour TIFFs). ``samples`` are
    [H, W] or [H, W, C]; with ``planarconfig="separate"`` they are stored as separate planes."""
    channels = samples.shape[2] if samples.ndim == 3 else 1
    options.setdefault("photometric", "rgb" if channels >= 3 else "minisblack")
    if channels in (2, 4):
        options.setdefault("extrasamples", ["unassalpha"])
    if options.get("planarconfig") == "separate":
        samples = np.moveaxis(samples, 2, 0)
    tifffile.imwrite(path, samples, **options)
    return path


def _packbits_row(row: bytes) -> bytes:
    """One row in PackBits: runs of three or more equal bytes as repeats, the rest as literals."""
    out, start = bytearray(), 0
    while start < len(row):
        run = 1
        while start + run < len(row) and run < 128 and row[start + run] == row[start]:
            run += 1
        if run >= 3:
            out += bytes([257 - run, row[start]])
            start += run
            continue
        end = start + 1
        while end < len(row) and end - start < 128 and row[end : end + 3] != bytes([row[end]]) * 3:
            end += 1
        out += bytes([end - start - 1]) + row[start:end]
        start = end
    return bytes(out)


def _recompress_packbits(path: Path, row_bytes: int) -> Path:
    """The strip TIFF rewritten with PackBits strips (tifffile writes them only with imagecodecs)."""
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        segments = list(zip(page.dataoffsets, page.databytecounts, strict=True))
    packed = [
        b"".join(_packbits_row(data[at : at + row_bytes]) for at in range(offset, offset + count, row_bytes))
        for offset, count in segments
    ]
    offsets = [len(data) + sum(map(len, packed[:index])) for index in range(len(packed))]
    path.write_bytes(data + b"".join(packed))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tags = tif.pages[0].tags
        tags["StripOffsets"].overwrite(offsets)
        tags["StripByteCounts"].overwrite([len(strip) for strip in packed])
        tags["Compression"].overwrite(32773)
    return path


def _set_tiff_tag(path: Path, name: str, value: object) -> Path:
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags[name].overwrite(value)
    return path


def _random16(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (height, width, channels), dtype=np.uint16)


# D50-adapted colorants of the sRGB and Display P3 primaries.
_SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
_SWAPPED_COLORANTS = _SRGB_COLORANTS[::-1]  # the file's red is sRGB blue and the other way round
_P3_COLORANTS = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in xyz)


def _curve_tag(kind: str) -> bytes:
    if kind == "gamma":
        return b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\x00\x00"
    if kind == "table":
        table = np.round(np.linspace(0, 1, 256) ** 1.8 * 65535).astype(">u2")
        return b"curv\x00\x00\x00\x00" + struct.pack(">I", table.size) + table.tobytes()
    params = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)  # the sRGB curve, type 3
    return b"para\x00\x00\x00\x00" + struct.pack(">HH", 3, 0) + b"".join(_s15(p) for p in params)


def _icc_profile(name: str, colorants=_SWAPPED_COLORANTS, curve: str = "gamma", lut: bool = False) -> bytes:
    """A version 2 RGB matrix/TRC display profile, built from the ICC specification."""
    text = name.encode("ascii") + b"\x00"
    desc = b"desc\x00\x00\x00\x00" + struct.pack(">I", len(text)) + text + b"\x00" * (4 + 4 + 2 + 1 + 67)
    trc = _curve_tag(curve)
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz_tag((0.9642, 1.0, 0.8249))),
        (b"rXYZ", _xyz_tag(colorants[0])),
        (b"gXYZ", _xyz_tag(colorants[1])),
        (b"bXYZ", _xyz_tag(colorants[2])),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
        (b"cprt", b"text\x00\x00\x00\x00CC0\x00"),
    ]
    if lut:
        tags.append((b"A2B0", b"mft2\x00\x00\x00\x00" + b"\x00" * 40))
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, payload in tags:
        payload += b"\x00" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s", size, b"\x00" * 4, 0x02100000, b"mntr", b"RGB ", b"XYZ ")
    header += b"\x00" * 12 + b"acsp" + b"\x00" * 24 + b"\x00" * 4
    header += _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    header = header.ljust(128, b"\x00")
    return header + struct.pack(">I", len(tags)) + table + data


_LOSSLESS = {"WEBP": {"lossless": True}}


def _save(path: Path, image: Image.Image, fmt: str, **params) -> Path:
    image.save(path, fmt, **params)
    return path


@functools.lru_cache(maxsize=1)
def _valid_files() -> dict[str, bytes]:
    """One small valid file per format and decoding path, for the fuzz test."""
    rgb = Image.fromarray(_pattern(40, 48))
    files = {}
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "BMP"):
        buffer = io.BytesIO()
        rgb.save(buffer, fmt, **_LOSSLESS.get(fmt, {}))
        files[fmt] = buffer.getvalue()
    samples = _pattern(36, 40, 3, seed=1).astype(np.uint16) * 257
    files["PNG16"] = _png16(samples, 2)
    tiff16 = io.BytesIO()
    tifffile.imwrite(tiff16, samples, photometric="rgb", compression="deflate", predictor=2, rowsperstrip=6)
    files["TIFF16"] = tiff16.getvalue()
    return files


# ---------------------------------------------------------------------------------------------------
# 1. Formats by content, and the result's shape and type


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_each_format_loads_whatever_its_suffix(tmp_path: Path, fmt: str) -> None:
    pixels = _pattern(40, 48)
    path = _save(tmp_path / "image.dat", Image.fromarray(pixels), fmt, **_LOSSLESS.get(fmt, {}))
    loaded = load_image(path)
    assert isinstance(loaded, LoadedImage)
    assert (loaded.width, loaded.height, loaded.bit_depth, loaded.notes) == (48, 40, 8, ())
    assert loaded.tensor.shape == (3, 40, 48) and loaded.tensor.dtype == torch.float32
    assert loaded.tensor.is_contiguous()
    assert 0.0 <= loaded.tensor.min() and loaded.tensor.max() <= 1.0
    if fmt != "JPEG":  # lossless formats give the exact samples
        assert torch.equal(loaded.tensor, _as_float(pixels))
    assert read_size(path) == (48, 40)


def test_jpeg_with_a_png_suffix_is_decoded_as_jpeg(tmp_path: Path) -> None:
    path = _save(tmp_path / "photo.png", Image.fromarray(_pattern(40, 40)), "JPEG")
    assert load_image(path).tensor.shape == (3, 40, 40)


def test_supported_suffixes() -> None:
    assert images.SUPPORTED_SUFFIXES == {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
    assert images.PATCH == 32 and images.DEFAULT_MAX_PIXELS == 100_000_000


@pytest.mark.parametrize("content", [b"hello, I am text\n" * 10, b"\x00\x00\x01\x00" + b"\x00" * 64])
def test_text_or_other_format_is_not_a_recognised_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    for read in (load_image, read_size):
        with pytest.raises(ImageError) as caught:
            read(path)
        assert str(caught.value) == f"{path}: not a recognised image (PNG, JPEG, WebP, TIFF, BMP)"


@pytest.mark.parametrize("name", ["a.gif", "a.png"])
def test_gif_is_refused_by_name(tmp_path: Path, name: str) -> None:
    path = _save(tmp_path / name, Image.new("P", (40, 40)), "GIF")
    for read in (load_image, read_size):
        with pytest.raises(ImageError) as caught:
            read(path)
        assert str(caught.value) == f"{path}: GIF is not supported; convert it to PNG first"


def test_gif_content_is_named_even_when_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.gif").write_bytes(b"GIF89a" + b"\x00" * 64)
    assert _message(tmp_path / "a.gif") == "GIF is not supported; convert it to PNG first"


# ---------------------------------------------------------------------------------------------------
# 2. 16 bits kept


def test_png16_rgb_keeps_the_low_byte(tmp_path: Path) -> None:
    samples = np.full((40, 40, 3), 0x8000, dtype=np.uint16)
    samples += np.arange(40 * 40 * 3, dtype=np.uint16).reshape(40, 40, 3) % 256  # differ in the low byte
    path = tmp_path / "deep.png"
    path.write_bytes(_png16(samples, 2))
    loaded = load_image(path)
    assert loaded.bit_depth == 16 and loaded.notes == ()
    assert torch.equal(loaded.tensor, _as_float(samples, 65535.0))
    assert len(torch.unique(loaded.tensor)) == 256  # 8 bits would leave a single value


@pytest.mark.parametrize("color_type", [0, 2, 4, 6])
def test_png16_filtered_and_interlaced(tmp_path: Path, color_type: int) -> None:
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    samples = np.random.default_rng(5).integers(0, 65536, (37, 43, channels), dtype=np.uint16)
    samples[..., -1] = 65535 if color_type in (4, 6) else samples[..., -1]
    color = samples[..., :-1] if color_type in (4, 6) else samples
    for interlace in (False, True):
        (tmp_path / "deep.png").write_bytes(_png16(samples, color_type, interlace=interlace))
        loaded = load_image(tmp_path / "deep.png")
        expected = color[..., 0] if color.shape[2] == 1 else color
        assert loaded.bit_depth == 16 and torch.equal(loaded.tensor, _as_float(expected, 65535.0))


def test_png16_grey_and_rgba_with_opaque_alpha(tmp_path: Path) -> None:
    grey = (np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 37 + 1).astype(np.uint16)
    (tmp_path / "grey.png").write_bytes(_png16(grey, 0))
    assert torch.equal(load_image(tmp_path / "grey.png").tensor, _as_float(grey, 65535.0))
    rgb = _pattern(40, 40).astype(np.uint16) * 257 + 1
    rgba = np.concatenate([rgb, np.full((40, 40, 1), 65535, np.uint16)], axis=2)
    (tmp_path / "rgba.png").write_bytes(_png16(rgba, 6))
    loaded = load_image(tmp_path / "rgba.png")
    assert loaded.notes == () and torch.equal(loaded.tensor, _as_float(rgb, 65535.0))


def test_png16_grey_alpha_is_composited(tmp_path: Path) -> None:
    grey_alpha = np.zeros((40, 40, 2), dtype=np.uint16)
    grey_alpha[..., 0] = 0x1234
    grey_alpha[:20, :, 1] = 65535  # top half opaque, bottom half transparent
    (tmp_path / "la.png").write_bytes(_png16(grey_alpha, 4))
    loaded = load_image(tmp_path / "la.png")
    assert loaded.notes == ("alpha composited over white (50.0% of pixels not opaque)",)
    assert torch.all(loaded.tensor[:, :20] == np.float32(0x1234) / np.float32(65535))
    assert torch.all(loaded.tensor[:, 20:] == 1.0)


def test_png16_transparent_colour_key(tmp_path: Path) -> None:
    samples = np.full((40, 40, 3), 1000, dtype=np.uint16)
    samples[0, :10] = (1, 258, 515)
    (tmp_path / "key.png").write_bytes(_png16(samples, 2, _chunk(b"tRNS", struct.pack(">3H", 1, 258, 515))))
    loaded = load_image(tmp_path / "key.png")
    assert loaded.notes == ("alpha composited over white (0.6% of pixels not opaque)",)
    assert torch.all(loaded.tensor[:, 0, :10] == 1.0) and torch.all(loaded.tensor[:, 1:] < 0.1)


def test_tiff16_grey_keeps_the_low_byte(tmp_path: Path) -> None:
    grey = (0x4000 + np.arange(40 * 40) % 256).astype(np.uint16).reshape(40, 40)
    path = _save(tmp_path / "grey16.tif", Image.fromarray(grey), "TIFF")
    loaded = load_image(path)
    assert loaded.bit_depth == 16 and torch.equal(loaded.tensor, _as_float(grey, 65535.0))


_TIFF16_VARIANTS = {
    "rgb strips": (3, {}),
    "rgb big-endian": (3, {"byteorder": ">"}),
    "rgb tiled": (3, {"tile": (16, 16)}),
    "rgb deflate + predictor": (3, {"compression": "deflate", "predictor": 2, "rowsperstrip": 7}),
    "rgb adobe-deflate big-endian": (3, {"compression": "adobe_deflate", "byteorder": ">"}),
    "rgb separate planes": (3, {"planarconfig": "separate", "compression": "deflate", "rowsperstrip": 5}),
    "rgb separate planes tiled": (3, {"planarconfig": "separate", "tile": (16, 32)}),
    "rgba tiled deflate big-endian": (4, {"tile": (16, 16), "compression": "deflate", "byteorder": ">"}),
    "grey": (1, {}),
    "grey tiled deflate big-endian": (1, {"tile": (16, 16), "compression": "deflate", "byteorder": ">"}),
    "grey + alpha": (2, {}),
    "grey + alpha separate planes deflate": (2, {"planarconfig": "separate", "compression": "deflate"}),
}


@pytest.mark.parametrize("variant", sorted(_TIFF16_VARIANTS))
def test_tiff16_variants_are_read_exactly(tmp_path: Path, variant: str) -> None:
    channels, options = _TIFF16_VARIANTS[variant]
    samples = _random16(37, 43, channels, seed=len(variant))
    colors = 3 if channels >= 3 else 1
    if channels > colors:
        samples[..., colors:] = 65535  # opaque alpha: dropped without a note
    path = _tiff16(tmp_path / "deep.tif", samples if channels > 1 else samples[..., 0], **options)
    loaded = load_image(path)
    assert (loaded.bit_depth, loaded.notes, loaded.width, loaded.height) == (16, (), 43, 37)
    expected = samples[..., :colors]
    assert torch.equal(loaded.tensor, _as_float(expected if colors == 3 else expected[..., 0], 65535.0))
    assert len(torch.unique(loaded.tensor)) > 256  # more values than 8 bits could hold
    assert read_size(path) == (43, 37)


def test_tiff16_packbits(tmp_path: Path) -> None:
    samples = _random16(33, 40, 3, seed=2)
    samples[:, :20] = (0x1234, 0x1234, 0x1234)  # equal bytes: repeat runs as well as literal ones
    path = _recompress_packbits(_tiff16(tmp_path / "packbits.tif", samples, rowsperstrip=4), 40 * 3 * 2)
    loaded = load_image(path)
    assert loaded.bit_depth == 16 and torch.equal(loaded.tensor, _as_float(samples, 65535.0))


def test_tiff16_lzw_reads_exactly_or_says_imagecodecs_is_needed(tmp_path: Path) -> None:
    samples = _random16(33, 40, 3, seed=4)
    path = tmp_path / "lzw.tif"
    if importlib.util.find_spec("imagecodecs") is not None:
        _tiff16(path, samples, compression="lzw", predictor=2)
        assert torch.equal(load_image(path).tensor, _as_float(samples, 65535.0))
        return
    _set_tiff_tag(_tiff16(path, samples), "Compression", 5)  # the data is never decoded
    assert _message(path) == (
        "16-bit TIFF with LZW compression needs the imagecodecs package (`pip install imagecodecs`), or "
        "convert it to a 16-bit sRGB PNG first (e.g. `magick INPUT -profile sRGB.icc OUTPUT.png`)"
    )


def test_tiff16_grey_lzw_is_read_by_pillow(tmp_path: Path) -> None:
    grey = _random16(37, 43, 1, seed=6)[..., 0]
    path = _save(tmp_path / "grey.tif", Image.fromarray(grey), "TIFF", compression="tiff_lzw")
    loaded = load_image(path)
    assert loaded.bit_depth == 16 and torch.equal(loaded.tensor, _as_float(grey, 65535.0))


def test_tiff16_rgba_and_grey_alpha_are_composited(tmp_path: Path) -> None:
    rgba = np.zeros((40, 40, 4), dtype=np.uint16)
    rgba[..., :3] = 0x0101
    rgba[..., 3] = 65535
    rgba[:10, :, 3] = 0
    loaded = load_image(_tiff16(tmp_path / "rgba.tif", rgba))
    assert loaded.notes == ("alpha composited over white (25.0% of pixels not opaque)",)
    assert torch.all(loaded.tensor[:, :10] == 1.0)
    assert torch.all(loaded.tensor[:, 10:] == np.float32(0x0101) / np.float32(65535))
    premultiplied = rgba.copy()
    premultiplied[:10, :, :3] = 0
    path = _tiff16(tmp_path / "premultiplied.tif", premultiplied, extrasamples=["assocalpha"], tile=(16, 16))
    assert torch.equal(load_image(path).tensor, loaded.tensor)
    grey_alpha = rgba[..., 2:]
    path = _tiff16(tmp_path / "la.tif", grey_alpha, planarconfig="separate")
    assert load_image(path).notes == loaded.notes
    assert torch.equal(load_image(path).tensor, loaded.tensor)


@pytest.mark.parametrize("alpha", [False, True])
def test_tiff16_min_is_white_grey(tmp_path: Path, alpha: bool) -> None:
    grey = _random16(37, 43, 1, seed=7)[..., 0]
    stored = np.stack([65535 - grey, np.full_like(grey, 65535)], axis=-1) if alpha else 65535 - grey
    loaded = load_image(_tiff16(tmp_path / "white.tif", stored, photometric="miniswhite"))
    assert loaded.bit_depth == 16 and torch.equal(loaded.tensor, _as_float(grey, 65535.0))


def test_tiff16_icc_profile_is_converted_as_in_a_png(tmp_path: Path) -> None:
    samples = _pattern(40, 40, seed=3).astype(np.uint16) * 257
    icc = _icc_profile("Test RGB", colorants=_P3_COLORANTS, curve="para")
    (tmp_path / "16.png").write_bytes(_png16(samples, 2, icc=icc))
    png = load_image(tmp_path / "16.png")
    tiff = load_image(_tiff16(tmp_path / "16.tif", samples, iccprofile=icc, tile=(16, 16)))
    assert tiff.notes == png.notes == ("ICC profile 'Test RGB' converted to sRGB (relative colorimetric)",)
    assert torch.equal(tiff.tensor, png.tensor)


# grey: Pillow decodes it (and may turn it); grey + alpha: tifffile alone; RGB: Pillow header, tifffile pixels
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_tiff16_exif_orientation(tmp_path: Path, channels: int) -> None:
    samples = _random16(40, 56, channels, seed=8)
    if channels == 2:
        samples[..., 1] = 65535
    color = samples[..., 0] if channels < 3 else samples
    stored = samples[..., 0] if channels == 1 else samples
    path = _tiff16(tmp_path / "o.tif", stored, extratags=[(274, "H", 1, 6, True)])
    loaded = load_image(path)
    assert torch.equal(loaded.tensor, torch.rot90(_as_float(color, 65535.0), -1, dims=(1, 2)))
    assert (loaded.width, loaded.height) == read_size(path) == (40, 56)
    assert loaded.notes == ("EXIF orientation applied (rotate 90 clockwise)",)


def test_tiff16_first_of_several_pages(tmp_path: Path) -> None:
    pages = _random16(80, 43, 3, seed=9).reshape(2, 40, 43, 3)
    loaded = load_image(_tiff16(tmp_path / "pages.tif", pages, photometric="rgb"))
    assert loaded.notes == ("first of 2 frames used",)
    assert torch.equal(loaded.tensor, _as_float(pages[0], 65535.0))


@pytest.mark.parametrize(
    ("samples", "options", "problem"),
    [
        (np.zeros((40, 40, 3), np.float32), {}, "TIFF with 32-bit floating-point samples"),
        (np.zeros((40, 40, 3), np.int16), {}, "TIFF with 16-bit signed integer samples"),
        (np.zeros((40, 40, 4), np.uint16), {"photometric": "separated"}, "16-bit TIFF with CMYK colours"),
    ],
)
def test_tiff_deep_variants_refused_with_advice(tmp_path: Path, samples, options, problem: str) -> None:
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, samples, **{"photometric": "rgb", **options})
    assert _message(path) == (
        f"{problem} is not supported; convert it to a 16-bit sRGB PNG first "
        "(e.g. `magick INPUT -profile sRGB.icc OUTPUT.png`)"
    )


def test_tiff16_missing_strip_is_an_error_not_black_pixels(tmp_path: Path) -> None:
    for channels in (2, 3):  # opened by tifffile alone, and by Pillow with tifffile decoding
        path = _tiff16(tmp_path / f"missing{channels}.tif", _random16(40, 40, channels), rowsperstrip=8)
        with tifffile.TiffFile(path) as tif:
            counts = list(tif.pages[0].databytecounts)
        _set_tiff_tag(path, "StripByteCounts", [counts[0], 0, *counts[2:]])
        assert _message(path) == "truncated or corrupt image data (a strip or tile is missing or cut short)"


def test_tifffile_log_messages_become_notes(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    samples = _random16(40, 40, 3)
    path = _tiff16(tmp_path / "odd.tif", samples, software="tifffile.py")
    data = path.read_bytes()
    path.write_bytes(data.replace(b"tifffile.py", b"\x90ifffile.py"))  # not ASCII: tifffile logs it
    loaded = load_image(path)
    assert torch.equal(loaded.tensor, _as_float(samples, 65535.0))
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("decoder warning: ")
    assert "ASCII" in loaded.notes[0]
    assert capfd.readouterr().err == ""


def test_importing_images_does_not_import_tifffile() -> None:
    code = "import sys, radn_cli.images; assert 'tifffile' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------------------------------
# 3. Grey, 1-bit and palette images become RGB


@pytest.mark.parametrize("mode", ["L", "1", "P", "I", "LA"])
def test_grey_and_palette_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    grey = _pattern(40, 40, 1)[..., 0]
    base = Image.fromarray(grey)
    image = base.convert(mode) if mode != "LA" else Image.merge("LA", (base, Image.new("L", base.size, 255)))
    fmt = "TIFF" if mode == "I" else "PNG"
    loaded = load_image(_save(tmp_path / f"{mode}.img", image, fmt))
    expected = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    if mode == "I":
        expected = np.repeat(grey[..., None], 3, axis=2).astype(np.float32) / 65535
    assert torch.equal(loaded.tensor, torch.from_numpy(expected).permute(2, 0, 1))
    assert torch.equal(loaded.tensor[0], loaded.tensor[1]) or mode == "P"
    assert loaded.notes == ()


def test_colour_palette_is_expanded(tmp_path: Path) -> None:
    image = Image.fromarray(_pattern(40, 40)).quantize(16)
    loaded = load_image(_save(tmp_path / "p.png", image, "PNG"))
    assert torch.equal(loaded.tensor, _as_float(np.asarray(image.convert("RGB"))))


def test_cmyk_without_profile_is_converted_with_a_note(tmp_path: Path) -> None:
    cmyk = Image.fromarray(_pattern(40, 40)).convert("CMYK")
    loaded = load_image(_save(tmp_path / "cmyk.jpg", cmyk, "JPEG", quality=95))
    assert loaded.notes == ("CMYK converted to RGB without a colour profile (approximate colours)",)


def test_first_frame_of_a_multi_page_file(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 255))
    path = _save(tmp_path / "pages.tif", first, "TIFF", save_all=True, append_images=[second])
    loaded = load_image(path)
    assert loaded.notes == ("first of 2 frames used",)
    assert torch.all(loaded.tensor == torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))


# ---------------------------------------------------------------------------------------------------
# 4. EXIF orientation


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    path = _save(tmp_path / "o.png", Image.fromarray(_pattern(40, 56)), "PNG", exif=_exif(orientation))
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    loaded = load_image(path)
    assert torch.equal(loaded.tensor, _as_float(expected))
    assert (loaded.width, loaded.height) == read_size(path) == (expected.shape[1], expected.shape[0])
    assert any(n.startswith("EXIF orientation applied") for n in loaded.notes) == (orientation != 1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_exif_orientation_is_applied_once(tmp_path: Path, orientation: int) -> None:
    """Recent Pillow versions turn a TIFF while loading it: the orientation must still apply once."""
    image = Image.fromarray(_pattern(40, 56))
    path = _save(tmp_path / "o.tif", image, "TIFF", tiffinfo={0x0112: orientation})
    with Image.open(_save(tmp_path / "o.png", image, "PNG", exif=_exif(orientation))) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened))
    loaded = load_image(path)
    assert torch.equal(loaded.tensor, _as_float(expected))
    assert (loaded.width, loaded.height) == read_size(path) == (expected.shape[1], expected.shape[0])


@pytest.mark.parametrize(("orientation", "words"), [(6, "rotate 90 clockwise"), (3, "rotate 180")])
def test_jpeg_exif_orientation(tmp_path: Path, orientation: int, words: str) -> None:
    path = _save(tmp_path / "o.jpg", Image.fromarray(_pattern(40, 64)), "JPEG", exif=_exif(orientation))
    loaded = load_image(path)
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened))
    assert torch.equal(loaded.tensor, _as_float(expected))
    assert loaded.notes == (f"EXIF orientation applied ({words})",)
    assert read_size(path) == ((40, 64) if orientation == 6 else (64, 40))


# ---------------------------------------------------------------------------------------------------
# 5. ICC profiles


def test_non_srgb_profile_is_converted_8bit(tmp_path: Path) -> None:
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[..., 0] = 200  # "red" in a profile whose red primary is sRGB blue
    icc = _icc_profile("Swapped RGB")
    loaded = load_image(_save(tmp_path / "swapped.png", Image.fromarray(pixels), "PNG", icc_profile=icc))
    assert loaded.notes == ("ICC profile 'Swapped RGB' converted to sRGB (relative colorimetric)",)
    red, green, blue = loaded.tensor[:, 0, 0].tolist()
    assert red < 0.01 and green < 0.01 and 0.7 < blue < 0.85


def test_srgb_profile_or_none_leaves_pixels_alone(tmp_path: Path) -> None:
    pixels = _pattern(40, 40)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = load_image(_save(tmp_path / "srgb.png", Image.fromarray(pixels), "PNG", icc_profile=srgb))
    plain = load_image(_save(tmp_path / "plain.png", Image.fromarray(pixels), "PNG"))
    assert tagged.notes == plain.notes == ()
    assert torch.equal(tagged.tensor, plain.tensor) and torch.equal(plain.tensor, _as_float(pixels))
    same_as_srgb = _icc_profile("My sRGB", colorants=_SRGB_COLORANTS, curve="para")
    mine = load_image(_save(tmp_path / "mine.png", Image.fromarray(pixels), "PNG", icc_profile=same_as_srgb))
    assert mine.notes == () and torch.equal(mine.tensor, plain.tensor)


@pytest.mark.parametrize(
    ("colorants", "curve"), [(_SWAPPED_COLORANTS, "gamma"), (_P3_COLORANTS, "para"), (_P3_COLORANTS, "table")]
)
def test_16bit_conversion_agrees_with_littlecms(tmp_path: Path, colorants, curve: str) -> None:
    pixels = _pattern(40, 40, seed=3)
    icc = _icc_profile("Test RGB", colorants=colorants, curve=curve)
    eight = load_image(_save(tmp_path / "8.png", Image.fromarray(pixels), "PNG", icc_profile=icc))
    (tmp_path / "16.png").write_bytes(_png16(pixels.astype(np.uint16) * 257, 2, icc=icc))
    sixteen = load_image(tmp_path / "16.png")
    assert sixteen.bit_depth == 16 and sixteen.notes == eight.notes
    assert eight.notes == ("ICC profile 'Test RGB' converted to sRGB (relative colorimetric)",)
    assert (sixteen.tensor - eight.tensor).abs().max() < 2.5 / 255


def test_16bit_with_lut_profile_is_refused(tmp_path: Path) -> None:
    icc = _icc_profile("Scanner LUT", lut=True)
    (tmp_path / "lut.png").write_bytes(_png16(np.zeros((40, 40, 3), np.uint16), 2, icc=icc))
    with pytest.raises(ImageError, match="'Scanner LUT', which is not a matrix/TRC profile"):
        load_image(tmp_path / "lut.png")


def test_unreadable_or_mismatched_profile_is_noted(tmp_path: Path) -> None:
    pixels = Image.fromarray(_pattern(40, 40))
    junk = load_image(_save(tmp_path / "junk.png", pixels, "PNG", icc_profile=b"not a profile" * 20))
    assert junk.notes == ("ICC profile unreadable, ignored (colours taken as sRGB)",)
    grey = Image.fromarray(_pattern(40, 40, 1)[..., 0])
    mismatched = load_image(_save(tmp_path / "grey.png", grey, "PNG", icc_profile=_icc_profile("Some RGB")))
    assert mismatched.notes == ("ICC profile 'Some RGB' is for RGB, not GRAY: ignored",)


# ---------------------------------------------------------------------------------------------------
# 6. Alpha


def test_opaque_alpha_is_dropped_without_a_note(tmp_path: Path) -> None:
    rgb = _pattern(40, 40)
    rgba = np.concatenate([rgb, np.full((40, 40, 1), 255, np.uint8)], axis=2)
    loaded = load_image(_save(tmp_path / "a.webp", Image.fromarray(rgba), "WEBP", lossless=True))
    assert loaded.notes == () and torch.equal(loaded.tensor, _as_float(rgb))


def test_transparent_pixels_are_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = (255, 0, 0)
    rgba[..., 3] = 255
    rgba[:, :20, 3] = 0
    rgba[:, 20:24, 3] = 51  # 20% red over white
    loaded = load_image(_save(tmp_path / "a.png", Image.fromarray(rgba), "PNG"))
    assert loaded.notes == ("alpha composited over white (60.0% of pixels not opaque)",)
    assert torch.all(loaded.tensor[:, :, :20] == 1.0)
    assert torch.allclose(loaded.tensor[:, 0, 20], torch.tensor([1.0, 0.8, 0.8]))
    assert torch.all(loaded.tensor[:, :, 24:] == torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))


def test_palette_transparency_is_composited(tmp_path: Path) -> None:
    image = Image.new("P", (40, 40), 1)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.paste(0, (0, 0, 40, 10))
    loaded = load_image(_save(tmp_path / "p.png", image, "PNG", transparency=0))
    assert loaded.notes == ("alpha composited over white (25.0% of pixels not opaque)",)
    assert torch.all(loaded.tensor[:, :10] == 1.0)


# ---------------------------------------------------------------------------------------------------
# 7. Pixel limit


def _bomb_png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb_png(100_000, 100_000))
    started = time.perf_counter()
    with pytest.raises(ImageError) as caught:
        load_image(path)
    assert time.perf_counter() - started < 1.0
    assert str(caught.value) == (
        f"{path}: image is 100000x100000 (10000.0 megapixels), over the limit of 100.0 megapixels "
        "(set RADN_MAX_PIXELS to raise it)"
    )
    assert read_size(path) == (100_000, 100_000)


def test_pixel_limit_from_env_and_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(tmp_path / "a.png", Image.fromarray(_pattern(40, 50)), "PNG")
    with pytest.raises(ImageError, match=r"is 50x40 \(0.002 megapixels\), over the limit of 0.001 mega"):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=2000).width == 50
    monkeypatch.setenv("RADN_MAX_PIXELS", "1999")
    with pytest.raises(ImageError, match="set RADN_MAX_PIXELS to raise it"):
        load_image(path)
    monkeypatch.setenv("RADN_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="RADN_MAX_PIXELS must be a positive whole number"):
        load_image(path)


def test_our_limit_replaces_pillows_and_pillows_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = _save(tmp_path / "a.png", Image.fromarray(_pattern(40, 40)), "PNG")
    assert load_image(path).width == 40 and read_size(path) == (40, 40)
    assert Image.MAX_IMAGE_PIXELS == 100


# ---------------------------------------------------------------------------------------------------
# 8. Failures are one-line ImageErrors


def _message(path: Path) -> str:
    with pytest.raises(ImageError) as caught:
        load_image(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


def test_file_system_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _message(tmp_path / "missing.png") == "no such file"
    assert _message(tmp_path / "missing" / "a.png") == "no such file"
    assert _message(tmp_path) == "is a directory, not an image file"
    (tmp_path / "empty.png").write_bytes(b"")
    assert _message(tmp_path / "empty.png") == "empty file (0 bytes)"
    locked = _save(tmp_path / "locked.png", Image.new("RGB", (40, 40)), "PNG")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    import radn_cli.paths  # where every input file is opened

    monkeypatch.setattr(radn_cli.paths, "open", refuse, raising=False)
    assert _message(locked) == "permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = _save(tmp_path / "locked.png", Image.new("RGB", (40, 40)), "PNG")
    path.chmod(0)
    assert _message(path) == "permission denied"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "PNG16", "TIFF16"])
def test_truncated_file_is_an_error_not_grey_pixels(tmp_path: Path, fmt: str) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = _valid_files()[fmt]
    path = tmp_path / "cut.img"
    path.write_bytes(data[: len(data) * 2 // 3])
    assert _message(path).startswith("truncated or corrupt image data")


def test_corrupt_png_crc(tmp_path: Path) -> None:
    data = bytearray(_valid_files()["PNG"])
    data[-20] ^= 0xFF  # inside the last IDAT
    (tmp_path / "bad.png").write_bytes(bytes(data))
    assert _message(tmp_path / "bad.png").startswith("truncated or corrupt image data")


def test_header_cut_short(tmp_path: Path) -> None:
    (tmp_path / "short.png").write_bytes(_valid_files()["PNG"][:20])
    message = _message(tmp_path / "short.png")
    assert message.startswith("truncated or corrupt image data")


def test_path_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    folder = tmp_path / "dossier d'été"
    folder.mkdir()
    path = _save(folder / "crème brûlée 写真.png", Image.fromarray(_pattern(40, 40)), "PNG")
    loaded = load_image(path)
    assert loaded.path == str(path) and read_size(str(path)) == (40, 40)


# ---------------------------------------------------------------------------------------------------
# 9. Pairs


def test_check_pair_sizes() -> None:
    check_pair((512, 384), (512, 384))
    with pytest.raises(SizeMismatchError) as caught:
        check_pair((512, 384), (384, 512), ref_path="ref.png", dist_path="dist.png")
    assert str(caught.value) == "reference is 512x384 but distorted is 384x512 (ref.png, dist.png)"
    with pytest.raises(SizeMismatchError, match=r"^reference is 64x64 but distorted is 64x65$"):
        check_pair((64, 64), (64, 65))
    with pytest.raises(ImageError) as caught:
        check_pair((20, 20), (20, 20), ref_path="tiny.png")
    assert str(caught.value) == "tiny.png: image is 20x20, smaller than one 32x32 patch"
    with pytest.raises(ImageError, match="image is 100x31, smaller than one 32x32 patch"):
        check_pair((100, 40), (100, 31))


def test_check_pair_with_loaded_images(tmp_path: Path) -> None:
    ref = load_image(_save(tmp_path / "ref.png", Image.new("RGB", (64, 48)), "PNG"))
    dist = load_image(_save(tmp_path / "dist.png", Image.new("RGB", (48, 64)), "PNG"))
    check_pair(ref, (64, 48))
    with pytest.raises(SizeMismatchError, match=rf"\({ref.path}, {dist.path}\)$"):
        check_pair(ref, dist)


# ---------------------------------------------------------------------------------------------------
# 10. Determinism, and the shipped example


def test_same_file_same_tensor(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.jpg", Image.fromarray(_pattern(48, 40)), "JPEG", quality=50)
    assert torch.equal(load_image(path).tensor, load_image(path).tensor)


def test_example_pair_loads() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    ref, dist = load_image(examples / "ref.png"), load_image(examples / "dist.png")
    check_pair(ref, dist)
    assert (ref.width, ref.height) == (512, 384) and not torch.equal(ref.tensor, dist.tensor)


# ---------------------------------------------------------------------------------------------------
# Fuzz: anything either loads or raises ImageError


@st.composite
def _damaged_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "truncated", "flipped"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=512))
    data = bytearray(_valid_files()[draw(st.sampled_from(sorted(_valid_files())))])
    if kind == "truncated":
        return bytes(data[: draw(st.integers(1, len(data) - 1))])
    for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
        data[position] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_damaged_files())
def test_damaged_files_load_or_raise_image_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.png"
    path.write_bytes(data)
    try:
        read_size(path)
        loaded = load_image(path, max_pixels=1_000_000)
    except ImageError as error:
        assert "\n" not in str(error)
    else:
        assert loaded.tensor.shape == (3, loaded.height, loaded.width)
        assert loaded.tensor.dtype == torch.float32 and loaded.tensor.is_contiguous()


def test_decoder_warnings_go_to_the_thread_that_raised_them() -> None:
    """Images decode in several threads at once: each decode's notes hold its own warnings only."""
    import threading
    import warnings

    from radn_cli.images.files import _collect_warnings

    barrier = threading.Barrier(2)
    collected: dict[str, list[str]] = {}

    def decode(name: str) -> None:
        with _collect_warnings() as messages:
            barrier.wait()
            for _ in range(2):  # the same warning twice: both are kept
                warnings.warn_explicit(f"from {name}", UserWarning, "decoder.py", 7, module="PIL.Fake")
            barrier.wait()
        collected[name] = list(messages)

    threads = [threading.Thread(target=decode, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert collected == {"a": ["from a", "from a"], "b": ["from b", "from b"]}
