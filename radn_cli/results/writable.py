"""Checks before any work: ``check_writable`` tells whether results can be written to a path (the folder
exists and accepts new files, the file is absent or a writable regular file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import RadnError


def check_writable(path: Path) -> None:
    """Raise :class:`RadnError` unless results can be written to ``path``.

    The parent folder must exist and accept new files (tested by creating and removing a temporary
    file, which also catches read-only mounts), and ``path`` must be absent or a writable regular file.
    """
    path = Path(path)
    if path.is_dir():
        raise RadnError("is a folder; give a file name for the results", path)
    if path.is_symlink() and not path.exists():
        raise RadnError("is a broken symbolic link", path)
    if path.exists():
        if not path.is_file():
            raise RadnError("is not a regular file", path)
        if not os.access(path, os.W_OK):
            raise RadnError("file is not writable (permission denied)", path)
    parent = Path(os.path.realpath(path)).parent
    if not parent.exists():
        raise RadnError("folder does not exist", path.parent)
    if not parent.is_dir():
        raise RadnError("is not a folder", path.parent)
    try:
        fd, probe = tempfile.mkstemp(prefix=".radn-write-test-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise RadnError(
            f"cannot create files in this folder ({error.strerror or error})", path.parent
        ) from None
