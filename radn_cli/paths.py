"""Checks on input files made before any work: the one place that says why a path cannot be read.

Imports nothing heavy, so the CLI reports a missing or unreadable input at once, before PyTorch
loads; the image reader opens files through ``open_input`` and so says the same thing.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from .errors import ImageError
from .errors import reason as _reason


def check_input(path: str | os.PathLike[str]) -> os.stat_result:
    """The file's status, or an ImageError naming the path and what is wrong with it."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError("no such file", path) from None
    except PermissionError:
        raise ImageError("permission denied", path) from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read file ({_reason(exc)})", path) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("is a directory, not an image file", path)
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("not a regular file", path)
    if info.st_size == 0:
        raise ImageError("empty file (0 bytes)", path)
    return info


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """The file opened for binary reading, or an ImageError saying why it cannot be."""
    check_input(path)
    try:
        return open(path, "rb")
    except PermissionError:
        raise ImageError("permission denied", path) from None
    except OSError as exc:
        raise ImageError(f"cannot read file ({_reason(exc)})", path) from None
