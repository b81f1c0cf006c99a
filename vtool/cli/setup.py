"""Commands that set a project up: init and config."""

from __future__ import annotations

from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import command
from vtool.cli.ui import ui
from vtool.ops.init import init
from vtool.ops.settings import config_value


@command(app, "init")
def init_cmd() -> None:
    """Set up .vtool/ in the current git repository (idempotent)."""
    result = init()
    state = "Initialised" if result.created else "Already initialised"
    ui.info(f"{state} vtool in {result.root}")
    if result.created:
        ui.info("Next: vtool add <data>, then git add .vtool and commit")


@command(app, "config")
def config_cmd(
    key: Annotated[str, typer.Argument(help="cache.dir, cache.link, core.jobs or core.remote.")],
    value: Annotated[str | None, typer.Argument(help="New value; omit to print the current one.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Write to the ignored config.local.yaml.")] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the setting.")] = False,
) -> None:
    """Read or write a setting."""
    result = config_value(key, value, local=local, unset=unset)
    if value is None and not unset:
        if result.value is None:
            raise typer.Exit(1)
        ui.print(result.value)
