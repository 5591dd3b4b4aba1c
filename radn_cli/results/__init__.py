"""Crash-safe, resumable CSV output for ``radn batch``.

Guarantees
----------
* **No half rows from a crash.** The file is opened with ``O_APPEND`` and every row is encoded first
  and handed to the kernel in one ``os.write`` call, so a killed process (``kill -9``, Ctrl-C, an
  exception) leaves whole rows only. ``os.fsync`` runs at most every ``fsync_interval`` seconds and
  on :meth:`ResultsWriter.close`, so a power loss costs at most the last few seconds of rows; whatever
  torn bytes it leaves at the end of the file are removed by the next ``resume``.
* **Every key exactly once.** A key is ``(ref, dist, weights, precision, scale)``, the cell strings
  as written (an empty ``scale``, and every row of a file written before that column, is
  ``native``). At every moment the file holds at most one row per key:

  - on ``resume=True`` the existing file is read and, when needed, rewritten *atomically* (temporary
    file in the same folder, ``fsync``, ``os.replace``, ``fsync`` of the folder) without: rows that
    recorded an error (they are retried), a torn last row, unparsable rows, and repeated keys (the
    last successful row of a key is kept). Successful rows are copied cell for cell, so their numbers
    do not change. A crash during the rewrite leaves the old file untouched.
  - :meth:`ResultsWriter.done_keys` gives the keys of the successful rows kept; the batch skips them.
  - :meth:`ResultsWriter.write` refuses (``ValueError``) a second row for a key the file already holds.

  Hence an interrupted-and-resumed run ends with the same set of rows as an uninterrupted one, and
  once it is complete :meth:`ResultsWriter.put_in_order` rewrites the file (atomically, durably,
  under the lock) with the rows in the input order: the same file as an uninterrupted run's. The
  alternative, appending the retried row and leaving the old error row for readers to supersede
  ("take the last row per key"), leaves duplicates in the final CSV and pushes de-duplication onto
  every consumer; rewriting once at resume (and once more at the end) costs a pass over the file.
  :attr:`ResultsWriter.resume_report` says what a resume dropped, for the CLI to log. Consumers can
  rely on one row per key and need no "last row wins" rule. Note: an error row is removed at resume
  even if the resumed batch no longer lists that pair; the batch then writes no row for it.

  The batch's side of the contract: build keys from the same strings it writes (``str(path)``, the
  weights name, the precision name, the scale's text), skip the keys in ``done_keys()``, write each
  remaining key once, and call ``put_in_order`` with its keys when it completes.
* **One writer per output.** See :class:`OutputLock`: ``<output>.lock`` is created with
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

Modules: ``rows`` (columns and row encoding), ``writable`` (``check_writable``), ``lock`` (the output
lock), ``resume`` (reading an existing file), ``writer`` (``ResultsWriter``).
"""

from __future__ import annotations

from .resume import ResumeReport
from .rows import COLUMNS, HEADER_LINE, LEGACY_COLUMNS, Key, encode_row
from .writable import check_writable
from .writer import ResultsWriter

__all__ = [
    "COLUMNS",
    "HEADER_LINE",
    "LEGACY_COLUMNS",
    "Key",
    "ResultsWriter",
    "ResumeReport",
    "check_writable",
    "encode_row",
]
