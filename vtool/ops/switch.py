"""`vtool checkout REV` (code and data move together) and `vtool checkout REV -- TARGET` (roll datasets back)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vtool import gitrepo
from vtool.errors import GitError, UsageError
from vtool.fsutil import atomic_write, check_inside
from vtool.ops.checkout import CheckedOut, Plan, apply_plans, plan, plan_removal
from vtool.ops.objects import Tracked, revision_pointers, workspace_pointers
from vtool.ops.project import Project, dataset_for, open_project, project_root
from vtool.ops.sync import ensure_local
from vtool.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class SwitchResult:
    """Where HEAD is now and what happened to each dataset."""

    rev: str
    commit: str
    datasets: list[CheckedOut]
    fetched: int


def checkout_rev(rev: str, force: bool = False, progress: Progress = NULL_PROGRESS) -> SwitchResult:
    """Check out rev with git, then its data; refuse before git moves if data would be lost."""
    with open_project(progress) as project:
        sha = gitrepo.resolve(project.root, rev)
        wanted = _after_checkout(project, revision_pointers(project, sha, []))
        fetched = ensure_local(project, wanted)
        plans = [plan(project, t.ds, t.pointer) for t in wanted]
        plans += _removals(project, {t.ds.data_rel for t in wanted})
        apply_plans(project, plans, force, verify=False, dry_run=True)
        gitrepo.run_git(project.root, "checkout", "--quiet", rev, "--")
        done = apply_plans(project, plans, force, verify=False)
        return SwitchResult(rev, sha, done, fetched.transferred if fetched else 0)


def _after_checkout(project: Project, at_rev: list[Tracked]) -> list[Tracked]:
    """The pointers the work tree will hold once git has moved: git carries an uncommitted pointer edit
    across when HEAD and REV commit the same pointer, so that dataset must follow the work tree's."""
    at_head = dict(gitrepo.pointers_at(project.root, "HEAD")) if _has_head(project) else {}
    in_tree = {t.ds.pointer_rel: t for t in workspace_pointers(project, [])}
    out = []
    for t in at_rev:
        carried = t.ds.pointer_rel in in_tree and at_head.get(t.ds.pointer_rel) == _committed_bytes(project, t)
        out.append(in_tree[t.ds.pointer_rel] if carried else t)
    return out


def _committed_bytes(project: Project, t: Tracked) -> bytes:
    return gitrepo.run_git_bytes(project.root, "cat-file", "blob", f"{t.rev}:{t.ds.pointer_rel}")


def _removals(project: Project, kept: set[str]) -> list[Plan]:
    """Datasets committed at HEAD but absent at the target revision lose their data (only if cached)."""
    at_head = {path for path, _ in gitrepo.pointers_at(project.root, "HEAD")} if _has_head(project) else set()
    out = []
    for t in workspace_pointers(project, []):
        gone = t.ds.pointer_rel in at_head and t.ds.data_rel not in kept
        if gone and os.path.lexists(project.root / t.ds.data_rel):
            out.append(plan_removal(project, t.ds, t.pointer))
    return out


def _has_head(project: Project) -> bool:
    return bool(gitrepo.run_git(project.root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip())


def rollback(rev: str, targets: list[str], force: bool = False, progress: Progress = NULL_PROGRESS) -> SwitchResult:
    """Give the targets their data and pointer as of rev; HEAD stays, so the change is ready to commit."""
    if not targets:
        raise UsageError("name the datasets to roll back: vtool checkout REV -- TARGET...")
    with open_project(progress) as project:
        sha = gitrepo.resolve(project.root, rev)
        wanted = revision_pointers(project, sha, targets)
        _require_all(targets, wanted, rev, project)
        fetched = ensure_local(project, wanted)
        plans = [plan(project, t.ds, t.pointer) for t in wanted]
        apply_plans(project, plans, force, verify=False, dry_run=True)
        done = apply_plans(project, plans, force, verify=False)
        for t in wanted:
            _write_pointer(project, t, sha)
        return SwitchResult(rev, sha, done, fetched.transferred if fetched else 0)


def _require_all(targets: list[str], found: list[Tracked], rev: str, project: Project) -> None:
    have = {t.ds.data_rel for t in found}
    for target in targets:
        ds = dataset_for(project.root, target)
        if ds.data_rel not in have:
            raise UsageError(f"{target}: not tracked by vtool at {rev}", f"see: vtool log {target}")


def _write_pointer(project: Project, t: Tracked, sha: str) -> None:
    """Restore the pointer file's committed bytes exactly, so git sees precisely the old version."""
    data = gitrepo.run_git_bytes(project.root, "cat-file", "blob", f"{sha}:{t.ds.pointer_rel}")
    path = project.root / t.ds.pointer_rel
    check_inside(project.root, path.parent)
    atomic_write(path, data)
    gitrepo.ensure_ignored(path.parent, t.ds.name)


def split_rev(args: list[str], start: Path | None = None) -> tuple[str | None, list[str]]:
    """Tell `checkout [TARGETS]` from `checkout REV [-- TARGETS]`: a tracked path wins, else a git revision."""
    if not args:
        return None, []
    root = project_root(start)
    first = args[0]
    if (root / dataset_for(root, first).pointer_rel).is_file():
        return None, args
    try:
        gitrepo.resolve(root, first)
    except GitError:
        raise UsageError(f"{first}: neither a tracked path nor a git revision", "see: vtool status, git log") from None
    return first, args[1:]
