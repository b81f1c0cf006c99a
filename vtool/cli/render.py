"""Human renderings of op results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtool.cli.ui import ui
from vtool.ops.status import NOT_IN_CACHE, SAMPLE_PATHS, StatusResult

if TYPE_CHECKING:
    from vtool.ops.sync import RemoteStatusResult

LISTED_FILES = SAMPLE_PATHS  # status keeps no more than it prints


def render_status(result: StatusResult) -> None:
    """Print one line per dataset and the files that changed."""
    if not result.datasets:
        ui.print("no datasets tracked (vtool add PATH)")
    for ds in result.datasets:
        line = f"{ds.path}: {ds.state}"
        added, modified, deleted = ds.changed
        if ds.state == "modified" and (added or modified or deleted):
            line += f" ({added} added, {modified} modified, {deleted} deleted)"
        if ds.state == NOT_IN_CACHE:
            line += f" ({ds.missing_from_cache} object(s) missing)"
        elif ds.missing_from_cache:
            line += f", {ds.missing_from_cache} object(s) not in cache"
        ui.print(line)
        for mark, paths, count in (("+", ds.added, added), ("~", ds.modified, modified), ("-", ds.deleted, deleted)):
            for path in paths[:LISTED_FILES]:
                ui.print(f"    {mark} {path or ds.path}")  # "" is a file dataset itself
            if count > LISTED_FILES:
                ui.print(f"    {mark} ... and {count - LISTED_FILES} more")


def render_remote_status(result: RemoteStatusResult) -> None:
    """Print what each dataset has not pushed yet."""
    for ds in result.datasets:
        if ds.unknown:
            ui.print(f"{ds.path}: cannot tell, {len(ds.unknown)} manifest(s) not in the local cache")
        elif ds.missing:
            ui.print(f"{ds.path}: {ds.missing} of {ds.objects} object(s) not pushed ({ds.missing_bytes} bytes)")
        else:
            ui.print(f"{ds.path}: all {ds.objects} object(s) on {result.remote}")
