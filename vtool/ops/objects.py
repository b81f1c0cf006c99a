"""Which pointers an op works on (workspace or revisions) and the objects they reach."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vtool import gitrepo, manifest
from vtool import pointer as ptr
from vtool.errors import CacheError, FormatError, UsageError
from vtool.hashing import Oid
from vtool.ops.project import Dataset, Project, all_datasets, checked_dataset, dataset_for, read_pointer, select
from vtool.pointer import Pointer
from vtool.transfer import Obj


@dataclass(frozen=True)
class Tracked:
    """A pointer and where it came from (the workspace, or a commit and the pointer file's bytes there)."""

    ds: Dataset
    pointer: Pointer
    rev: str | None = None
    data: bytes | None = None


@dataclass
class ObjectSet:
    """Objects reachable from some pointers: files, manifests deepest first, and manifests the cache lacks."""

    files: dict[Oid, Obj] = field(default_factory=dict)
    manifests: list[Obj] = field(default_factory=list)
    unreadable: dict[Oid, str] = field(default_factory=dict)


def workspace_pointers(project: Project, targets: list[str]) -> list[Tracked]:
    """The pointers in the work tree, restricted to targets."""
    return [Tracked(ds, read_pointer(project.root, ds)) for ds in select(project.root, targets)]


def worktree_pointers(tree_root: Path) -> list[Tracked]:
    """The pointers in another work tree of the same repository (linked worktrees share one cache)."""
    return [Tracked(ds, read_pointer(tree_root, ds)) for ds in all_datasets(tree_root)]


def revision_pointers(project: Project, rev: str, targets: list[str]) -> list[Tracked]:
    """The pointers committed at rev, restricted to targets (given as paths in the work tree)."""
    wanted = {dataset_for(project.root, t).data_rel for t in targets}
    out = []
    for path, data in gitrepo.pointers_at(project.root, rev):
        ds = checked_dataset(path, f"{rev}:{path}")
        if wanted and ds.data_rel not in wanted:
            continue
        try:
            out.append(Tracked(ds, ptr.loads(data, path.rsplit("/", 1)[-1]), rev, data))
        except FormatError as exc:
            raise type(exc)(f"{rev}:{path}: {exc.message}", exc.hint) from None
    return out


def require_found(project: Project, targets: list[str], found: set[str], where: str) -> None:
    """Refuse a target that names no dataset at a revision, instead of silently showing nothing."""
    for target in targets:
        if dataset_for(project.root, target).data_rel not in found:
            raise UsageError(f"{target}: not tracked by vtool at {where}", f"see: vtool log {target}")


def gather(project: Project, targets: list[str], revs: list[str], all_commits: bool = False,
           workspace: bool = True) -> list[Tracked]:
    """Pointers from the workspace and/or the given revisions (all commits with all_commits)."""
    found: list[Tracked] = workspace_pointers(project, targets) if workspace else []
    commits = gitrepo.all_commits(project.root) if all_commits else list(revs)
    for rev in commits:
        found.extend(revision_pointers(project, rev, targets))
    return found


def collect(project: Project, tracked: list[Tracked]) -> ObjectSet:
    """Walk manifests in the cache to list every object the pointers reach, each shared subtree once.

    Manifests come out in post-order (every manifest after all the manifests it names), which is the
    order a push must follow so that a remote never holds a manifest before its members.
    """
    result = ObjectSet()
    seen: set[Oid] = set()
    for item in tracked:
        p = item.pointer
        if p.kind == "file":
            result.files[p.oid] = Obj(p.oid, p.size)
        else:
            _walk(project, p.oid, 0, seen, result)
    return result


def _walk(project: Project, oid: Oid, depth: int, seen: set[Oid], out: ObjectSet) -> None:
    if oid in seen:
        return
    manifest.check_depth(depth, oid)
    seen.add(oid)
    try:
        entries, size = project.read_manifest(oid)
    except CacheError as exc:
        out.unreadable[oid] = str(exc)
        return
    for e in entries:
        if e.is_dir:
            _walk(project, e.oid, depth + 1, seen, out)
        else:
            out.files.setdefault(e.oid, Obj(e.oid, e.size))
    out.manifests.append(Obj(oid, size, tuple(e.oid for e in entries)))
