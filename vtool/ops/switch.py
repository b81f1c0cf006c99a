"""`vtool checkout REV` (code and data move together), `vtool checkout REV -- TARGET` (roll datasets back),
and the post-checkout hook (git moved HEAD; the data follows)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from vtool import gitrepo, manifest
from vtool import pointer as ptr
from vtool.config import VTOOL_DIR
from vtool.errors import FormatError, UsageError
from vtool.fsutil import atomic_write, check_inside
from vtool.manifest import Entry
from vtool.ops.checkout import CheckedOut, update_workspace
from vtool.ops.project import (
    STATE_DIR,
    Dataset,
    Project,
    checked_dataset,
    open_project,
    project_root_or_none,
    read_small_file,
)
from vtool.ops.targets import Tracked, narrow, require_found, revision_pointers, workspace_pointers
from vtool.pointer import POINTER_SUFFIX, Pointer
from vtool.progress import NULL_PROGRESS, Progress

if TYPE_CHECKING:
    from vtool.ops.sync import SyncResult

BRANCH_CHECKOUT = "1"
JOURNAL_NAME = "checkout-journal.json"
JOURNAL_VERSION = 1
MAX_JOURNAL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SwitchResult:
    """Where HEAD is now and what happened to each dataset."""

    rev: str
    commit: str
    datasets: list[CheckedOut]
    fetched: int


@dataclass(frozen=True)
class PostCheckoutResult:
    """What the post-checkout hook did: nothing (and why), or the datasets it updated."""

    skipped: str | None = None
    fetched: int = 0
    fetched_bytes: int = 0
    datasets: list[CheckedOut] = field(default_factory=list)


def checkout_rev(rev: str, force: bool = False, progress: Progress = NULL_PROGRESS) -> SwitchResult:
    """Check out rev with git, then its data; refuse before git moves if data would be lost."""
    with open_project(progress) as project:
        sha = gitrepo.resolve(project.root, rev)
        head = gitrepo.head_commit(project.root)
        at_head = dict(gitrepo.pointers_at(project.root, head)) if head else {}
        in_tree = workspace_pointers(project, [])
        wanted = _after_checkout(revision_pointers(project, sha, []), at_head, in_tree)
        fetched = _ensure_local(project, wanted)
        before = [t for t in in_tree if t.ds.pointer_rel in at_head]
        before += [t for t in read_journal(project) if t.ds.pointer_rel not in {b.ds.pointer_rel for b in before}]
        kept = {t.ds.data_rel for t in wanted}
        leaving = [t for t in before if t.ds.data_rel not in kept]
        done = update_workspace(project, wanted, before, force, then=partial(_switch, project, rev, leaving))
        journal_path(project).unlink(missing_ok=True)  # every removal done: nothing left to finish
        return SwitchResult(rev, sha, done, fetched.transferred if fetched else 0)


def _ensure_local(project: Project, wanted: list[Tracked]) -> SyncResult | None:
    """Fetch what the cache lacks of wanted; the remote layers are imported only when it may lack something."""
    if project.holds_all(t.pointer for t in wanted):
        return None
    from vtool.ops.sync import ensure_local  # boto3, transfer and the remote index: ~50 ms a local switch skips
    return ensure_local(project, wanted)


def journal_path(project: Project) -> Path:
    """Where `checkout REV` records the datasets it is removing, until it has removed them."""
    return project.vtool_dir / STATE_DIR / JOURNAL_NAME


def _switch(project: Project, rev: str, leaving: list[Tracked]) -> None:
    """Record the datasets that leave, then let git move HEAD.

    Once git has moved, their pointers are gone from the work tree; a kill before their data is removed
    would leave it behind for good, since nothing tracks it any more. The journal remembers them, and
    the next `checkout REV` removes them (only if cached, as always). With none leaving there is nothing
    to remember, and no journal write (and its two fsyncs) delays the switch; a journal an earlier killed
    switch left lists only datasets the target keeps then, and goes once the data is written.
    """
    if leaving:
        import json  # here, not at the top: only a switch that removes a dataset writes the journal

        doc = {"version": JOURNAL_VERSION,
               "leaving": [{"pointer": t.ds.pointer_rel, "bytes": ptr.dumps(t.pointer).decode()} for t in leaving]}
        atomic_write(journal_path(project), json.dumps(doc, indent=1).encode())
    gitrepo.checkout(project.root, rev)


def read_journal(project: Project) -> list[Tracked]:
    """The datasets a killed `checkout REV` was removing; a journal vtool cannot read is refused, not ignored."""
    path = journal_path(project)
    if not path.exists():
        return []
    import json  # only when a killed switch left a journal

    try:
        doc = json.loads(read_small_file(path, MAX_JOURNAL_BYTES, JOURNAL_NAME))
        items = [(str(item["pointer"]), str(item["bytes"])) for item in doc["leaving"]]
    except (ValueError, KeyError, TypeError):
        raise FormatError(f"{path}: a damaged checkout journal", "delete it, then check the removed datasets "
                          "by hand: vtool status") from None
    return [Tracked(checked_dataset(rel), ptr.loads(text.encode(), rel.rsplit("/", 1)[-1])) for rel, text in items]


def _after_checkout(at_rev: list[Tracked], at_head: dict[str, bytes], in_tree: list[Tracked]) -> list[Tracked]:
    """The pointers the work tree will hold once git has moved: git carries an uncommitted pointer edit
    across when HEAD and REV commit the same pointer, so that dataset must follow the work tree's."""
    edited = {t.ds.pointer_rel: t for t in in_tree}
    out = []
    for t in at_rev:
        carried = t.ds.pointer_rel in edited and at_head.get(t.ds.pointer_rel) == t.data
        out.append(edited[t.ds.pointer_rel] if carried else t)
    return out


def rollback(rev: str, targets: list[str], force: bool = False, progress: Progress = NULL_PROGRESS) -> SwitchResult:
    """Give the targets their data and pointer as of rev; HEAD stays, so the change is ready to commit."""
    if not targets:
        raise UsageError("name the datasets to roll back: vtool checkout REV -- TARGET...")
    with open_project(progress) as project:
        sha = gitrepo.resolve(project.root, rev)
        wanted = revision_pointers(project, sha, targets)
        require_found(project, targets, {t.path for t in wanted}, rev)
        fetched = _ensure_local(project, wanted)
        whole = [t for t in wanted if not t.sub]
        parts = [(t, narrow(project, t)) for t in wanted if t.sub]
        gone = [Tracked(Dataset(t.ds.pointer_rel, t.path), t.pointer) for t, part in parts if part is None]
        datasets = sorted({str(project.root / t.ds.data_rel) for t, _ in parts})
        current = {t.ds.pointer_rel: t for t in workspace_pointers(project, datasets)}
        done = update_workspace(project, whole + [part for _, part in parts if part is not None], gone, force)
        for t in whole:
            _write_pointer(project, t)
        _graft(project, current, parts)
        return SwitchResult(rev, sha, done, fetched.transferred if fetched else 0)


def _graft(project: Project, current: dict[str, Tracked], parts: list[tuple[Tracked, Tracked | None]]) -> None:
    """Point each dataset at a new tree: today's, with the rolled-back paths as they are at the revision.

    Only the manifests on those paths are new; they are stored, and made durable, before the pointer names them.
    """
    trees: dict[str, Pointer] = {}
    for t, part in parts:
        base = trees.get(t.ds.pointer_rel) or current[t.ds.pointer_rel].pointer
        entry = None if part is None else Entry(part.pointer.path, _kind(part.pointer), part.pointer.oid,
                                                part.pointer.size, part.pointer.files)
        top, manifests = manifest.replace_at(lambda oid: project.read_manifest(oid)[0], base.oid, t.sub, entry)
        for data in manifests.values():
            project.cache.put_bytes(data)
        trees[t.ds.pointer_rel] = dataclasses.replace(base, oid=top.oid, size=top.size, files=top.files)
    project.cache.sync()
    for pointer_rel, pointer in trees.items():
        path = project.root / pointer_rel
        check_inside(project.root, path.parent)
        atomic_write(path, ptr.dumps(pointer))


def _kind(part: Pointer) -> str:
    """The manifest kind of a narrowed part: a folder, or a file with or without its exec bit."""
    if part.kind == ptr.Kind.DIR:
        return manifest.KIND_DIR
    return manifest.KIND_EXEC if part.executable else manifest.KIND_FILE


def _write_pointer(project: Project, t: Tracked) -> None:
    """Restore the pointer file's committed bytes exactly, so git sees precisely the old version."""
    path = project.root / t.ds.pointer_rel
    check_inside(project.root, path.parent)
    atomic_write(path, t.data or b"")
    gitrepo.ensure_ignored(path.parent, t.ds.name)


def post_checkout(prev: str, new: str, flag: str, progress: Progress = NULL_PROGRESS) -> PostCheckoutResult:
    """After git checks out a branch or commit, give the workspace that commit's data, fetching only what is missing."""
    if os.environ.get(gitrepo.CALLER_ENV):
        return PostCheckoutResult("vtool runs this git checkout and syncs the data itself")
    if flag != BRANCH_CHECKOUT:
        return PostCheckoutResult("file checkout")
    if prev == new:
        return PostCheckoutResult("HEAD did not move")
    root = project_root_or_none()
    if root is None:
        return PostCheckoutResult("not a vtool project")
    # A rebase checks out many commits in turn; syncing data for each would be wasted work.
    if gitrepo.rebase_in_progress(root):
        return PostCheckoutResult("rebase in progress")
    with open_project(progress, start=root) as project:
        tracked = workspace_pointers(project, [])
        fetched = _ensure_local(project, tracked)
        done = update_workspace(project, tracked, _previous(project, prev, tracked))
        return PostCheckoutResult(None, fetched.transferred if fetched else 0, fetched.nbytes if fetched else 0, done)


def _previous(project: Project, prev: str, now: list[Tracked]) -> list[Tracked]:
    """The pointers the previous commit tracked and the new one does not (none after a clone or in a new worktree)."""
    if not prev.strip("0"):
        return []
    kept = {t.ds.pointer_rel for t in now}
    return [Tracked(Dataset(path, path[: -len(POINTER_SUFFIX)]), ptr.loads(data, path.rsplit("/", 1)[-1]), prev)
            for path, data in gitrepo.pointers_at(project.root, prev)
            if path not in kept and path.split("/", 1)[0] != VTOOL_DIR]
