"""`vtool install-hooks`, and the hidden `vtool git-hook NAME` commands the installed hooks run."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.ui import ui
from vtool.ops.hooks import CHAINED, install_hooks
from vtool.ops.precommit import pre_commit
from vtool.ops.switch import post_checkout
from vtool.ops.sync import pre_push

git_hook_app = typer.Typer(help="Run the work of one git hook (called by the hooks install-hooks writes).",
                           no_args_is_help=True)
app.add_typer(git_hook_app, name="git-hook", hidden=True)

HookArg = Annotated[str, typer.Argument()]


@command(app, "install-hooks")
def install_hooks_cmd(json_out: JsonOpt = False) -> None:
    """Install git hooks: post-checkout syncs data, pre-push pushes it, pre-commit refuses stale pointers."""
    result = install_hooks()
    if json_out:
        return ui.json(result)
    for hook in result.hooks:
        ui.info(f"{hook.action} {hook.path}")
        if hook.action == CHAINED:
            ui.info(f"    the hook that was there now runs first, from {hook.previous}")


@command(git_hook_app, "post-checkout")
def post_checkout_cmd(prev: HookArg, new: HookArg, flag: HookArg) -> None:
    """Give the workspace the data of the commit git just checked out."""
    result = post_checkout(prev, new, flag, ui.progress())
    written = sum(d.written + d.deleted for d in result.datasets)
    if written or result.fetched:
        ui.info(f"vtool: data updated ({result.fetched} object(s) fetched, {written} file(s) written or deleted)")


@command(git_hook_app, "pre-push")
def pre_push_cmd(git_remote: HookArg, url: HookArg) -> None:
    """Push the data of the commits git is pushing (ref lines on stdin)."""
    result = pre_push(git_remote, sys.stdin.read().splitlines(), ui.progress())
    if result.transferred:
        ui.info(f"vtool: pushed {result.transferred} object(s), {result.nbytes} bytes, to remote {result.remote}")


@command(git_hook_app, "pre-commit")
def pre_commit_cmd() -> None:
    """Refuse the commit if a staged pointer does not match its data in the workspace."""
    pre_commit(ui.progress())
