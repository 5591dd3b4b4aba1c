"""The writer: ``ResultsWriter`` opens (or atomically rewrites, on resume) the CSV under the output lock
and appends each row with one ``os.write``, ``fsync``-ing at most every ``fsync_interval`` seconds and
on close; ``put_in_order`` rewrites it atomically once a resumed run is complete, so that its rows
stand in the order of the input, as those of a run that was never interrupted."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from ..atomic import atomic_write, fsync_folder
from ..errors import RadnError, UsageError
from .lock import OutputLock
from .resume import ResumeReport, read_existing
from .rows import ENCODING, HEADER_LINE, Key, encode_row, row_cells, row_key
from .writable import check_writable


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)  # a regular file takes it all in one call unless the disk is full
        view = view[written:]


class ResultsWriter:
    """Append rows of :data:`COLUMNS` to a CSV file; a context manager. See the module docstring.

    Args:
        path: the CSV file.
        resume: continue an existing file: rows that succeeded are kept and reported by
            :meth:`done_keys`; rows that failed, torn and unparsable rows are removed (atomic rewrite).
            A missing or empty file starts a new one.
        overwrite: replace an existing file. Without ``resume`` or ``overwrite`` an existing non-empty
            file is refused.
        fsync_interval: seconds between ``os.fsync`` calls (0: after every row). Rows reach the kernel
            at once either way, so only a power loss or OS crash can lose the unsynced ones.

    Raises:
        UsageError: ``resume`` and ``overwrite`` together.
        RadnError: not writable, exists (without resume/overwrite), locked by another process, or
            (resume) not a radn results file.
    """

    def __init__(
        self, path: Path, *, resume: bool = False, overwrite: bool = False, fsync_interval: float = 2.0
    ) -> None:
        self._fd: int | None = None
        self._lock: OutputLock | None = None
        if resume and overwrite:
            raise UsageError("--resume and --overwrite cannot be used together")
        if fsync_interval < 0:
            raise ValueError("fsync_interval must be >= 0")
        self.path = Path(path)
        self.fsync_interval = float(fsync_interval)
        self.resume_report: ResumeReport | None = None
        self._done: set[Key] = set()
        self._present: set[Key] = set()
        self._rows: dict[Key, list[str]] = {}  # the file's rows, in the file's order
        check_writable(self.path)
        self._real = Path(os.path.realpath(self.path))
        lock = OutputLock(self._real, display=self.path)
        lock.acquire()
        self._lock = lock
        try:
            self._open(resume=resume, overwrite=overwrite)
        except BaseException:
            self.close()
            raise
        self._size = os.fstat(self._fd).st_size
        self._last_sync = time.monotonic()

    # -- opening -------------------------------------------------------------------------------------

    def _open(self, *, resume: bool, overwrite: bool) -> None:
        try:
            existing = self._real.read_bytes() if self._real.exists() else None
        except OSError as error:
            raise RadnError(f"cannot read results ({error.strerror or error})", self.path) from None
        if existing and not resume and not overwrite:
            raise RadnError("exists; use --resume to continue it or --overwrite to replace it", self.path)
        if existing and resume:
            kept, report = read_existing(existing, self.path)
            self.resume_report = report
            self._done = set(kept)
            self._present = set(kept)
            self._rows = dict(kept)
            if report.rewritten:
                self._rewrite(list(kept.values()))
            self._fd = os.open(self._real, os.O_WRONLY | os.O_APPEND)
            return
        if resume:
            self.resume_report = ResumeReport(0, 0, 0, 0, 0, rewritten=False)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if existing else 0)
        self._fd = os.open(self._real, flags, 0o666)
        _write_all(self._fd, HEADER_LINE.encode(ENCODING))
        os.fsync(self._fd)
        fsync_folder(self._real.parent)

    def _rewrite(self, rows: list[list[str]]) -> None:
        """Replace the file by header + rows, atomically and durably (``atomic_write``), keeping its
        permissions."""
        mode = os.stat(self._real).st_mode & 0o7777
        chunks = [HEADER_LINE.encode(ENCODING)] + [encode_row(cells) for cells in rows]
        with atomic_write(self._real, durable=True) as temporary:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                _write_all(fd, b"".join(chunks))
            finally:
                os.close(fd)

    # -- API -----------------------------------------------------------------------------------------

    def done_keys(self) -> set[Key]:
        """(ref, dist, weights, precision, scale) of the successful rows found on resume (empty
        otherwise)."""
        return set(self._done)

    def write(self, row: Mapping[str, object]) -> None:
        """Append one row (missing columns are empty) with a single ``os.write``.

        Raises:
            ValueError: closed writer, unknown column, no ref or dist, or a key the file already holds.
            RadnError: the row could not be written (disk full, I/O error); the file is left without it.
        """
        if self._fd is None:
            raise ValueError("write() on a closed ResultsWriter")
        cells = row_cells(row)
        key = row_key(cells)
        if key in self._present:
            raise ValueError(f"the results already hold a row for {key}")
        data = encode_row(cells)
        start = self._size
        try:
            _write_all(self._fd, data)
        except BaseException as error:
            try:  # never leave part of a row behind (possible only after a short write)
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            if isinstance(error, OSError):
                raise RadnError(f"cannot write results ({error.strerror or error})", self.path) from None
            raise
        self._size = start + len(data)
        self._present.add(key)
        self._rows[key] = cells
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval:
            os.fsync(self._fd)
            self._last_sync = now

    def put_in_order(self, keys: Iterable[Key]) -> bool:
        """Put the rows in the order of ``keys`` (a batch's pairs, in its input order), after the rows
        of other keys (scored with other weights, precision or scale, or of pairs no longer listed),
        which keep their order. A resumed run appended its rows after those found on resume; this
        makes its file the same as that of a run that never stopped.

        Nothing is written when the rows are in that order already (always so without ``resume``);
        otherwise the file is rewritten atomically and durably (``atomic_write(durable=True)``, under
        the lock): a crash or Ctrl-C in the middle leaves the file as it was, every row in it.
        Returns whether the file was rewritten.
        """
        if self._fd is None:
            raise ValueError("put_in_order() on a closed ResultsWriter")
        wanted = [key for key in dict.fromkeys(keys) if key in self._rows]
        listed = set(wanted)
        order = [key for key in self._rows if key not in listed] + wanted
        if order == list(self._rows):
            return False
        self._rewrite([self._rows[key] for key in order])
        fd, self._fd = self._fd, os.open(self._real, os.O_WRONLY | os.O_APPEND)  # the new file
        os.close(fd)
        self._rows = {key: self._rows[key] for key in order}
        self._size = os.fstat(self._fd).st_size
        self._last_sync = time.monotonic()
        return True

    def close(self) -> None:
        """fsync and close the file, then remove the lock. Safe to call twice."""
        fd, self._fd = self._fd, None
        lock, self._lock = self._lock, None
        try:
            if fd is not None:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        finally:
            if lock is not None:
                lock.release()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close(): do not leave the lock behind
        try:
            self.close()
        except Exception:
            pass
