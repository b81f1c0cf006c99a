"""The pre-commit hook: refuse a commit whose staged pointers or vtool.lock disagree with the workspace.

Apart from status, so that status (run far more often) never imports the pipeline's lock checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vtool import gitrepo
from vtool import pointer as ptr
from vtool.config import VTOOL_DIR
from vtool.errors import StalePointerError
from vtool.ops.project import Dataset, matches, open_project, project_root_or_none
from vtool.ops.stagestate import StaleLockError, lock_mismatches
from vtool.pipeline import lockfile
from vtool.pointer import POINTER_SUFFIX
from vtool.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class PreCommitResult:
    """The staged pointers the pre-commit hook compared with the workspace."""

    checked: list[str] = field(default_factory=list)


def pre_commit(progress: Progress = NULL_PROGRESS) -> PreCommitResult:
    """Refuse a commit whose staged pointers, or staged vtool.lock, name other data than the workspace holds."""
    root = project_root_or_none()
    staged = [(p, blob) for p, blob in gitrepo.staged_pointers(root) if p.split("/", 1)[0] != VTOOL_DIR] \
        if root else []
    lock = _staged_lock(root, bool(staged)) if root else None
    if not staged and lock is None:
        return PreCommitResult()
    stale = []
    with open_project(progress, start=root) as project:
        blobs = gitrepo.read_blobs(project.root, [blob for _, blob in staged])
        for path, blob in staged:
            data = blobs[blob]
            ds = Dataset(path, path[: -len(POINTER_SUFFIX)])
            pointer = ptr.loads(data, path.rsplit("/", 1)[-1])
            if not os.path.lexists(project.root / ds.data_rel):
                continue  # nothing in the workspace contradicts the pointer
            if not matches(project.scan(ds.data_rel), pointer):
                stale.append(ds.data_rel)
        if stale:
            raise StalePointerError(stale, [p + POINTER_SUFFIX for p in stale])
        unlocked = lock_mismatches(project, lockfile.loads(lock, f"staged {lockfile.LOCK_FILE}")) if lock else []
    if unlocked:
        raise StaleLockError(unlocked)
    return PreCommitResult([p for p, _ in staged] + ([lockfile.LOCK_FILE] if lock else []))


def _staged_lock(root: Path, pointers_staged: bool) -> bytes | None:
    """Return the staged vtool.lock when this commit changes it or stages pointers (which it must agree with)."""
    staged = gitrepo.staged_file(root, lockfile.LOCK_FILE)
    if staged is None or pointers_staged:
        return staged
    head = gitrepo.head_commit(root)
    return staged if head is None or gitrepo.file_at(root, head, lockfile.LOCK_FILE) != staged else None
