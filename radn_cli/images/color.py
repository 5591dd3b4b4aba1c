"""Colour management: embedded ICC profiles to sRGB, by LittleCMS for 8-bit images and in float32
here (matrix/TRC profiles) for 16-bit ones, with the notes that say what was done."""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageCms

from ..errors import ImageError, first_line
from .pixels import CONVERT_HINT

_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
# Linear sRGB from CIE XYZ relative to D50 (Bradford-adapted sRGB primaries, the ICC connection space).
_SRGB_FROM_XYZ_D50 = torch.tensor(
    [
        [3.1338561, -1.6168667, -0.4906146],
        [-0.9787684, 1.9161415, 0.0334540],
        [0.0719453, -0.2289914, 1.4052427],
    ]
)


@dataclass(frozen=True)
class _Profile:
    """What this package needs to know about an embedded ICC profile."""

    name: str
    space: str  # ICC colour space: "RGB", "GRAY", "CMYK", ...
    is_srgb: bool
    cms: ImageCms.ImageCmsProfile


class _UnsupportedProfile(Exception):
    """An ICC profile that the float32 path cannot apply (not matrix/TRC)."""


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
    return _Profile(first_line(name, 60), space, _maps_to_itself(cms, space), cms)


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


def icc_8bit(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """An L, RGB or CMYK image converted to sRGB by LittleCMS when its profile is not sRGB."""
    profile = _usable_profile(icc, _SPACE_OF[im.mode], notes)
    if profile is None:
        return im
    try:
        out = ImageCms.profileToProfile(im, profile.cms, _srgb(), renderingIntent=_INTENT, outputMode="RGB")
    except Exception as exc:
        reason = first_line(exc, 60) or type(exc).__name__
        notes.append(f"ICC profile '{profile.name}' could not be applied ({reason}): ignored")
        return im
    notes.append(_converted_note(profile))
    return out


def icc_float(color: torch.Tensor, icc: bytes | None, notes: list[str], shown: str) -> torch.Tensor:
    """16-bit planes [1 or 3, H, W] converted to sRGB in float32 when their profile is not sRGB."""
    profile = _usable_profile(icc, "RGB" if color.shape[0] == 3 else "GRAY", notes)
    if profile is None:
        return color
    try:
        transform = _float_transform(icc)
    except _UnsupportedProfile:
        raise ImageError(
            f"16-bit image with ICC profile '{profile.name}', which is not a matrix/TRC profile, "
            f"cannot be converted to sRGB at full precision; {CONVERT_HINT}",
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
