"""Files written whole or not at all: ``atomic_write``, and ``fsync_folder`` for a rename or a new
file that must survive a power loss.

    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "page.html"
    >>> with atomic_write(target) as temporary:
    ...     _ = temporary.write_text("<p>done</p>")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('<p>done</p>', ['page.html'])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write (by name: ``save_file``,
    ``torch.save``, ``Image.save``, ``open``); when the block ends without an error the file replaces
    ``path`` in one rename, and on any error (Ctrl-C too) it is removed and ``path`` is as it was.

    The temporary name, ``.<name>.<pid>.tmp``, is unique per process (two processes writing one file
    never share a temporary) and hidden from folder listings. ``durable``: the data reach the disk
    before the rename, and the rename before this returns (fsync of the file, then of its folder),
    for files that must survive a power loss or an OS crash, not only a killed process.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        if durable:
            _fsync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable (a file created or renamed there); a no-op where folders
    cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
