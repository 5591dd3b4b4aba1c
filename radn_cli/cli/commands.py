"""The command tree: every `radn` command and where it is defined, and the entry point's error policy.

Commands are registered here, in one place, each wrapped in ``handle_errors``; their modules only
define them. Usage errors (a missing argument, an unknown option or value) are one `radn: error:`
line naming the command's --help, with exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from .. import __version__
from ..errors import ExitCode
from . import batch, evaluate, report, score, train, weights
from .console import handle_errors, mark_start, usage_error


class _NamedArgument(TyperArgument):
    """An argument shown by its name in capitals, as a word: `radn score [OPTIONS] REF DIST...` and
    `REF  Reference image.` in the help, not Typer's `{ref} {DIST}...` and `DIST <list[Path]>`."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx) -> None:  # the name says what it is; no `<path>` beside it
        return None


class _Command(TyperCommand):
    """A command whose arguments read as words (``_NamedArgument``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _NamedArgument


app = typer.Typer(
    name="radn",
    help="Perceptual full-reference image quality with RADN: scores, rankings, heatmaps, batches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"radn {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Perceptual full-reference image quality with RADN."""


app.command("score", cls=_Command)(handle_errors(score.score))
app.command("heatmap", cls=_Command)(handle_errors(score.heatmap))
app.command("batch", cls=_Command)(handle_errors(batch.batch))
app.command("report", cls=_Command)(handle_errors(report.report))
app.command("eval", cls=_Command)(handle_errors(evaluate.eval_command))
app.command("train", cls=_Command)(handle_errors(train.train))

weights_app = typer.Typer(help="List, inspect, convert and install model weights.", no_args_is_help=True)
weights_app.command("list", cls=_Command)(handle_errors(weights.weights_list))
weights_app.command("info", cls=_Command)(handle_errors(weights.weights_info))
weights_app.command("convert", cls=_Command)(handle_errors(weights.weights_convert))
weights_app.command("install", cls=_Command)(handle_errors(weights.weights_install))
app.add_typer(weights_app, name="weights")


def _command_in(args: list[str]) -> str:
    """The command named by the leading words of ``args`` (``radn weights info``): for the usage errors
    that Click raises without a context."""
    command = typer.main.get_command(app)
    path = ["radn"]
    for word in args:
        sub = getattr(command, "commands", {}).get(word)
        if word.startswith("-") or sub is None:
            break
        path.append(word)
        command = sub
    return " ".join(path)


def run() -> None:
    """Run the app as the `radn` command: sys.exit with its exit code."""
    from typer._click.exceptions import UsageError as ClickUsageError

    mark_start()  # a progress bar counts the user's wait from the process's start
    try:
        try:
            code = app(standalone_mode=False, prog_name="radn")
        except ClickUsageError as exc:
            if not exc.format_message().strip():  # a group called without a command: its help was shown
                _exit(exc.exit_code)
            usage_error(
                exc.format_message(),
                exc.ctx.command_path if exc.ctx is not None else _command_in(sys.argv[1:]),
            )
            code = int(ExitCode.USAGE)
        _exit(code if isinstance(code, int) else 0)
    except (KeyboardInterrupt, typer.Abort):  # outside a command (inside one, handle_errors deals with it)
        sys.stderr.write("radn: interrupted\n")
        _exit(int(ExitCode.INTERRUPTED))


def _exit(code: int) -> None:
    """Exit with ``code``: the outcome is decided, so a Ctrl-C while the interpreter shuts down
    (joining decoding threads, flushing) can no longer turn it into a traceback or another code."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
