"""`vtool diff`, `log` and `ls`: datasets across git history, read from git objects and manifests, no checkout."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field, replace

from vtool import gitrepo, manifest
from vtool.errors import CacheError, UsageError
from vtool.hashing import Oid
from vtool.manifest import Entry
from vtool.ops.project import Project, dataset_for, open_project
from vtool.ops.status import FolderCompare, keep_none
from vtool.ops.sync import connected, fetch_manifests, fetch_path
from vtool.ops.targets import Tracked, narrow, require_found, revision_pointers, workspace_pointers
from vtool.pointer import Kind, Version
from vtool.progress import NULL_PROGRESS, Progress
from vtool.workspace import Baseline, Tree

WORKSPACE = "workspace"


@dataclass(frozen=True)
class FileChange:
    """A file that differs: old/new sizes and oids (None on the side where it is absent)."""

    path: str
    old_size: int | None = None
    new_size: int | None = None
    old_oid: Oid | None = None
    new_oid: Oid | None = None
    old_path: str | None = None


@dataclass(frozen=True)
class Totals:
    """How many files and bytes changed, by kind of change."""

    added: int = 0
    deleted: int = 0
    modified: int = 0
    renamed: int = 0
    added_bytes: int = 0
    deleted_bytes: int = 0
    modified_bytes_delta: int = 0


@dataclass(frozen=True)
class DatasetDiff:
    """How one dataset differs between the two sides."""

    path: str
    status: str
    old: Version | None
    new: Version | None
    added: list[FileChange] = field(default_factory=list)
    deleted: list[FileChange] = field(default_factory=list)
    modified: list[FileChange] = field(default_factory=list)
    renamed: list[FileChange] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


@dataclass(frozen=True)
class DiffResult:
    """Every dataset compared between `a` and `b` (a revision or "workspace")."""

    a: str
    b: str
    datasets: list[DatasetDiff]


class _Side:
    """The datasets one side of a comparison holds, with the manifests needed to read them."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.versions: dict[str, Version] = {}
        self.trees: dict[Oid, Tree] = {}
        self.parts: list[Tracked] = []
        # Workspace datasets compared with the other side's folder as they were scanned: their differences.
        self.compared: dict[str, manifest.TreeDiff] = {}


def _rev_side(project: Project, rev: str, targets: list[str]) -> _Side:
    side = _Side(rev)
    committed = revision_pointers(project, gitrepo.resolve(project.root, rev), targets)
    for t in _parts(project, [replace(t, rev=rev) for t in committed]):  # the user's name for it, in messages
        side.versions[t.ds.data_rel] = t.pointer.version
        side.parts.append(t)
    return side


def _workspace_side(project: Project, targets: list[str], other: _Side) -> _Side:
    """Scan the workspace's datasets; a folder the other side has too is compared with it folder by folder
    as it is scanned, so only the differences are held, never the scanned tree."""
    side = _Side(WORKSPACE)
    for t in workspace_pointers(project, targets):
        if not os.path.lexists(project.root / t.path):
            continue
        old = other.versions.get(t.path)
        if old is not None and old.kind == Kind.DIR:
            changes = manifest.TreeDiff({}, {}, {})
            compare = FolderCompare(loader(project, []), manifest.collect_into(changes))
            tree = project.scan(t.path, baseline=Baseline(old.oid, loader(project, []), compare), sink=keep_none)
            if tree.kind == Kind.DIR and not compare.unknown:
                side.versions[t.path] = tree.version
                side.compared[t.path] = changes
                continue
        tree = project.scan(t.path)
        side.versions[t.path] = tree.version
        side.trees[tree.oid] = tree
    return side


def _parts(project: Project, tracked: list[Tracked]) -> list[Tracked]:
    """Narrow targets inside datasets (absent ones drop out), fetching the manifests down to them if needed."""
    out = []
    for t in tracked:
        try:
            part = narrow(project, t)
        except CacheError:
            if not project.config.remotes:
                raise
            with connected(project, None, None) as (remote, jobs):
                fetch_path(project, remote, jobs, t.pointer.oid, t.sub)
            part = narrow(project, t)
        if part is not None:
            out.append(part)
    return out


def loader(project: Project, sides: list[_Side]) -> manifest.Loader:
    """Read manifests from scanned workspace trees, then the cache."""
    trees = {oid: t for s in sides for t in s.trees.values() for oid in t.manifests}

    def load(oid: Oid) -> list[Entry]:
        if oid in trees:
            return trees[oid].load(oid)
        return project.read_manifest(oid)[0]
    return load


def ensure_manifests(project: Project, roots: list[Oid]) -> str | None:
    """Fetch manifests the cache lacks from the default remote, when one is configured; return that remote."""
    missing = [oid for oid in roots if not _tree_complete(project, oid)]
    if not project.config.remotes:
        return None
    with connected(project, None, None) as (remote, jobs):
        if missing:
            fetch_manifests(project, remote, jobs, missing)
        return remote.name


def require_manifests(project: Project, parts: list[Tracked]) -> None:
    """Fetch what reading these folders needs, and say which dataset, revision and remote lack what is not found."""
    lacking = [t for t in parts if t.pointer.kind == Kind.DIR and not _tree_complete(project, t.pointer.oid)]
    if not lacking:
        return
    remote = ensure_manifests(project, [t.pointer.oid for t in lacking])
    for t in lacking:
        if not _tree_complete(project, t.pointer.oid):
            raise _unavailable(t, remote)


def _unavailable(t: Tracked, remote: str | None) -> CacheError:
    """The error for history no clone at hand can read: committed, but never pushed where we look."""
    where = f"at {t.rev}" if t.rev else "in the workspace pointer"
    if remote is None:
        return CacheError(f"{t.path} {where}: its manifests are not in the cache, and no remote is configured",
                          "add the remote that holds them: vtool remote add NAME URL --default")
    push = f"vtool push --rev {shlex.quote(t.rev)}" if t.rev else "vtool push"
    return CacheError(f"{t.path} {where}: manifest {t.pointer.oid} (or one below it) is neither in the cache "
                      f"nor on remote {remote}", f"it was committed but never pushed: run `{push}` in a clone "
                      "that has it")


def _tree_complete(project: Project, oid: Oid) -> bool:
    try:
        for _ in manifest.walk(loader(project, []), oid):
            pass
    except CacheError:
        return False
    return True


def diff(revs: list[str], targets: list[str], progress: Progress = NULL_PROGRESS) -> DiffResult:
    """Compare datasets between two revisions, or a revision (default HEAD) and the workspace."""
    with open_project(progress) as project:
        a = _rev_side(project, revs[0] if revs else "HEAD", targets)
        if len(revs) > 1:
            b = _rev_side(project, revs[1], targets)
            # the workspace side refuses targets without a pointer itself
            require_found(project, targets, a.versions.keys() | b.versions.keys(), f"{a.label} or {b.label}")
            require_manifests(project, a.parts + b.parts)
        else:
            require_manifests(project, a.parts)  # before the scan, which compares with them
            b = _workspace_side(project, targets, a)
        load = loader(project, [a, b])
        paths = sorted(a.versions.keys() | b.versions.keys())
        return DiffResult(a.label, b.label, [compare(load, p, a.versions.get(p), b.versions.get(p), b.compared.get(p))
                                             for p in paths])


def _diff_files(load: manifest.Loader, old: Version | None, new: Version | None,
                compared: manifest.TreeDiff | None = None
                ) -> tuple[dict[str, Entry], dict[str, Entry], dict[str, tuple[Entry, Entry]]]:
    """Changed files between two versions, descending only into differing subtrees when both are folders
    (or as compared already, while the new side was scanned)."""
    if old is not None and new is not None and old.kind == new.kind == Kind.DIR:
        changes = compared or manifest.diff(load, old.oid, new.oid)
        return dict(changes.added), dict(changes.deleted), changes.modified
    before, after = _files(load, old), _files(load, new)
    added = {p: e for p, e in after.items() if p not in before}
    deleted = {p: e for p, e in before.items() if p not in after}
    modified = {p: (before[p], after[p]) for p in before.keys() & after.keys() if before[p].oid != after[p].oid}
    return added, deleted, modified


def _files(load: manifest.Loader, v: Version | None) -> dict[str, Entry]:
    if v is None:
        return {}
    if v.kind == Kind.FILE:
        return {"": Entry("", manifest.KIND_FILE, v.oid, v.size, 1)}
    return manifest.files(load, v.oid)


def compare(load: manifest.Loader, path: str, old: Version | None, new: Version | None,
            compared: manifest.TreeDiff | None = None) -> DatasetDiff:
    """Diff one dataset's two versions file by file, pairing deletions and additions of equal oid as renames."""
    if old is not None and new is not None and (old.kind, old.oid) == (new.kind, new.oid):
        return DatasetDiff(path, "unchanged", old, new)
    status = "added" if old is None else "deleted" if new is None else "modified"
    return _summarise(path, status, old, new, *_diff_files(load, old, new, compared))


def _summarise(path: str, status: str, old: Version | None, new: Version | None, added: dict[str, Entry],
               deleted: dict[str, Entry], modified: dict[str, tuple[Entry, Entry]]) -> DatasetDiff:
    by_oid: dict[Oid, list[str]] = {}
    for p in sorted(deleted):
        by_oid.setdefault(deleted[p].oid, []).append(p)
    renamed = []
    for p in sorted(added):
        olds = by_oid.get(added[p].oid)
        if olds:
            src = olds.pop(0)
            e = deleted.pop(src)
            del added[p]
            renamed.append(FileChange(_join(path, p), e.size, e.size, e.oid, e.oid, _join(path, src)))
    add = [FileChange(_join(path, p), None, e.size, None, e.oid) for p, e in sorted(added.items())]
    rem = [FileChange(_join(path, p), e.size, None, e.oid, None) for p, e in sorted(deleted.items())]
    mod = [FileChange(_join(path, p), a.size, b.size, a.oid, b.oid) for p, (a, b) in sorted(modified.items())]
    totals = Totals(len(add), len(rem), len(mod), len(renamed), sum(c.new_size or 0 for c in add),
                    sum(c.old_size or 0 for c in rem), sum((c.new_size or 0) - (c.old_size or 0) for c in mod))
    return DatasetDiff(path, status, old, new, add, rem, mod, renamed, totals)


def _join(dataset: str, rel: str) -> str:
    return f"{dataset}/{rel}" if rel else dataset


@dataclass(frozen=True)
class LogEntry:
    """One commit where a dataset's pointer changed, with the change against the previous version."""

    dataset: str
    commit: str
    date: str
    author: str
    subject: str
    version: Version | None
    change: Totals | None


@dataclass(frozen=True)
class LogResult:
    """The history of the selected datasets, newest first."""

    entries: list[LogEntry]


def log(targets: list[str], limit: int | None = None, progress: Progress = NULL_PROGRESS) -> LogResult:
    """List the commits that changed each dataset's pointer, reading pointers and manifests only."""
    with open_project(progress) as project:
        named = [dataset_for(project.root, t) for t in targets]
        entries: list[LogEntry] = []
        for ds in named or [t.ds for t in workspace_pointers(project, [])]:
            entries.extend(_dataset_log(project, ds.pointer_rel, ds.data_rel, limit, required=bool(named)))
        return LogResult(entries)


def _dataset_log(project: Project, pointer_rel: str, data_rel: str, limit: int | None,
                 required: bool) -> list[LogEntry]:
    """One dataset's history; a dataset never committed is an error only when it was named."""
    records = gitrepo.file_log(project.root, pointer_rel, limit + 1 if limit else None)
    if not records:
        if not required:
            return []
        raise UsageError(f"{data_rel}: no commits change {pointer_rel}", "commit the pointer first")
    versions = [_version_at(project, sha, data_rel) for sha, *_ in records]
    ensure_manifests(project, [v.oid for v in versions if v is not None and v.kind == Kind.DIR])
    load = loader(project, [])
    out = []
    for i, (sha, date, author, subject) in enumerate(records[:limit] if limit else records):
        older = versions[i + 1] if i + 1 < len(versions) else None
        out.append(LogEntry(data_rel, sha, date, author, subject, versions[i], _change(load, older, versions[i])))
    return out


def _version_at(project: Project, sha: str, data_rel: str) -> Version | None:
    """The dataset (a repo-relative path, not a user's path) as committed at sha."""
    found = [t.pointer for t in revision_pointers(project, sha, []) if t.ds.data_rel == data_rel]
    if not found:
        return None
    return found[0].version


def _change(load: manifest.Loader, old: Version | None, new: Version | None) -> Totals | None:
    try:
        return compare(load, "", old, new).totals
    except CacheError:
        return None


@dataclass(frozen=True)
class ListedFile:
    """A file of a dataset at a revision."""

    path: str
    size: int
    oid: Oid
    executable: bool


@dataclass(frozen=True)
class LsResult:
    """Files of the selected datasets at a revision (or the workspace pointers)."""

    rev: str
    files: list[ListedFile]


def ls(rev: str | None, targets: list[str], progress: Progress = NULL_PROGRESS) -> LsResult:
    """List the files of datasets at a revision from their manifests, fetching manifests if needed."""
    with open_project(progress) as project:
        tracked = [replace(t, rev=rev) for t in revision_pointers(project, gitrepo.resolve(project.root, rev),
                                                                  targets)] if rev \
            else workspace_pointers(project, targets)
        require_found(project, targets, {t.path for t in tracked}, rev or WORKSPACE)
        parts = _parts(project, tracked)
        require_found(project, targets, {t.path for t in parts}, rev or WORKSPACE)
        require_manifests(project, parts)
        load = loader(project, [])
        files = []
        for t in parts:
            for rel, e in sorted(_files(load, t.pointer.version).items()):
                files.append(ListedFile(_join(t.ds.data_rel, rel), e.size, e.oid, e.kind == manifest.KIND_EXEC))
        return LsResult(rev or WORKSPACE, files)
