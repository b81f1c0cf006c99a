"""Commands that read history: diff, log, ls."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.revisions import split_revisions
from vtool.cli.ui import ui
from vtool.ops.compare import SHOWN_CHANGES
from vtool.ops.history import DiffResult, LogResult, LsResult, diff, log, ls


@command(app, "diff")
def diff_cmd(args: Annotated[list[str] | None, typer.Argument(help="[A [B]] [TARGETS]: revisions, then datasets.")]
             = None, json_out: JsonOpt = False) -> None:
    """Show which files of which datasets changed between two revisions, or a revision and the workspace."""
    revs, targets = split_revisions(args or [], max_revs=2)
    if json_out:
        diff(revs, targets, ui.progress(), listing=ui.json)  # every change, streamed as the document is written
    else:
        _render_diff(diff(revs, targets, ui.progress()))


def _render_diff(result: DiffResult) -> None:
    changed = [d for d in result.datasets if d.status != "unchanged"]
    if not changed:
        ui.print(f"no data changes between {result.a} and {result.b}")
        return
    for ds in changed:
        t = ds.totals
        ui.print(f"{ds.path}: {ds.status} ({result.a} -> {result.b}): +{t.added} -{t.deleted} ~{t.modified} "
                 f"renamed {t.renamed}; +{t.added_bytes} / -{t.deleted_bytes} bytes, "
                 f"modified {t.modified_bytes_delta:+d} bytes")
        table = Table("change", "path", "old size", "new size", box=None, pad_edge=False)
        rows = [("added", c.path, "", str(c.new_size)) for c in ds.added]
        rows += [("deleted", c.path, str(c.old_size), "") for c in ds.deleted]
        rows += [("modified", c.path, str(c.old_size), str(c.new_size)) for c in ds.modified]
        rows += [("renamed", f"{c.old_path} -> {c.path}", str(c.old_size), str(c.new_size)) for c in ds.renamed]
        for row in rows[:SHOWN_CHANGES]:  # the result keeps the first SHOWN_CHANGES of each kind
            table.add_row(*row)
        ui.out.print(table)
        listed = t.added + t.deleted + t.modified + t.renamed
        if listed > SHOWN_CHANGES:
            ui.print(f"... and {listed - SHOWN_CHANGES} more (use --json for all)")


@command(app, "log")
def log_cmd(targets: Annotated[list[str] | None, typer.Argument(help="Datasets; none = all.")] = None,
            max_count: Annotated[int | None, typer.Option("-n", "--max-count", min=1)] = None,
            json_out: JsonOpt = False) -> None:
    """Show the commits that changed each dataset, and what changed."""
    result = log(targets or [], max_count, ui.progress())
    ui.json(result) if json_out else _render_log(result)


def _render_log(result: LogResult) -> None:
    table = Table("dataset", "commit", "date", "author", "subject", "files", "size", "change", box=None)
    for e in result.entries:
        v = e.version
        c = e.change
        change = "?" if c is None else f"+{c.added} -{c.deleted} ~{c.modified}"
        table.add_row(e.dataset, e.commit[:10], e.date[:19], e.author, e.subject,
                      str(v.files) if v else "deleted", str(v.size) if v else "", change)
    ui.out.print(table)


@command(app, "ls")
def ls_cmd(args: Annotated[list[str] | None, typer.Argument(help="[REV] [TARGETS].")] = None,
           json_out: JsonOpt = False) -> None:
    """List the files of datasets at a revision (default: the workspace pointers)."""
    revs, targets = split_revisions(args or [], max_revs=1)
    result = ls(revs[0] if revs else None, targets, ui.progress())
    ui.json(result) if json_out else _render_ls(result)


def _render_ls(result: LsResult) -> None:
    for f in result.files:
        ui.print(f"{f.size:>12}  {f.oid[7:19]}  {f.path}{'*' if f.executable else ''}")
