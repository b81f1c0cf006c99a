"""The typer app, global options, and THE error boundary that turns errors into one line and an exit code."""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import Annotated, NamedTuple

import typer
from typer import _click as click
from typer._click.exceptions import UsageError
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

from vtool import __version__
from vtool.cli.ui import ui
from vtool.errors import EXIT_FAILURE, EXIT_INTERRUPTED, VtoolError

# Every command, in the order `vtool --help` lists them: the module that registers it, its one-line
# help (the first line of its docstring; tests keep the two equal) and its help panel. A run imports
# only the module of the command it names and `--help` reads this table alone, so start-up time, part
# of every command's latency, does not grow with the number of commands. A new command adds a row.
START, TRACK, HISTORY, MAINTENANCE = "Start", "Track and sync", "History", "Maintenance"
QUALITY = "Quality gates"
PIPELINES = "Pipelines and lineage"


class Spec(NamedTuple):
    """Where a command lives and how `vtool --help` shows it (a named tuple: a dataclass is 1-2 ms of start-up)."""

    module: str
    summary: str
    panel: str
    hidden: bool = False


COMMANDS = {
    "init": Spec("setup", "Set up .vtool/ in the current git repository (idempotent).", START),
    "config": Spec("setup", "Read or write a setting.", START),
    "add": Spec("add", "Track files or folders: hash, cache, write PATH.vtool, ignore PATH in git.", TRACK),
    "rm": Spec("move", "Stop tracking datasets: remove the pointer and its ignore line; the data stays.", TRACK),
    "mv": Spec("move", "Move a tracked path: data, pointer and ignore lines in one step, like git mv.", TRACK),
    "status": Spec("status", "Show which datasets differ from their pointers (or, with --remote / -r NAME, what is "
                   "not pushed).", TRACK),
    "checkout": Spec("data", "Make the workspace match the pointers, or move code and data to a revision.", TRACK),
    "push": Spec("remotes", "Upload the objects the remote lacks (files first, then their manifests).", TRACK),
    "fetch": Spec("remotes", "Download missing objects into the cache, each verified before it is kept.", TRACK),
    "pull": Spec("remotes", "Fetch, then check out: the workspace matches the pointers, byte for byte.", TRACK),
    "remote": Spec("remotes", "Manage remotes (where objects are pushed).", TRACK),
    "diff": Spec("history", "Show which files of which datasets changed between two revisions, or a revision and "
                 "the workspace.", HISTORY),
    "log": Spec("history", "Show the commits that changed each dataset, and what changed.", HISTORY),
    "ls": Spec("history", "List the files of datasets at a revision (default: the workspace pointers).", HISTORY),
    "validate": Spec("quality", "Check the data against the checks in vtool.yaml (schema, rows, freshness, license, "
                     "pii, hash).", QUALITY),
    "stage": Spec("pipeline", "Declare pipeline stages in vtool.yaml and list them.", PIPELINES),
    "repro": Spec("pipeline", "Run stale stages in dependency order; add outputs, write vtool.lock and a run record.",
                  PIPELINES),
    "lineage": Spec("pipeline", "Show what an output was made from, or with --down every output in history that "
                    "used a dataset.", PIPELINES),
    "check-repro": Spec("pipeline", "Judge whether each output is reproducible: data, code and environment as "
                        "recorded; exit 1 if not.", PIPELINES),
    "gc": Spec("maintenance", "Remove objects nothing kept reaches (kept: workspace, branch and tag tips); a dry run "
                "unless --yes.", MAINTENANCE),
    "verify": Spec("verify", "Re-hash every object the targets reach in the cache (or -r remote) and their "
                   "workspace files.", MAINTENANCE),
    "install-hooks": Spec("hooks", "Install git hooks: post-checkout syncs data, pre-push pushes it, pre-commit "
                          "refuses stale pointers.", MAINTENANCE),
    "git-hook": Spec("hooks", "Run the work of one git hook (called by the hooks install-hooks writes).",
                     MAINTENANCE, hidden=True),
}


class LazyGroup(TyperGroup):
    """The root command: builds a command (and imports its module) only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """List every command in table order without importing any of them."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the named command, importing the one module that registers it on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = _load(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands under their panels from the table alone (no command module is imported)."""
        shown = [(name, spec) for name, spec in COMMANDS.items() if not spec.hidden]
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        for panel in dict.fromkeys(spec.panel for _, spec in shown):
            with formatter.section(panel):
                formatter.write_dl([(name, make_default_short_help(spec.summary, limit))
                                    for name, spec in shown if spec.panel == panel])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        """Resolve a command name, suggesting the nearest known names for a typo."""
        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as exc:
            matches = difflib.get_close_matches(args[0], [n for n, s in COMMANDS.items() if not s.hidden])
            if matches:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"
            raise


def _load(name: str) -> click.Command:
    """Import the module that registers a command and build just that command with typer."""
    importlib.import_module(f"vtool.cli.{COMMANDS[name].module}")
    for info in app.registered_commands:
        if info.name == name:
            return typer.main.get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                                    rich_markup_mode=app.rich_markup_mode)
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(group, pretty_exceptions_short=app.pretty_exceptions_short,
                                                  rich_markup_mode=app.rich_markup_mode,
                                                  suggest_commands=app.suggest_commands)
    raise AssertionError(f"vtool.cli.{COMMANDS[name].module} does not register the command {name!r}")


app = typer.Typer(
    name="vtool",
    help="Version data next to code: pointer files in git, content in a cache and S3.",
    cls=LazyGroup,
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


def main() -> None:
    """Run the CLI; known errors become one red line and their exit code, never a traceback."""
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
        ui.traceback(exc)
    ui.error(exc)
    sys.exit(code)
