"""The one rule that tells revisions from targets on a command line (checkout, diff, ls)."""

from __future__ import annotations

import os

from vtool.errors import UsageError
from vtool.gitrepo import is_revision
from vtool.ops.project import is_tracked_path, project_root


def split_revisions(args: list[str], max_revs: int) -> tuple[list[str], list[str]]:
    """Split leading revisions (up to max_revs) from the targets after them.

    A tracked dataset is a target; otherwise an argument git resolves is a revision (a folder named like
    a branch does not hide the branch); otherwise it is a target. The first argument must be a tracked
    dataset, a revision or an existing path.
    """
    if not args:
        return [], []
    root = project_root()
    revs: list[str] = []
    for i, arg in enumerate(args):
        if len(revs) == max_revs or is_tracked_path(root, arg):
            return revs, args[i:]
        if not is_revision(root, arg):
            if i == 0 and not os.path.lexists(arg):
                raise UsageError(f"{arg}: neither a tracked path nor a git revision", "see: vtool status, git log")
            return revs, args[i:]
        revs.append(arg)
    return revs, []
