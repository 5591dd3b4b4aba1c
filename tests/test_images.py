"""Tests of the image decoding policy (radn_cli.images); every fixture is generated in tmp_path."""

from __future__ import annotations

import functools
import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
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


def _tiff16(
    samples: np.ndarray,
    *,
    photometric: int = 2,
    compression: int = 1,
    predictor: int = 1,
    extra_samples: tuple[int, ...] = (),
    little: bool = True,
    rows_per_strip: int = 5,
) -> bytes:
    """A 16-bit strip TIFF written by hand (Pillow cannot write 16-bit RGB TIFFs)."""
    height, width, spp = samples.shape
    order = "<" if little else ">"
    data = samples.astype(order + "u2")
    if predictor == 2:
        data = np.diff(data, axis=1, prepend=np.zeros((height, 1, spp), data.dtype)).astype(order + "u2")
    strips = [data[top : top + rows_per_strip].tobytes() for top in range(0, height, rows_per_strip)]
    if compression == 8:
        strips = [zlib.compress(strip) for strip in strips]
    elif compression != 1:
        strips = [b"\x00" * 16 for _ in strips]  # never decoded: the layout is refused first
    offsets, position, blob = [], 8, b""
    for strip in strips:
        offsets.append(position + len(blob))
        blob += strip
    entries = [
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [16] * spp),
        (259, 3, [compression]),
        (262, 3, [photometric]),
        (273, 4, offsets),
        (277, 3, [spp]),
        (278, 4, [rows_per_strip]),
        (279, 4, [len(strip) for strip in strips]),
        (284, 3, [1]),
        (317, 3, [predictor]),
    ]
    if extra_samples:
        entries.append((338, 3, list(extra_samples)))
    ifd_at = 8 + len(blob)
    ifd_at += ifd_at % 2
    out_of_line = b""
    table = b""
    value_at = ifd_at + 2 + 12 * len(entries) + 4
    for tag, kind, values in sorted(entries):
        code = "H" if kind == 3 else "I"
        packed = struct.pack(order + code * len(values), *values)
        if len(packed) <= 4:
            field = packed.ljust(4, b"\x00")
        else:
            field = struct.pack(order + "I", value_at + len(out_of_line))
            out_of_line += packed
        table += struct.pack(order + "HHI", tag, kind, len(values)) + field
    head = (b"II*\x00" if little else b"MM\x00*") + struct.pack(order + "I", ifd_at)
    padding = b"\x00" * (ifd_at - 8 - len(blob))
    ifd = struct.pack(order + "H", len(entries)) + table + b"\x00" * 4
    return head + blob + padding + ifd + out_of_line


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
    files["TIFF16"] = _tiff16(samples, compression=8, predictor=2)
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


@pytest.mark.parametrize("content", [b"hello, I am text\n" * 10, b"GIF89a" + b"\x00" * 64])
def test_text_or_other_format_is_not_a_recognised_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    for read in (load_image, read_size):
        with pytest.raises(ImageError) as caught:
            read(path)
        assert str(caught.value) == f"{path}: not a recognised image (PNG, JPEG, WebP, TIFF, BMP)"


def test_gif_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.gif", Image.new("P", (40, 40)), "GIF")
    with pytest.raises(ImageError, match="not a recognised image"):
        load_image(path)


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


@pytest.mark.parametrize(
    ("compression", "predictor", "little"), [(1, 1, True), (1, 1, False), (8, 1, True), (8, 2, False)]
)
def test_tiff16_rgb_keeps_the_low_byte(tmp_path: Path, compression: int, predictor: int, little: bool):
    samples = (0x8000 + np.arange(33 * 40 * 3) % 256).astype(np.uint16).reshape(33, 40, 3)
    path = tmp_path / "rgb16.tif"
    path.write_bytes(_tiff16(samples, compression=compression, predictor=predictor, little=little))
    loaded = load_image(path)
    assert loaded.bit_depth == 16 and loaded.notes == ()
    assert torch.equal(loaded.tensor, _as_float(samples, 65535.0))


def test_tiff16_rgba_and_grey_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((40, 40, 4), dtype=np.uint16)
    rgba[..., :3] = 0x0101
    rgba[..., 3] = 65535
    rgba[:10, :, 3] = 0
    (tmp_path / "rgba.tif").write_bytes(_tiff16(rgba, extra_samples=(2,)))
    loaded = load_image(tmp_path / "rgba.tif")
    assert loaded.notes == ("alpha composited over white (25.0% of pixels not opaque)",)
    assert torch.all(loaded.tensor[:, :10] == 1.0)
    assert torch.all(loaded.tensor[:, 10:] == np.float32(0x0101) / np.float32(65535))
    premultiplied = rgba.copy()
    premultiplied[:10, :, :3] = 0
    (tmp_path / "rgba_premultiplied.tif").write_bytes(_tiff16(premultiplied, extra_samples=(1,)))
    assert torch.equal(load_image(tmp_path / "rgba_premultiplied.tif").tensor, loaded.tensor)


def test_tiff16_grey_alpha_is_refused_not_clipped(tmp_path: Path) -> None:
    grey_alpha = np.full((40, 40, 2), 65535, dtype=np.uint16)
    (tmp_path / "la.tif").write_bytes(_tiff16(grey_alpha, photometric=1, extra_samples=(2,)))
    message = _message(tmp_path / "la.tif")
    assert message == "truncated or corrupt image data, or an unsupported TIFF variant (header unreadable)"


def test_tiff16_lzw_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "lzw.tif"
    path.write_bytes(_tiff16(np.zeros((40, 40, 3), np.uint16), compression=5))
    with pytest.raises(ImageError) as caught:
        load_image(path)
    message = str(caught.value)
    assert "16-bit TIFF with LZW compression" in message and "not supported" in message
    assert "convert it to a 16-bit sRGB PNG" in message and "\n" not in message


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

    monkeypatch.setattr(images, "open", refuse, raising=False)
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
