"""How a long job reports how far it is: the ``Progress`` protocol, and ``SILENT``, which shows nothing.

The library never prints. ``run_batch``, ``evaluate``, ``build_report`` and ``train`` take a
``progress`` and call it; the CLI hands them one that draws a bar on stderr (on a terminal) and prints
each failed item as a one-line error (``cli.console.progress_shown``). A job runs in stages, each a
known number of items: ``start("scoring", 480)``, then ``advance()`` once per item done. An item
that fails without stopping the job (an unreadable image in a batch) is ``failed(message)``, with a
one-line message. Whoever made the progress ends what it shows when the job is over.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int) -> None:
        """A stage of ``total`` items begins (the previous one, if any, is over)."""

    def advance(self) -> None:
        """One item of the stage is done (failed ones too)."""

    def failed(self, message: str) -> None:
        """An item failed; the job goes on. ``message`` is one line that names the item."""


class Silent:
    """A ``Progress`` that shows nothing: the default of every job."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass

    def failed(self, message: str) -> None:
        pass


SILENT: Progress = Silent()
