"""Files, limits and headers: opening a file, the pixel limit, recognising the format from its first
bytes, and reading the header (size, EXIF orientation) before any pixel is decoded: ``open_header``."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from PIL import Image, UnidentifiedImageError

from ..constants import IMAGE_SUFFIXES
from ..errors import ImageError, UsageError, reason
from ..paths import open_input
from .pixels import CORRUPT

if TYPE_CHECKING:
    from .tiff16 import TiffHeader

DEFAULT_MAX_PIXELS: int = 100_000_000
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES

_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_NOT_IMAGE = "not a recognised image (PNG, JPEG, WebP, TIFF, BMP)"
_GIF = "GIF is not supported; convert it to PNG first"
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)


def pixel_limit(max_pixels: int | None) -> tuple[int, bool]:
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


def check_pixels(width: int, height: int, limit: int, from_env: bool, shown: str) -> None:
    pixels = width * height
    if pixels > limit:
        hint = " (set RADN_MAX_PIXELS to raise it)" if from_env else ""
        raise ImageError(
            f"image is {width}x{height} ({_megapixels(pixels)} megapixels), "
            f"over the limit of {_megapixels(limit)} megapixels{hint}",
            shown,
        )


_limit_lock = threading.Lock()
_limit_users = 0
_limit_saved: int | None = None


@contextmanager
def _pillow_limit_off() -> Iterator[None]:
    """Switch Pillow's decompression-bomb check off while this package uses Pillow (ours replaces it)."""
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


_collecting = threading.local()  # .messages: the list of the decode running in this thread
_hook_lock = threading.Lock()
_PIL_MODULES = r"PIL(\..*)?$"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    messages = getattr(_collecting, "messages", None)
    if messages is None:  # not inside a decode of ours (another thread, or the host program)
        _previous_showwarning(message, category, filename, lineno, file, line)
    else:
        messages.append(str(message))


def _install_hook() -> None:
    """Route warnings to the decode of the thread that raised them: decodes run in several threads
    at once, and ``warnings.catch_warnings`` changes process-wide state. Checked at every decode,
    since a host program (or pytest) may have put its own ``showwarning`` or filters in place since.
    Pillow's warnings are shown every time (not once per code location), so each image gets its own."""
    global _previous_showwarning
    with _hook_lock:
        if warnings.showwarning is not _show_warning:
            _previous_showwarning = warnings.showwarning
            warnings.showwarning = _show_warning
        if not any(
            f[0] == "always" and f[3] is not None and f[3].pattern == _PIL_MODULES for f in warnings.filters
        ):
            warnings.filterwarnings("always", module=_PIL_MODULES)


_previous_showwarning = warnings.showwarning


@contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    """Collect the decoders' warnings raised in this thread as messages instead of letting them reach
    the console."""
    _install_hook()
    saved = getattr(_collecting, "messages", None)
    _collecting.messages = messages = []
    try:
        yield messages
    finally:
        _collecting.messages = saved


def _sniff(fp: BinaryIO) -> str | None:
    """The format that the first bytes announce, if it is one of ours (or GIF, to refuse it by name)."""
    fp.seek(0)
    head = fp.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _open_image(fp: BinaryIO, shown: str) -> Image.Image | TiffHeader:
    """Pillow's lazy image (header read, no pixels decoded), restricted to our formats; for a 16-bit
    TIFF that Pillow cannot open (grey + alpha, for one), tifffile's reading of its header."""
    try:
        return Image.open(fp, formats=_FORMATS)
    except UnidentifiedImageError:
        pass
    except MemoryError:
        raise ImageError("not enough memory to read the image header", shown) from None
    except Exception as exc:
        raise ImageError(f"{CORRUPT} ({reason(exc)})", shown) from None
    announced = _sniff(fp)
    if announced == "GIF":
        raise ImageError(_GIF, shown)
    if announced == "TIFF":
        from .tiff16 import read_header  # imports tifffile

        header = read_header(fp)
        if header is not None:
            return header
    if announced:
        raise ImageError(f"{CORRUPT}, or an unsupported {announced} variant (header unreadable)", shown)
    raise ImageError(_NOT_IMAGE, shown)


def _orientation(im: Image.Image | TiffHeader) -> int:
    """EXIF orientation 1-8 from the header; 1 when absent or unreadable."""
    if not isinstance(im, Image.Image):
        return im.orientation
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _stored_size(im: Image.Image | TiffHeader) -> tuple[int, int]:
    """(width, height) as stored, before EXIF orientation. Recent Pillow versions report a TIFF's size
    already turned for orientations 5-8 (and turn its pixels while loading), so for a TIFF the size
    comes from its ImageWidth and ImageLength tags."""
    if isinstance(im, Image.Image) and im.format == "TIFF":
        width, height = im.tag_v2.get(256), im.tag_v2.get(257)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return im.size


def _displayed_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = size
    return (height, width) if orientation >= 5 else (width, height)


@dataclass(frozen=True)
class Header:
    """An image file opened and its header read, no pixel decoded yet."""

    fp: BinaryIO
    image: Image.Image | TiffHeader  # Pillow's lazy image, or tifffile's reading of a 16-bit TIFF
    shown: str  # the path as given, for messages
    orientation: int  # EXIF orientation 1..8
    stored: tuple[int, int]  # (width, height) as stored
    width: int  # as displayed (orientation applied)
    height: int
    warnings: list[str]  # the decoders' warnings, collected while the file is open


@contextmanager
def open_header(path: str | os.PathLike[str]) -> Iterator[Header]:
    """Open an image file and read its header, with Pillow's own pixel limit off and the decoders'
    warnings collected in ``Header.warnings`` while it is open (``paths.open_input`` says why a path
    cannot be read)."""
    shown = os.fspath(path)
    with open_input(path) as fp, _pillow_limit_off(), _collect_warnings() as warned:
        im = _open_image(fp, shown)
        orientation = _orientation(im)  # read before Pillow decodes (and drops) it
        stored = _stored_size(im)
        width, height = _displayed_size(stored, orientation)
        yield Header(fp, im, shown, orientation, stored, width, height, warned)
