"""Crash-safe, resumable CSV output for ``radn batch``.

Guarantees
----------
* **No half rows from a crash.** The file is opened with ``O_APPEND`` and every row is encoded first
  and handed to the kernel in one ``os.write`` call, so a killed process (``kill -9``, Ctrl-C, an
  exception) leaves whole rows only. ``os.fsync`` runs at most every ``fsync_interval`` seconds and
  on :meth:`ResultsWriter.close`, so a power loss costs at most the last few seconds of rows; whatever
  torn bytes it leaves at the end of the file are removed by the next ``resume``.
* **Every key exactly once.** A key is ``(ref, dist, weights, precision)``, the cell strings as
  written. At every moment the file holds at most one row per key:

  - on ``resume=True`` the existing file is read and, when needed, rewritten *atomically* (temporary
    file in the same folder, ``fsync``, ``os.replace``, ``fsync`` of the folder) without: rows that
    recorded an error (they are retried), a torn last row, unparsable rows, and repeated keys (the
    last successful row of a key is kept). Successful rows are copied cell for cell, so their numbers
    do not change. A crash during the rewrite leaves the old file untouched.
  - :meth:`ResultsWriter.done_keys` gives the keys of the successful rows kept; the batch skips them.
  - :meth:`ResultsWriter.write` refuses (``ValueError``) a second row for a key the file already holds.

  Hence an interrupted-and-resumed run ends with the same set of rows as an uninterrupted one (rows
  in another order). The alternative, appending the retried row and leaving the old error row for
  readers to supersede ("take the last row per key"), leaves duplicates in the final CSV and pushes
  de-duplication onto every consumer; rewriting once at resume costs one pass over the file.
  :attr:`ResultsWriter.resume_report` says what a resume dropped, for the CLI to log. Consumers can
  rely on one row per key and need no "last row wins" rule. Note: an error row is removed at resume
  even if the resumed batch no longer lists that pair; the batch then writes no row for it.

  The batch's side of the contract: build keys from the same strings it writes (``str(path)``, the
  weights name, the precision name), skip the keys in ``done_keys()``, write each remaining key once.
* **One writer per output.** See :class:`_OutputLock`: ``<output>.lock`` is created with
  ``O_CREAT | O_EXCL`` and holds the pid and host of its owner, and the owner holds an
  ``fcntl.flock`` on it. The flock is authoritative: the kernel drops it when the process dies in any
  way, so a lock file left by ``kill -9`` is simply taken over. Where ``flock`` is not available the
  pid and host decide: a lock whose pid is no longer alive on this host is stale and taken over.
  A lock file naming another host is never taken over automatically. The lock is removed by
  ``close()`` (also on exceptions and Ctrl-C, through the context manager), but not by a forked child
  that closes an inherited writer.

Format: UTF-8 (file names that are not valid UTF-8 are written byte for byte, via
``surrogateescape``), ``\\n`` line ends, quoting by the :mod:`csv` module (a row with a carriage return
in a cell has all its cells quoted, so it reads back intact). Floats are written with ``repr``, the
shortest text that reads back as the same float; NUL characters in cells are replaced by U+FFFD.
"""

from __future__ import annotations

import csv
import io
import numbers
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .errors import RadnError, UsageError

try:
    import fcntl
except ImportError:  # Windows: pid-based locking only
    fcntl = None  # type: ignore[assignment]

COLUMNS = ("ref", "dist", "score", "patches", "width", "height", "weights", "precision", "error")
HEADER_LINE = ",".join(COLUMNS) + "\n"
Key = tuple[str, str, str, str]

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
_REF, _DIST, _WEIGHTS, _PRECISION, _ERROR = (
    COLUMNS.index(column) for column in ("ref", "dist", "weights", "precision", "error")
)


def _key(cells: list[str]) -> Key:
    return cells[_REF], cells[_DIST], cells[_WEIGHTS], cells[_PRECISION]


def _cell(value: object) -> str:
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        value = value.item()  # a 0-d numpy array or torch tensor: its Python number
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = str(value)
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        text = repr(float(value))  # shortest round-trip text; also for numpy floats
    elif isinstance(value, os.PathLike):
        text = os.fsdecode(os.fspath(value))
    else:
        text = str(value)
    return text.replace("\x00", "\ufffd")


def encode_row(cells: list[str]) -> bytes:
    """One CSV line (with its ``\\n``) as bytes."""
    buffer = io.StringIO()
    # The csv module quotes cells with "\n" but not with "\r" when the line end is "\n"; quote the
    # whole row then, so that readers do not take the "\r" for a line end.
    quoting = csv.QUOTE_ALL if any("\r" in cell for cell in cells) else csv.QUOTE_MINIMAL
    csv.writer(buffer, lineterminator="\n", quoting=quoting).writerow(cells)
    return buffer.getvalue().encode(_ENCODING, _ERRORS)


# ----------------------------------------------------------------------------------------------------
# Checks before any work


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


# ----------------------------------------------------------------------------------------------------
# Lock


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists, owned by someone else
        return True
    return True


class _OutputLock:
    """``<output>.lock``: an ``O_EXCL``-created file with ``"<pid>\\n<host>\\n"``, flock-ed by its owner.

    Acquire: create the file with ``O_CREAT | O_EXCL`` (or open the existing one), then
    ``flock(LOCK_EX | LOCK_NB)``. Failing the flock means a live owner: refuse, naming its pid. Getting
    it means nobody alive holds the lock, even if the file existed (its owner was killed): take over,
    after checking that the file locked is still the one at the path (a closing owner unlinks it while
    still holding the flock, so a stale open is detected and retried). Release: unlink, then close.
    Without flock support (Windows, some network file systems), fall back to pid liveness.
    """

    def __init__(self, output: Path, display: Path) -> None:
        self.path = Path(f"{output}.lock")
        self.display = display
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.fd: int | None = None

    def _owner_bytes(self) -> bytes:
        return f"{self.pid}\n{self.host}\n".encode()

    def _write_owner(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, self._owner_bytes())

    @staticmethod
    def _read_owner(fd: int) -> tuple[int | None, str]:
        for _attempt in range(3):  # the owner may not have written its pid yet
            os.lseek(fd, 0, os.SEEK_SET)
            lines = os.read(fd, 4096).decode("utf-8", "replace").splitlines()
            if lines:
                try:
                    pid = int(lines[0])
                except ValueError:
                    pid = None
                return pid, lines[1].strip() if len(lines) > 1 else ""
            time.sleep(0.02)
        return None, ""

    def _busy(self, pid: int | None, host: str) -> RadnError:
        who = "pid unknown" if pid is None else f"pid {pid}"
        if host and host != self.host:
            who += f" on host {host}"
        return RadnError(
            f"{self.display} is being written by another radn process ({who}); "
            f"wait for it to finish or stop it (lock file {self.path})"
        )

    def _still_ours(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def acquire(self) -> None:
        for attempt in range(50):
            created = False
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                created = True
            except FileExistsError:
                try:
                    fd = os.open(self.path, os.O_RDWR)
                except FileNotFoundError:
                    continue  # released in between: try again
            except OSError as error:
                raise RadnError(
                    f"cannot create the lock file ({error.strerror or error})", self.path
                ) from None
            try:
                if created:
                    self._write_owner(fd)  # before locking, so that a refused process can name us
                if self._lock(fd, created):
                    self.fd = fd
                    return
            except BaseException:
                # Leave the file: another process may have locked it meanwhile, and an unlocked
                # leftover is taken over by the next writer anyway.
                os.close(fd)
                raise
            os.close(fd)
            time.sleep(0.001 * attempt)
        raise RadnError("could not take the lock file (it keeps changing); try again", self.path)

    def _lock(self, fd: int, created: bool) -> bool:
        """True: locked and owned. False: the file changed under us, retry. Raises when busy."""
        flocked = False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except BlockingIOError:
                raise self._busy(*self._read_owner(fd)) from None
            except OSError:  # ENOLCK, EOPNOTSUPP: no flock on this file system
                flocked = False
        if flocked:
            if not self._still_ours(fd):
                return False
            if not created:
                pid, host = self._read_owner(fd)
                if host and host != self.host:
                    # flock may not reach across hosts (some network file systems): do not guess
                    raise RadnError(
                        f"{self.display} is locked by a radn process on host {host} (pid {pid}); if none "
                        f"is running there, delete {self.path}"
                    )
                self._write_owner(fd)  # its owner died without removing it: take over
            return True
        if created:
            return True
        pid, host = self._read_owner(fd)
        if host == self.host and pid is not None and not _pid_alive(pid):
            try:  # stale: remove and race for O_EXCL again
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            return False
        raise self._busy(pid, host)

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            # a forked child that inherited the writer must not remove its parent's lock
            if os.getpid() == self.pid and self._still_ours(fd):
                os.unlink(self.path)  # while still holding the flock; see acquire()
        except OSError:
            pass
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------------------------------
# Reading an existing results file


@dataclass(frozen=True)
class ResumeReport:
    """What ``resume=True`` found in the existing file and what it removed."""

    kept_rows: int  # successful rows kept (their keys are done_keys())
    dropped_error_rows: int  # rows that recorded an error: removed, to be retried
    dropped_duplicate_rows: int  # older rows of a key that has a later successful row
    dropped_invalid_rows: int  # unparsable rows (wrong number of cells, NUL bytes) before the end
    dropped_tail_bytes: int  # torn bytes at the end (power loss, a killed foreign writer)
    rewritten: bool  # the file was rewritten (atomically) to remove the above


def _split_records(text: str) -> list[tuple[str, int, bool]]:
    """CSV records as (text, first line number, ends with a line end).

    A line end ends a record when the number of double quotes so far in the record is even (quotes
    in CSV come in pairs: around a cell and doubled inside it).
    """
    records = []
    start = pos = quotes = 0
    line = first = 1
    while True:
        newline = text.find("\n", pos)
        if newline < 0:
            if start < len(text):
                records.append((text[start:], first, False))
            return records
        quotes += text.count('"', pos, newline)
        pos = newline + 1
        line += 1
        if quotes % 2 == 0:
            records.append((text[start:pos], first, True))
            start, quotes, first = pos, 0, line


def _parse_record(record: str) -> list[str] | None:
    """The cells of one complete record, or None when it is not a valid results row."""
    if "\x00" in record:
        return None
    try:
        rows = list(csv.reader(io.StringIO(record, newline=""), strict=True))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) != len(COLUMNS):
        return None
    return rows[0]


def _is_blank(record: str) -> bool:
    return not record.strip()


def _read_existing(data: bytes, display: Path) -> tuple[dict[Key, list[str]], ResumeReport]:
    """Successful rows by key (last one wins, first position kept) and what was dropped."""
    text = data.decode(_ENCODING, _ERRORS)
    rewrite = False
    if text.startswith("\ufeff"):
        text, rewrite = text[1:], True
    if HEADER_LINE.startswith(text):  # empty, or a header torn by a crash: start over
        return {}, ResumeReport(0, 0, 0, 0, len(text.encode(_ENCODING, _ERRORS)), rewritten=True)

    records = _split_records(text)
    header_index = next((i for i, (record, _, _) in enumerate(records) if not _is_blank(record)), None)
    if header_index is None:  # blank lines only
        return {}, ResumeReport(0, 0, 0, 0, len(text.encode(_ENCODING, _ERRORS)), rewritten=True)
    header_text, header_line, terminated = records[header_index]
    if _parse_record(header_text) != list(COLUMNS) or not terminated:
        found = header_text.strip()
        found = found if len(found) <= 80 else found[:77] + "..."
        raise RadnError(
            f"line {header_line}: not a radn results file (header {found!r}, expected "
            f"{','.join(COLUMNS)!r}); use --overwrite to replace it or choose another output",
            display,
        )
    rewrite = rewrite or header_index > 0 or header_text != HEADER_LINE

    body = records[header_index + 1 :]
    parsed = [None if not ok else _parse_record(record) for record, _, ok in body]
    # the torn tail: trailing records that are not valid rows
    end = len(body)
    while end > 0 and parsed[end - 1] is None and not _is_blank(body[end - 1][0]):
        end -= 1
    tail_bytes = sum(len(record.encode(_ENCODING, _ERRORS)) for record, _, _ in body[end:])

    kept: dict[Key, list[str]] = {}
    errors = duplicates = invalid = 0
    for (record, _, _), cells in zip(body[:end], parsed[:end], strict=True):
        if cells is None:
            if _is_blank(record):
                rewrite = True
            else:
                invalid += 1
            continue
        if record != encode_row(cells).decode(_ENCODING, _ERRORS):
            rewrite = True  # e.g. "\r\n" line ends: normalize
        if cells[_ERROR]:
            errors += 1
            continue
        key = _key(cells)
        if key in kept:
            duplicates += 1
        kept[key] = cells
    rewrite = rewrite or bool(errors or duplicates or invalid or tail_bytes)
    return kept, ResumeReport(len(kept), errors, duplicates, invalid, tail_bytes, rewritten=rewrite)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)  # a regular file takes it all in one call unless the disk is full
        view = view[written:]


# ----------------------------------------------------------------------------------------------------
# Writer


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
        self._lock: _OutputLock | None = None
        if resume and overwrite:
            raise UsageError("--resume and --overwrite cannot be used together")
        if fsync_interval < 0:
            raise ValueError("fsync_interval must be >= 0")
        self.path = Path(path)
        self.fsync_interval = float(fsync_interval)
        self.resume_report: ResumeReport | None = None
        self._done: set[Key] = set()
        self._present: set[Key] = set()
        check_writable(self.path)
        self._real = Path(os.path.realpath(self.path))
        lock = _OutputLock(self._real, display=self.path)
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
            kept, report = _read_existing(existing, self.path)
            self.resume_report = report
            self._done = set(kept)
            self._present = set(kept)
            if report.rewritten:
                self._rewrite(list(kept.values()))
            self._fd = os.open(self._real, os.O_WRONLY | os.O_APPEND)
            return
        if resume:
            self.resume_report = ResumeReport(0, 0, 0, 0, 0, rewritten=False)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if existing else 0)
        self._fd = os.open(self._real, flags, 0o666)
        _write_all(self._fd, HEADER_LINE.encode(_ENCODING))
        os.fsync(self._fd)
        _fsync_dir(self._real.parent)

    def _rewrite(self, rows: list[list[str]]) -> None:
        """Replace the file by header + rows, atomically: temporary file, fsync, rename, fsync folder."""
        temporary = self._real.with_name(self._real.name + ".tmp")  # protected by the lock
        mode = os.stat(self._real).st_mode & 0o7777
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            chunks = [HEADER_LINE.encode(_ENCODING)] + [encode_row(cells) for cells in rows]
            _write_all(fd, b"".join(chunks))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temporary)
            raise
        os.close(fd)
        os.replace(temporary, self._real)
        _fsync_dir(self._real.parent)

    # -- API -----------------------------------------------------------------------------------------

    def done_keys(self) -> set[Key]:
        """(ref, dist, weights, precision) of the successful rows found on resume (empty otherwise)."""
        return set(self._done)

    def write(self, row: Mapping[str, object]) -> None:
        """Append one row (missing columns are empty) with a single ``os.write``.

        Raises:
            ValueError: closed writer, unknown column, no ref or dist, or a key the file already holds.
            RadnError: the row could not be written (disk full, I/O error); the file is left without it.
        """
        if self._fd is None:
            raise ValueError("write() on a closed ResultsWriter")
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {', '.join(sorted(map(str, unknown)))}")
        cells = [_cell(row.get(column)) for column in COLUMNS]
        if not cells[_REF] or not cells[_DIST]:
            raise ValueError("a results row needs 'ref' and 'dist'")
        key = _key(cells)
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
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval:
            os.fsync(self._fd)
            self._last_sync = now

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
