"""The `radn` command line: parse, call the library, print. Data on stdout, everything for humans on
stderr.

Modules: ``commands`` (the command tree and the entry point), ``console`` (stderr, one-line errors,
Ctrl-C, progress), ``options`` (options shared by commands), ``inputs`` (checking inputs and
loading the model, cheapest first), and one module per command group: ``score`` (score, heatmap),
``batch``, ``evaluate`` (eval), ``train``, ``weights``.

Nothing heavy is imported until a command has checked its arguments, so `radn --help`, a usage
error or a missing file are answered at once. ``main`` imports the app inside its own Ctrl-C guard:
an interrupt while the CLI starts exits 130 like any other.
"""

from __future__ import annotations

import sys


def main() -> None:
    """The `radn` entry point."""
    try:
        from .commands import run
    except KeyboardInterrupt:  # Ctrl-C while the CLI's modules load
        sys.stderr.write("radn: interrupted\n")
        sys.exit(130)
    run()


def __getattr__(name: str):
    if name == "app":  # `from radn_cli.cli import app` (tests, Typer's tooling)
        from .commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
