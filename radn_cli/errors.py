"""Typed errors and the exit codes they map to.

Library code raises these; the CLI catches them once, prints ``str(error)`` as one line on stderr
and exits with ``error.exit_code``. Nothing here imports torch, Typer or Rich.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # bad input, missing weights, runtime failure
    USAGE = 2  # wrong arguments (Typer/Click use 2 as well)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM (128 + 15): `kill`, a job scheduler


def first_line(message: object, limit: int | None = None) -> str:
    """The first line of an exception's (or any object's) text, "" when it has none, cut to ``limit``
    characters with "...": error reports and notes stay one line."""
    lines = str(message).strip().splitlines()
    line = lines[0] if lines else ""
    if limit is not None and len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def reason(exc: BaseException, limit: int = 100) -> str:
    """Why something failed, for inside an error message: the exception's first line (at most
    ``limit`` characters), or its type name when it has no message."""
    return first_line(exc, limit) or type(exc).__name__


def describe(exc: BaseException) -> str:
    """An unexpected exception as "Type: first line" (or just "Type")."""
    line = first_line(exc)
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


class RadnError(Exception):
    """Base class: a problem the user can fix, reported in one line without a traceback."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ImageError(RadnError):
    """An image cannot be read or used: missing, corrupt, unsupported, too large or too small."""


class SizeMismatchError(ImageError):
    """Reference and distorted images differ in size."""


class WeightsError(RadnError):
    """Weights are missing, corrupt, or do not fit the model."""


class PairingError(RadnError):
    """Folders or a pairs list cannot be turned into (reference, distorted) pairs."""


class UsageError(RadnError):
    """Arguments that cannot work together (exit code 2)."""

    exit_code = ExitCode.USAGE


class DeviceError(RadnError):
    """The requested device or precision is not available."""
