"""`vtool status`, on its own so the most frequent no-op command imports nothing the others need."""

from __future__ import annotations

from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, TargetsArg, command
from vtool.cli.render import render_remote_status, render_status
from vtool.cli.ui import ui
from vtool.ops.status import status


@command(app, "status")
def status_cmd(targets: TargetsArg = None, json_out: JsonOpt = False,
               check: Annotated[bool, typer.Option("--check", help="Exit 1 if anything is out of sync.")] = False,
               remote: Annotated[bool, typer.Option("--remote", help="Compare with the default remote.")] = False,
               remote_name: Annotated[str | None, typer.Option("-r", "--remote-name", help="Compare with this remote.")]
               = None) -> None:
    """Show which datasets differ from their pointers (or, with --remote / -r NAME, what is not pushed)."""
    if remote or remote_name:
        from vtool.ops.sync import SyncOptions, remote_status  # the remote layers only when a remote is asked for

        result = remote_status(SyncOptions(remote=remote_name, targets=targets or []), ui.progress())
        ui.json(result) if json_out else render_remote_status(result)
    else:
        result = status(targets or [], progress=ui.progress(), every_path=json_out)
        ui.json(result) if json_out else render_status(result)
    if check and not result.in_sync:
        raise typer.Exit(1)
