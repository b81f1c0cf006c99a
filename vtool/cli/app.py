"""The typer app, global options, and THE error boundary that turns errors into one line and an exit code."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Annotated

import typer

from vtool import __version__
from vtool.cli.ui import ui
from vtool.errors import EXIT_FAILURE, EXIT_INTERRUPTED, VtoolError

app = typer.Typer(
    name="vtool",
    help="Version data next to code: pointer files in git, content in a cache and S3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"vtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    """Version data next to code."""


# Which module registers each command: a run imports only the one it needs (startup time is
# part of every command's latency); help and unknown names import them all.
COMMAND_MODULES = {
    "init": "setup", "config": "setup",
    "add": "data", "status": "data", "checkout": "data",
    "remote": "remotes", "push": "remotes", "fetch": "remotes", "pull": "remotes",
    "diff": "history", "log": "history", "ls": "history",
    "gc": "maintenance", "verify": "maintenance",
    "install-hooks": "hooks", "git-hook": "hooks",
}


def _register(argv: list[str]) -> None:
    """Import the command module the command line names, or every one of them."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    names = [COMMAND_MODULES[first]] if first in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    for name in names:
        importlib.import_module(f"vtool.cli.{name}")


def main() -> None:
    """Run the CLI; known errors become one red line and their exit code, never a traceback."""
    _register(sys.argv[1:])
    try:
        app()  # standalone: typer prints usage errors itself and exits 2
    except VtoolError as exc:
        _fail(exc, exc.exit_code)
    except KeyboardInterrupt:
        ui.err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILURE)
    except OSError as exc:
        _fail(exc, EXIT_FAILURE)


def _fail(exc: BaseException, code: int) -> None:
    if ui.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    ui.error(exc)
    sys.exit(code)
