"""Human renderings of op results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtool.cli.ui import ui
from vtool.ops.status import NOT_IN_CACHE, StatusResult

if TYPE_CHECKING:
    from vtool.ops.sync import RemoteStatusResult

LISTED_FILES = 20


def render_status(result: StatusResult) -> None:
    """Print one line per dataset and the files that changed."""
    if not result.datasets:
        ui.print("no datasets tracked (vtool add PATH)")
    for ds in result.datasets:
        line = f"{ds.path}: {ds.state}"
        if ds.state == "modified" and (ds.added or ds.modified or ds.deleted):
            line += f" ({len(ds.added)} added, {len(ds.modified)} modified, {len(ds.deleted)} deleted)"
        if ds.state == NOT_IN_CACHE:
            line += f" ({ds.missing_from_cache} object(s) missing)"
        elif ds.missing_from_cache:
            line += f", {ds.missing_from_cache} object(s) not in cache"
        ui.print(line)
        for mark, paths in (("+", ds.added), ("~", ds.modified), ("-", ds.deleted)):
            for path in paths[:LISTED_FILES]:
                ui.print(f"    {mark} {path or ds.path}")  # "" is a file dataset itself
            if len(paths) > LISTED_FILES:
                ui.print(f"    {mark} ... and {len(paths) - LISTED_FILES} more")


def render_remote_status(result: RemoteStatusResult) -> None:
    """Print what each dataset has not pushed yet."""
    for ds in result.datasets:
        if ds.unknown:
            ui.print(f"{ds.path}: cannot tell, {len(ds.unknown)} manifest(s) not in the local cache")
        elif ds.missing:
            ui.print(f"{ds.path}: {ds.missing} of {ds.objects} object(s) not pushed ({ds.missing_bytes} bytes)")
        else:
            ui.print(f"{ds.path}: all {ds.objects} object(s) on {result.remote}")
