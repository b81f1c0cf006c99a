"""`vtool checkout`: the workspace to its pointers, or code and data to a revision."""

from __future__ import annotations

from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.revisions import split_revisions
from vtool.cli.ui import ui
from vtool.ops.checkout import checkout

ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite or delete data the cache does not hold.")]


@command(app, "checkout")
def checkout_cmd(args: Annotated[list[str] | None, typer.Argument(
                     help="[TARGETS], or REV (code and data), or REV -- TARGETS (roll those datasets back).")] = None,
                 force: ForceOpt = False,
                 verify: Annotated[bool, typer.Option("--verify", help="Re-hash every object used.")] = False,
                 json_out: JsonOpt = False) -> None:
    """Make the workspace match the pointers, or move code and data to a revision."""
    revs, targets = split_revisions(args or [], max_revs=1)
    rev = revs[0] if revs else None
    if rev is None:
        result = checkout(targets, force=force, progress=ui.progress(), verify=verify)
    else:
        from vtool.ops.switch import checkout_rev, rollback  # a revision may need a fetch: the remote layers
        result = (rollback(rev, targets, force=force, progress=ui.progress()) if targets
                  else checkout_rev(rev, force=force, progress=ui.progress()))
    if json_out:
        return ui.json(result)
    if rev is not None:
        ui.info(f"at {rev} ({result.commit[:12]})" + (" - pointers rolled back, ready to commit" if targets else ""))
    for ds in result.datasets:
        ui.info(f"{ds.path}: {ds.written} written, {ds.deleted} deleted, {ds.unchanged} unchanged")
