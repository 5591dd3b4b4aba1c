"""One writer per output: ``OutputLock``, the ``<output>.lock`` file created with ``O_EXCL``, holding
its owner's pid and host, and ``flock``-ed by it (pid liveness where ``flock`` is not available)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ..errors import RadnError

try:
    import fcntl
except ImportError:  # Windows: pid-based locking only
    fcntl = None  # type: ignore[assignment]


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


class OutputLock:
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
