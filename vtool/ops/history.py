"""`vtool diff`, `log` and `ls`: datasets across git history, read from git objects and manifests, no checkout."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace

from vtool import gitrepo, manifest
from vtool.errors import CacheError, UsageError
from vtool.hashing import Oid
from vtool.manifest import Entry
from vtool.ops.compare import Counted, FileChange, SpoolFile, Totals
from vtool.ops.project import Project, dataset_for, open_project
from vtool.ops.status import FolderCompare, keep_none
from vtool.ops.sync import connected, fetch_manifests, fetch_path
from vtool.ops.targets import Tracked, narrow, require_found, revision_pointers, workspace_pointers
from vtool.pointer import Kind, Version
from vtool.progress import NULL_PROGRESS, Progress
from vtool.workspace import Baseline, Tree

WORKSPACE = "workspace"


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
        self.compared: dict[str, Counted] = {}


def _rev_side(project: Project, rev: str, targets: list[str]) -> _Side:
    side = _Side(rev)
    committed = revision_pointers(project, gitrepo.resolve(project.root, rev), targets)
    for t in _parts(project, [replace(t, rev=rev) for t in committed]):  # the user's name for it, in messages
        side.versions[t.ds.data_rel] = t.pointer.version
        side.parts.append(t)
    return side


def _workspace_side(project: Project, targets: list[str], other: _Side, spool: SpoolFile) -> _Side:
    """Scan the workspace's datasets; a folder the other side has too is compared with it folder by folder
    as it is scanned, so only the differences are counted (and spooled), never the scanned tree held."""
    side = _Side(WORKSPACE)
    for t in workspace_pointers(project, targets):
        if not os.path.lexists(project.root / t.path):
            continue
        old = other.versions.get(t.path)
        if old is not None and old.kind == Kind.DIR:
            changes = Counted(t.path, spool)
            compare = FolderCompare(loader(project, []), changes.emit)
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
    """Read manifests from scanned workspace trees, then the cache; not memoised, for a walk reads each
    once (a diff of a changed tree would only fill the memo with manifests it never reads again)."""
    trees = {oid: t for s in sides for t in s.trees.values() for oid in t.manifests}

    def load(oid: Oid) -> list[Entry]:
        if oid in trees:
            return trees[oid].load(oid)
        return project.read_manifest_once(oid)[0]
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


def diff(revs: list[str], targets: list[str], progress: Progress = NULL_PROGRESS, *,
         listing: Callable[[DiffResult], None] | None = None) -> DiffResult:
    """Compare datasets between two revisions, or a revision (default HEAD) and the workspace.

    Changes are counted by kind, the first SHOWN_CHANGES of each kept; listing, when given, is handed the
    result with every change (read back from the spool file as it iterates them) before that file closes.
    """
    with open_project(progress) as project, closing(SpoolFile()) as spool:
        a = _rev_side(project, revs[0] if revs else "HEAD", targets)
        if len(revs) > 1:
            b = _rev_side(project, revs[1], targets)
            # the workspace side refuses targets without a pointer itself
            require_found(project, targets, a.versions.keys() | b.versions.keys(), f"{a.label} or {b.label}")
            require_manifests(project, a.parts + b.parts)
        else:
            require_manifests(project, a.parts)  # before the scan, which compares with them
            b = _workspace_side(project, targets, a, spool)
        load = loader(project, [a, b])
        paths = sorted(a.versions.keys() | b.versions.keys())
        counted = [(p, _count(load, spool, p, a.versions.get(p), b.versions.get(p), b.compared.get(p)))
                   for p in paths]
        result = DiffResult(a.label, b.label, [_dataset(p, a.versions.get(p), b.versions.get(p), c)
                                               for p, c in counted])
        if listing is not None:
            listing(replace(result, datasets=[_dataset(d.path, d.old, d.new, c, every=True)
                                              for d, (_, c) in zip(result.datasets, counted, strict=True)]))
        return result


def _count(load: manifest.Loader, spool: SpoolFile, path: str, old: Version | None, new: Version | None,
           compared: Counted | None) -> Counted | None:
    """Count and spool the changed files between two versions (None: unchanged), descending only into
    differing subtrees when both are folders (or as compared already, while the new side was scanned)."""
    if old is not None and new is not None and (old.kind, old.oid) == (new.kind, new.oid):
        return None
    counted = compared
    if counted is None:
        counted = Counted(path, spool)
        _changes(load, old, new, counted.emit)
    counted.pair()
    return counted


def _changes(load: manifest.Loader, old: Version | None, new: Version | None, emit: manifest.Emit) -> None:
    """Emit the files that differ; a single file's path ("") is never one of a folder's."""
    if old is not None and new is not None and old.kind == new.kind == Kind.DIR:
        manifest.changes(load, old.oid, new.oid, emit)
    elif old is not None and new is not None and old.kind == new.kind == Kind.FILE:
        emit("", _single(old), _single(new))
    else:
        for rel, e in _files(load, old):
            emit(rel, e, None)
        for rel, e in _files(load, new):
            emit(rel, None, e)


def _dataset(path: str, old: Version | None, new: Version | None, counted: Counted | None,
             every: bool = False) -> DatasetDiff:
    """The DatasetDiff of counted changes: the first of each kind, or (every) Listings of them all."""
    if counted is None:
        return DatasetDiff(path, "unchanged", old, new)
    status = "added" if old is None else "deleted" if new is None else "modified"
    added, deleted, modified, renamed = counted.listings() if every else counted.first()
    return DatasetDiff(path, status, old, new, added, deleted, modified, renamed, counted.totals())


def compare(load: manifest.Loader, path: str, old: Version | None, new: Version | None) -> DatasetDiff:
    """Diff one dataset's two versions file by file, pairing deletions and additions of equal oid as renames."""
    with closing(SpoolFile()) as spool:
        return _dataset(path, old, new, _count(load, spool, path, old, new, None))


def _single(v: Version) -> Entry:
    return Entry("", manifest.KIND_FILE, v.oid, v.size, 1)


def _files(load: manifest.Loader, v: Version | None) -> Iterator[tuple[str, Entry]]:
    """Yield a version's files by relative path, one manifest read at a time ("" for a single file)."""
    if v is None:
        return
    if v.kind == Kind.FILE:
        yield "", _single(v)
        return
    yield from ((p, e) for p, e in manifest.walk(load, v.oid) if not e.is_dir)


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
            for rel, e in sorted(_files(load, t.pointer.version)):
                files.append(ListedFile(_join(t.ds.data_rel, rel), e.size, e.oid, e.kind == manifest.KIND_EXEC))
        return LsResult(rev or WORKSPACE, files)
