"""`vtool add`, on its own so a no-change add imports nothing checkout or a revision switch needs."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.ui import ui
from vtool.ops.add import add


@command(app, "add")
def add_cmd(paths: Annotated[list[str], typer.Argument(help="Files or folders to track.")],
            json_out: JsonOpt = False) -> None:
    """Track files or folders: hash, cache, write PATH.vtool, ignore PATH in git."""
    result = add(paths, progress=ui.progress())
    if json_out:
        return ui.json(result)
    for item in result.added:
        verb = "added" if item.changed else "unchanged"
        ui.info(f"{verb} {item.path}: {item.files} file(s), {item.size} bytes, {item.hashed} hashed")
    for rule in result.ignored:
        folder, _, name = rule.pointer.rpartition("/")
        ui.info(f"warning: git ignores {rule.pointer} ({rule.source}:{rule.line}: {rule.pattern}); to commit it, "
                f"un-ignore it with the line '!{name}' in {folder + '/' if folder else ''}.gitignore, "
                f"or run: git add -f {shlex.quote(rule.pointer)}")
    ui.info("To track the changes with git, run:")
    ui.info(f"    git add {' '.join(shlex.quote(p) for p in result.git_paths)}")
