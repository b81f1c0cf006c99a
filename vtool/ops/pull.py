"""`vtool pull`: fetch the workspace pointers' objects, then check them out (its own module, so a local
checkout never imports the remote layers)."""

from __future__ import annotations

from dataclasses import dataclass

from vtool.errors import TransferError
from vtool.ops.checkout import CheckedOut, update_workspace
from vtool.ops.objects import gather
from vtool.ops.project import open_project
from vtool.ops.sync import SyncOptions, SyncResult, connected, fetch_tracked
from vtool.ops.targets import narrowed
from vtool.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class PullResult:
    """A fetch followed by a checkout."""

    fetch: SyncResult
    checkout: list[CheckedOut]


def pull(options: SyncOptions, force: bool = False, progress: Progress = NULL_PROGRESS) -> PullResult:
    """Fetch the workspace pointers' objects, then check them out."""
    with open_project(progress) as project:
        tracked = gather(project, options.targets, [], False)
        with connected(project, options.remote, options.jobs) as (remote, jobs):
            fetched = fetch_tracked(project, remote, jobs, tracked)
        if fetched.failed:
            raise TransferError(fetched.failed, "pull", fetched.remote)
        return PullResult(fetched, update_workspace(project, narrowed(project, tracked), force=force))
