"""`vtool gc`: remove the objects nothing kept reaches (verify is cli/verify.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JobsOpt, JsonOpt, command
from vtool.cli.ui import ui
from vtool.ops.gc import GcOptions, GcResult, gc

KeepRevOpt = Annotated[list[str] | None, typer.Option("--rev", help="Also keep this revision's data (repeatable).")]


@command(app, "gc")
def gc_cmd(workspace: Annotated[bool, typer.Option("--workspace", "-w", help="Keep only the workspace's data.")]
           = False,
           all_commits: Annotated[bool, typer.Option("--all-commits", help="Keep the data of every commit.")] = False,
           rev: KeepRevOpt = None, remote: Annotated[str | None, typer.Option(
               "--remote", "-r", help="Clean this remote instead of the cache.")] = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete (default: dry run).")] = False,
           jobs: JobsOpt = None, json_out: JsonOpt = False) -> None:
    """Remove objects nothing kept reaches (kept: workspace, branch and tag tips); a dry run unless --yes."""
    result = gc(GcOptions(revs=rev or [], all_commits=all_commits, remote=remote, jobs=jobs,
                          workspace_only=workspace, delete=yes), ui.progress())
    ui.json(result) if json_out else _render_gc(result)


def _render_gc(r: GcResult) -> None:
    where = "the cache" if r.target == "cache" else f"remote {r.target}"
    size = f"{r.bytes} bytes" + (f" (+{r.unsized} of unknown size)" if r.unsized else "")
    verb = "would remove" if r.dry_run else "removed"
    ui.print(f"{verb} {r.removed} object(s), {size}, from {where}; {r.kept} kept")
    if ui.verbose:
        for oid in r.oids:
            ui.print(f"    {oid}")
    if r.temp_files:
        ui.print(f"{'would remove' if r.dry_run else 'removed'} {r.temp_files} stale temp file(s)")
    if r.dry_run and (r.removed or r.temp_files):
        ui.info("dry run: nothing was deleted; run again with --yes to delete")
