"""`vtool rm` and `vtool mv`: stop tracking a dataset, or move one, and say what to run in git."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.ui import ui
from vtool.ops.move import GitUpdate, move, remove


@command(app, "rm")
def rm_cmd(targets: Annotated[list[str], typer.Argument(help="Tracked paths or their .vtool files.")],
           json_out: JsonOpt = False) -> None:
    """Stop tracking datasets: remove the pointer and its ignore line; the data stays."""
    result = remove(targets, ui.progress())
    if json_out:
        return ui.json(result)
    for path in result.removed:
        ui.info(f"stopped tracking {path} (the data stays in the workspace and the cache)")
    _git_hint(result.git)


@command(app, "mv")
def mv_cmd(src: Annotated[str, typer.Argument(help="A tracked path or its .vtool file.")],
           dst: Annotated[str, typer.Argument(help="The new path, or an existing folder to move it into.")],
           json_out: JsonOpt = False) -> None:
    """Move a tracked path: data, pointer and ignore lines in one step, like git mv."""
    result = move(src, dst, ui.progress())
    if json_out:
        return ui.json(result)
    ui.info(f"moved {result.src} -> {result.dst}")
    _git_hint(result.git)


def _git_hint(git: GitUpdate) -> None:
    if not git.add and not git.rm:
        return  # nothing git knew of changed
    commands = []
    if git.rm:
        commands.append(f"git rm --cached --quiet {' '.join(shlex.quote(p) for p in git.rm)}")
    if git.add:
        commands.append(f"git add {' '.join(shlex.quote(p) for p in git.add)}")
    ui.info("To record the change with git, run:")
    ui.info(f"    {' && '.join(commands)}")
