"""What the CLI says on stderr, and how errors and Ctrl-C end a command.

Owns: the stderr console, one-line notes, warnings and errors (``radn: error: ...``), progress bars
(``progress_shown``: the library's ``Progress`` drawn on stderr; ``WorkProgress`` for a command that
may take a while before its first result), ``handle_errors`` (library errors to one line and an exit
code, a traceback only with ``--verbose``), and ``ctrl_c_deferred`` (Ctrl-C held while PyTorch
loads). Imports no torch.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator

import typer
from rich.console import Console

from ..errors import ExitCode, RadnError, UsageError, first_line

stderr = Console(stderr=True, highlight=False)


def one_line(message: object) -> str:
    """Messages are one line on stderr, whatever a path or an exception text contains."""
    return " ".join(str(message).splitlines())


def say(line: str, *, prefix_style: str | None = None, prefix_len: int = 0) -> None:
    """One line on stderr: plain text when stderr is not a terminal (never wrapped, no markup parsing,
    no escape codes), Rich with a coloured prefix on a terminal."""
    if not stderr.is_terminal:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        return
    from rich.text import Text

    text = Text(line)
    if prefix_style:
        text.stylize(prefix_style, 0, prefix_len)
    stderr.print(text, soft_wrap=True)


def note(message: str) -> None:
    say(one_line(message))


def warn(message: str | None) -> None:
    if message:
        say(
            one_line(f"radn: warning: {message}"),
            prefix_style="bold yellow",
            prefix_len=len("radn: warning:"),
        )


def error(message: str, verbose: bool = False, exception: BaseException | None = None) -> None:
    """``radn: error: message`` on one line; with ``verbose`` the traceback first (of ``exception``,
    else of the exception being handled)."""
    if verbose and exception is not None:
        traceback.print_exception(exception, file=sys.stderr)
    elif verbose:
        traceback.print_exc(file=sys.stderr)
    say(f"radn: error: {one_line(message)}", prefix_style="bold red", prefix_len=len("radn: error:"))


def usage_error(message: str, command: str) -> None:
    """A usage error: one line naming the command's --help."""
    error(f"{message} (try '{command} --help')")


def command_path() -> str:
    """The running command as typed (``radn batch``), from Click's context; "radn" outside one."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "radn"


@contextlib.contextmanager
def ctrl_c_deferred():
    """Hold Ctrl-C while PyTorch loads (imports, weights, model to device), then act on it.

    A KeyboardInterrupt raised inside code that PyTorch's import runs through the C API (pybind11's
    exec) makes CPython remember it as unhandled even after we catch it, and the process then ends
    by the signal itself (exit -2) instead of 130; now and then pybind11 aborts instead (-6).
    Measured with `radn batch` interrupted 0.9-2.1 s after its start: about 1 run in 10. So while
    loading, SIGINT only records itself; once loading is done a recorded Ctrl-C is raised here, in
    our own code, and handled like any other. Main thread only (where Python runs signal handlers).
    A process started with SIGINT ignored (a background job of a shell without job control, `nohup`)
    keeps ignoring it.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def load_torch() -> None:
    """Import PyTorch with Ctrl-C held (see ``ctrl_c_deferred``): commands call this once their
    arguments are checked, before anything that imports torch."""
    with ctrl_c_deferred():
        import torch  # noqa: F401


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's last flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (tests, embedding)
        pass


def handle_errors(func):
    """Turn errors into one line on stderr and an exit code; tracebacks only with --verbose.

    Commands check their arguments before they import PyTorch (through ``ctrl_c_deferred``), so a
    usage error or a missing file is reported at once.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = bool(kwargs.get("verbose")) or bool(os.environ.get("RADN_VERBOSE"))
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # the reader of stdout went away (`radn score ... | head -1`): stop quietly
            silence_stdout()
            raise typer.Exit(int(ExitCode.ERROR)) from None
        except UsageError as exc:
            if verbose:
                traceback.print_exc(file=sys.stderr)
            usage_error(str(exc), command_path())
            raise typer.Exit(int(exc.exit_code)) from None
        except RadnError as exc:
            error(str(exc), verbose)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            error("interrupted", verbose)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except MemoryError:
            error("out of memory; try a smaller --batch-size", verbose)
            raise typer.Exit(int(ExitCode.ERROR)) from None
        except Exception as exc:  # the last line of defence: never a bare traceback
            message = first_line(exc)
            if "out of memory" in message.lower():
                error("out of memory on the device; try a smaller --batch-size", verbose)
            else:
                error(f"unexpected {type(exc).__name__}: {message} (run with --verbose for details)", verbose)
            raise typer.Exit(int(ExitCode.ERROR)) from None

    return wrapper


class ProgressBar:
    """A Rich progress bar on stderr (only on a terminal: see ``progress_bar``)."""

    def __init__(self, total: int, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr
        )
        self.task = self.bar.add_task(label, total=total)
        self.bar.start()

    def advance(self) -> None:
        self.bar.advance(self.task)

    def stop(self) -> None:
        self.bar.stop()


def progress_bar(total: int, label: str) -> ProgressBar | None:
    return ProgressBar(total, label) if stderr.is_terminal and total else None


class ShownProgress:
    """The CLI's ``radn_cli.progress.Progress``: a bar per stage on a terminal, each failed item as a
    `radn: error:` line."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None

    def start(self, label: str, total: int) -> None:
        self.stop()
        self.bar = progress_bar(total, label)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance()

    def failed(self, message: str) -> None:
        error(message)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextlib.contextmanager
def progress_shown() -> Iterator[ShownProgress]:
    """A ``ShownProgress`` for a job, its last bar stopped when the job ends (Ctrl-C too)."""
    shown = ShownProgress()
    try:
        yield shown
    finally:
        shown.stop()


PROGRESS_AFTER = 2.0
"""Seconds the user has waited before ``WorkProgress`` shows its bar: work done sooner shows none."""

_waiting_since: float | None = None  # time.monotonic() when the `radn` process started (see mark_start)


def mark_start() -> None:
    """Count the user's wait from the start of this process (the `radn` entry point calls this): the
    interpreter and the CLI's imports take a while before any command runs. Linux tells the process's
    age (/proc); elsewhere the wait counts from now."""
    global _waiting_since
    age = 0.0
    try:
        with open("/proc/self/stat", "rb") as stat, open("/proc/uptime", "rb") as uptime:
            started = int(stat.read().rsplit(b")", 1)[1].split()[19])  # field 22: clock ticks after boot
            age = float(uptime.read().split()[0]) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    _waiting_since = time.monotonic() - min(max(age, 0.0), 60.0)  # a minute at most: not a stray value


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class WorkProgress:
    """A progress bar on stderr for a command that may keep the user waiting (`radn score` of large
    images): what is done of the total, the time elapsed and the time left.

    It shows only when ``enabled`` (no ``-q``) and stderr is a terminal that can redraw a line (not
    TERM=dumb), and only once the user has waited ``PROGRESS_AFTER`` seconds (since ``radn``
    started, see ``mark_start``, or else since the command did), so quick work shows nothing; it is
    erased when it closes. Until ``begin`` gives the work's total (after the model has loaded) it
    shows the stage and the time elapsed. Writes to stdout go in ``paused()``: on a terminal the bar
    is erased while they are written, so that results and the bar never mix. It appears from a timer
    thread; its methods may be called from any thread.
    """

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.active = enabled and stderr.is_terminal and stderr.is_interactive
        self.label, self.unit = label, ""
        self.total: int | None = None
        self.done = 0
        self.begun = time.monotonic()
        self.started = _waiting_since if _waiting_since is not None else self.begun
        self._lock = threading.RLock()
        self._bar = None
        self._task = None
        self._closed = False
        self._timer = None
        if self.active:
            self._timer = threading.Timer(max(0.0, PROGRESS_AFTER - (self.begun - self.started)), self._show)
            self._timer.daemon = True
            self._timer.start()

    def __enter__(self) -> WorkProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def begin(self, label: str, total: int, unit: str = "") -> None:
        """The work proper starts: ``total`` steps (of ``unit``), none done; the time left is
        estimated from the rate since now."""
        with self._lock:
            self.label, self.total, self.unit, self.done = label, max(0, int(total)), unit, 0
            self.begun = time.monotonic()
            if self._bar is not None:
                self._bar.update(self._task, description=label, total=self.total, completed=0)

    def update(self, done: int) -> None:
        """``done`` steps are done (never fewer than before, never more than the total)."""
        with self._lock:
            done = max(self.done, int(done))
            self.done = done if self.total is None else min(done, self.total)
            if self._bar is not None:
                self._bar.update(self._task, completed=self.done)

    def describe(self) -> str:
        """What the bar says beside it: ``256/3072 patches  0:12 elapsed, about 2:10 left``."""
        now = time.monotonic()
        elapsed = f"{_clock(now - self.started)} elapsed"
        if self.total is None:
            return elapsed
        count = f"{self.done}/{self.total}{f' {self.unit}' if self.unit else ''}"
        if not self.done or self.done >= self.total:
            return f"{count}  {elapsed}"
        left = (now - self.begun) * (self.total - self.done) / self.done
        return f"{count}  {elapsed}, about {_clock(left + 0.5)} left"

    @contextlib.contextmanager
    def paused(self):
        """Erase the bar while the block writes to stdout, when stdout is a terminal too."""
        with self._lock:
            shown = self._bar is not None and _is_tty(sys.stdout)
            if shown:
                self._hide()
            try:
                yield
            finally:
                if shown and not self._closed:
                    self._show()

    def close(self) -> None:
        """Stop: the bar is erased (if it was shown) and will not show."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            self._hide()

    def _show(self) -> None:
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        work = self

        class Described(ProgressColumn):
            def render(self, task) -> Text:
                return Text(work.describe())

        with self._lock:
            if self._closed or self._bar is not None:
                return
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                Described(),
                console=stderr,
                transient=True,
                redirect_stdout=False,  # results go to stdout themselves, never through the bar
            )
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done)
            self._bar.live.start(refresh=True)  # Progress.start/stop, less a blank line in some cases

    def _hide(self) -> None:
        if self._bar is not None:
            self._bar.live.stop()
            self._bar = None


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
