"""16-bit TIFFs at full precision, read by tifffile: grey + alpha, RGB, RGBA and min-is-white grey
(and any TIFF over 8 bits per sample that Pillow cannot open), in strips or tiles, contiguous or
separate planes, either byte order, with every compression and predictor that tifffile decodes (LZW
and some others need the optional imagecodecs package; without it such a file is refused with a
message that says so).

This module imports tifffile; the rest of the package imports this module only when it meets such a
file, so ``import radn_cli.images`` does not load tifffile. tifffile's log messages during a read
become notes on the image instead of reaching the console.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import tifffile
import torch

from ..errors import ImageError, first_line
from .color import icc_float
from .pixels import CONVERT_HINT, CORRUPT, Pixels, planes

_MINISWHITE, _MINISBLACK, _RGB = 0, 1, 2  # TIFF PhotometricInterpretation
_ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA = 1, 2  # TIFF ExtraSamples
_SAMPLE_KINDS = {1: "", 2: " signed integer", 3: " floating-point"}  # TIFF SampleFormat
_PHOTOMETRIC_NAMES = {3: "palette", 4: "mask", 5: "CMYK", 6: "YCbCr", 8: "CIELab", 9: "ICCLab", 10: "ITULab"}
_COMPRESSION_NAMES = {
    5: "LZW",
    6: "old-style JPEG",
    7: "JPEG",
    32773: "PackBits",
    34925: "LZMA",
    50000: "Zstd",
    34933: "PNG",
    50001: "WebP",
    50002: "JPEG XL",
}
_AXES = {"YX": (0, 1), "YXS": (0, 1, 2), "SYX": (1, 2, 0)}  # page axes -> transpose to [H, W(, S)]


@dataclass(frozen=True)
class TiffHeader:
    """The first page of a TIFF that Pillow cannot open, as tifffile reads it before decoding. The
    attribute names are those of a PIL image that the loader reads, plus the EXIF orientation."""

    width: int
    height: int
    n_frames: int
    orientation: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def read_header(fp: BinaryIO) -> TiffHeader | None:
    """The header of a TIFF with more than 8 bits per sample, or None (not such a TIFF, or unreadable)."""
    try:
        with _log_collected(), _tiff_file(fp) as tif:
            page = tif.pages[0]
            if int(page.bitspersample) <= 8:
                return None
            orientation = page.tags.valueof(274, 1)
            orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
            return TiffHeader(int(page.imagewidth), int(page.imagelength), len(tif.pages), orientation)
    except Exception:
        return None


def decode_tiff16(fp: BinaryIO, shown: str) -> Pixels:
    """The first page of a 16-bit TIFF at full precision (Pillow would keep only 8 bits of it)."""
    with _log_collected() as logged, _tiff_file(fp) as tif:
        page = tif.pages[0]
        problem = _problem(page)
        if problem:
            raise ImageError(f"{problem} is not supported; {CONVERT_HINT}", shown)
        _check_codec(int(page.compression), shown)
        _check_segments(page, fp, shown)
        samples = page.asarray(maxworkers=1)  # one thread: its log records are collected here
        samples = samples.transpose(_AXES[page.axes])
        photometric, extra, icc = int(page.photometric), tuple(page.extrasamples), page.tags.valueof(34675)
    if samples.dtype != np.uint16:
        raise ImageError(f"{CORRUPT} (decoded {samples.dtype} samples, not 16-bit)", shown)
    samples = samples if samples.ndim == 3 else samples[:, :, None]
    colors = 3 if photometric == _RGB else 1
    color_samples = samples[:, :, :colors]
    if photometric == _MINISWHITE:
        color_samples = np.subtract(65535, color_samples, dtype=np.uint16)
    color = planes(color_samples, 65535.0)
    alpha_kind = extra[0] if extra and samples.shape[2] > colors else 0
    alpha = None
    if alpha_kind in (_ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA):
        alpha = planes(samples[:, :, colors : colors + 1], 65535.0)
    if alpha is not None and alpha_kind == _ASSOCIATED_ALPHA:  # premultiplied colour
        color = torch.where(alpha > 0, color / alpha.clamp_min(1e-12), 0.0).clamp_(0.0, 1.0)
    pixels = Pixels(color, alpha, 16)
    pixels.notes += [f"decoder warning: {line}" for line in dict.fromkeys(logged) if line]
    pixels.color = icc_float(color, icc, pixels.notes, shown)
    return pixels


def _tiff_file(fp: BinaryIO) -> tifffile.TiffFile:
    """tifffile's reader on the open file (closing it leaves the file open)."""
    fp.seek(0)
    return tifffile.TiffFile(fp)


def _problem(page: Any) -> str | None:
    """Why this TIFF page cannot be read at full precision here, or None."""
    bits, kind = int(page.bitspersample), int(page.sampleformat)
    if bits != 16 or kind != 1:
        return f"TIFF with {bits}-bit{_SAMPLE_KINDS.get(kind, '')} samples"
    photometric = int(page.photometric)
    if photometric not in (_MINISWHITE, _MINISBLACK, _RGB):
        name = _PHOTOMETRIC_NAMES.get(photometric, f"photometric interpretation {photometric}")
        return f"16-bit TIFF with {name} colours"
    spp = int(page.samplesperpixel)
    if photometric == _RGB and spp < 3:
        return f"16-bit RGB TIFF with {spp} samples per pixel"
    if page.axes not in _AXES:
        return f"16-bit TIFF with {page.axes} axes"
    return None


def _check_codec(compression: int, shown: str) -> None:
    """Raise unless tifffile can decompress this compression scheme as installed."""
    if compression in tifffile.TIFF.DECOMPRESSORS:
        return
    try:
        name = _COMPRESSION_NAMES.get(compression) or tifffile.COMPRESSION(compression).name
    except ValueError:  # not a compression that tifffile knows of, with or without imagecodecs
        name = None
    if name and importlib.util.find_spec("imagecodecs") is None:
        raise ImageError(
            f"16-bit TIFF with {name} compression needs the imagecodecs package "
            f"(`pip install imagecodecs`), or {CONVERT_HINT}",
            shown,
        )
    name = name or f"unknown type {compression}"
    raise ImageError(f"16-bit TIFF with {name} compression is not supported; {CONVERT_HINT}", shown)


def _check_segments(page: Any, fp: BinaryIO, shown: str) -> None:
    """Raise when a strip or tile is missing or runs past the end of the file (tifffile would fill a
    missing one with zeros: missing data must be an error, never black pixels)."""
    size = fp.seek(0, 2)
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
        if count <= 0 or offset <= 0 or offset + count > size:
            raise ImageError(f"{CORRUPT} (a strip or tile is missing or cut short)", shown)


_collecting = threading.local()


class _CollectLog(logging.Filter):
    """Takes tifffile's log records out of logging while this thread is in ``_log_collected``."""

    def filter(self, record: logging.LogRecord) -> bool:
        messages = getattr(_collecting, "messages", None)
        if messages is None:
            return True
        messages.append(first_line(record.getMessage(), 100))
        return False


for _name in ("tifffile", "tifffile.tifffile"):  # the logger's name in recent and in older versions
    logging.getLogger(_name).addFilter(_CollectLog())


@contextmanager
def _log_collected() -> Iterator[list[str]]:
    """Collect the messages that tifffile logs in this thread, instead of printing them."""
    saved = getattr(_collecting, "messages", None)
    _collecting.messages = messages = []
    try:
        yield messages
    finally:
        _collecting.messages = saved
