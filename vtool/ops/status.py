"""`vtool status`: workspace and cache against pointers (the pre-commit hook is ops/precommit.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vtool import manifest
from vtool.errors import CacheError, UsageError
from vtool.hashing import Oid
from vtool.manifest import Entry
from vtool.ops.project import Dataset, Project, matches, open_project
from vtool.ops.targets import Tracked, narrow, workspace_pointers
from vtool.pointer import Kind, Pointer
from vtool.progress import NULL_PROGRESS, Progress
from vtool.workspace import Baseline, Tree

IN_SYNC = "in sync"
MODIFIED = "modified"
NOT_IN_WORKSPACE = "not in workspace"
NOT_IN_CACHE = "not in cache"


@dataclass(frozen=True)
class DatasetStatus:
    """How one dataset's workspace and cache compare with its pointer."""

    path: str
    pointer: str
    kind: str
    state: str
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing_from_cache: int = 0
    hashed: int = 0

    @property
    def in_sync(self) -> bool:
        """Tell whether workspace and cache both match the pointer."""
        return self.state == IN_SYNC and self.missing_from_cache == 0


@dataclass(frozen=True)
class StatusResult:
    """Status of every selected dataset."""

    datasets: list[DatasetStatus]

    @property
    def in_sync(self) -> bool:
        """Tell whether nothing is out of sync (for --check)."""
        return all(d.in_sync for d in self.datasets)


def status(targets: list[str], progress: Progress = NULL_PROGRESS) -> StatusResult:
    """Report every selected dataset; hashes only files the stat cache cannot vouch for."""
    with open_project(progress) as project:
        return StatusResult([_target(project, t) for t in workspace_pointers(project, targets)])


def _target(project: Project, t: Tracked) -> DatasetStatus:
    """Status of a dataset, or of the part a path inside it names (compared with that part of the tree)."""
    try:
        part = narrow(project, t)
    except CacheError as exc:
        raise CacheError(f"{t.path}: {exc.message}", f"run: vtool fetch {t.path}") from None
    if part is None:
        if not os.path.lexists(project.root / t.path):
            raise UsageError(f"{t.path}: no such file or folder in the dataset {t.ds.data_rel} or the workspace")
        return DatasetStatus(t.path, t.ds.pointer_rel, t.pointer.kind, MODIFIED, added=[""])
    return _one(project, part.ds, part.pointer)


def _one(project: Project, ds: Dataset, pointer: Pointer) -> DatasetStatus:
    if not os.path.lexists(project.root / ds.data_rel):
        missing = count_missing(project, pointer, None)
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, NOT_IN_WORKSPACE, missing_from_cache=missing)
    tree = project.scan(ds.data_rel, baseline=_baseline(project, pointer))
    if matches(tree, pointer):
        if tree.complete:
            missing = count_missing(project, pointer, tree)
        elif holds_all(project, pointer):
            missing = 0
        else:  # count exactly what is missing
            missing = count_missing_scanned(project, pointer, ds.data_rel)
        state = NOT_IN_CACHE if missing else IN_SYNC
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, state, missing_from_cache=missing,
                             hashed=tree.hashed)
    added, modified, deleted = _changes(project, pointer, tree)
    if not tree.complete and not (added or modified or deleted):  # a reused folder's manifest was needed
        tree = project.scan(ds.data_rel)
        added, modified, deleted = _changes(project, pointer, tree)
    return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, MODIFIED, added, modified, deleted,
                         count_missing(project, pointer, None), tree.hashed)


def _baseline(project: Project, pointer: Pointer) -> Baseline | None:
    """Compare a scan with a folder pointer: folders unchanged since the last scan and equal to the pointer's
    are then taken as remembered (the Tree is not complete)."""
    return Baseline(pointer.oid, tree_loader(project)) if pointer.kind == Kind.DIR else None


def _changes(project: Project, pointer: Pointer, tree: Tree) -> tuple[list[str], list[str], list[str]]:
    """List changed files, when the pointer's manifests are at hand."""
    if pointer.kind != Kind.DIR or tree.kind != Kind.DIR:
        return [], [""], []
    loader = tree_loader(project, tree)
    try:
        changes = manifest.diff(loader, pointer.oid, tree.oid)
    except CacheError:
        return [], [], []
    return sorted(changes.added), sorted(changes.modified), sorted(changes.deleted)


def tree_loader(project: Project, tree: Tree | None = None) -> manifest.Loader:
    """Load manifests from a scanned tree first, then from the cache."""
    def load(oid: Oid) -> list[Entry]:
        if tree is not None and oid in tree.manifests:
            return tree.load(oid)
        return project.read_manifest(oid)[0]
    return load


def holds_all(project: Project, pointer: Pointer) -> bool:
    """Tell, without listing the cache, that it held every object of the pointer and nothing has left it since."""
    return project.whole_in_cache(pointer, project.cache.signature())


def count_missing(project: Project, pointer: Pointer, tree: Tree | None) -> int:
    """Count the pointer's objects (files and manifests) the cache lacks; truncation is checkout's and verify's job.

    tree, when given, must be complete. A root found whole before is not listed again while the cache's
    signature says nothing has left the cache since.
    """
    cache = project.cache
    if pointer.kind == Kind.FILE:
        return 0 if cache.has(pointer.oid, pointer.size) else 1
    signature = cache.signature()  # taken before the listing: an object removed after it changes it
    if project.whole_in_cache(pointer, signature):
        return 0
    if tree is not None:
        assert tree.complete, "count_missing needs every manifest and file of the tree"
        manifests = list(tree.manifests)
        files = tree.file_oids.values()
    else:
        try:
            walked = list(manifest.walk(tree_loader(project), pointer.oid))
        except CacheError:
            return 1
        manifests = [pointer.oid] + [e.oid for _, e in walked if e.is_dir]
        files = [e for _, e in walked if not e.is_dir]
    missing = len(cache.missing({*manifests, *(e.oid for e in files)}))
    if not missing:
        project.remember_whole(pointer.oid, signature)
    return missing


def count_missing_scanned(project: Project, pointer: Pointer, data_rel: str) -> int:
    """Count what the cache lacks of a workspace folder equal to its pointer, scanning it one folder at a time
    (each folder's objects looked up as it is built), so a huge tree is never held whole."""
    cache = project.cache
    signature = cache.signature()  # taken before the lookups: an object removed after it changes it
    missing = 0

    def count(_: str, oid: Oid, data: bytes, files: list[tuple[str, Entry]]) -> None:
        nonlocal missing
        missing += len(cache.missing({oid, *(e.oid for _, e in files)}))

    project.scan(data_rel, sink=count)
    if not missing:
        project.remember_whole(pointer.oid, signature)
    return missing
