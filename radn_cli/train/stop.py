"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (`kill`, a job scheduler's preemption).

While :class:`StopRequests` is active, the first such signal only records itself: the loop finishes
the step it is in, writes the checkpoint and OUT/last.safetensors, and raises :class:`TrainingStopped`
(exit 130 or 143), so `radn train --resume` continues exactly where the run stopped and no finished
step is lost. A second signal stops at once (KeyboardInterrupt for Ctrl-C, TrainingStopped with exit
143 for SIGTERM; the last periodic checkpoint stays). Only the loop is covered: a signal during the
set-up or the final validation and export acts as usual (the last step's checkpoint is written by then).
Main thread only (where Python runs signal handlers); a SIGINT that the process was started ignoring
(a background job of a shell without job control) stays ignored.
"""

from __future__ import annotations

import signal
import threading

from ..errors import ExitCode, RadnError


class TrainingStopped(RadnError):
    """The run stopped on a signal after saving its checkpoint and exporting its last weights."""

    def __init__(self, message: str, signum: int, step: int | None) -> None:
        super().__init__(message)
        self.signum, self.step = signum, step
        self.exit_code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


class StopRequests:
    """A context manager that turns SIGINT/SIGTERM into a request the training loop polls (``signum``)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _record(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
            return
        if signum == signal.SIGINT:  # asked twice: stop now
            raise KeyboardInterrupt
        raise TrainingStopped(
            "stopped at once by a second SIGTERM; the last periodic checkpoint stays (`--resume`)",
            signum,
            None,
        )
