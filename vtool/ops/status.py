"""`vtool status`: workspace and cache against pointers (the pre-commit hook is ops/precommit.py)."""

from __future__ import annotations

import os
from dataclasses import InitVar, dataclass, field

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


# Paths of each kind of change a status keeps unless asked for all (the CLI prints these, then "... and N more").
SAMPLE_PATHS = 20
# Objects looked up in the cache at a time when counting what a pointer lacks (each batch lists a fan-out
# folder once, and only the batch is held).
MISSING_BATCH = 50_000


@dataclass(frozen=True)
class DatasetStatus:
    """How one dataset's workspace and cache compare with its pointer.

    added, modified and deleted list every changed path, or (a status not asked for all) the first
    SAMPLE_PATHS of each in order; counts says how many there are (an init-only argument, so --json's
    document keeps its keys).
    """

    path: str
    pointer: str
    kind: str
    state: str
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing_from_cache: int = 0
    hashed: int = 0
    counts: InitVar[tuple[int, int, int] | None] = None

    def __post_init__(self, counts: tuple[int, int, int] | None) -> None:
        object.__setattr__(self, "_changed", counts or (len(self.added), len(self.modified), len(self.deleted)))

    @property
    def changed(self) -> tuple[int, int, int]:
        """Return how many paths were added, modified and deleted (the lists may hold only a sample)."""
        return self._changed  # type: ignore[attr-defined,no-any-return]

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


class FolderCompare:
    """Compare each folder a scan rebuilds with the baseline's as the scan goes (a workspace.FolderVisit),
    so the rebuilt tree is never held for a diff; unknown turns True when a baseline manifest is unreadable."""

    def __init__(self, load: manifest.Loader, emit: manifest.Emit) -> None:
        self.load = load
        self.emit = emit
        self.unknown = False

    def __call__(self, prefix: str, before: list[Entry] | None, after: list[Entry]) -> None:
        if before is None:
            self.unknown = True
            return
        try:
            manifest.compare_folder(self.load, before, after, self.emit, prefix, prefix.count("/"), walk_new=False)
        except CacheError:
            self.unknown = True


class _Changes:
    """Count changed files by kind (added, modified, deleted), keeping the first `keep` paths of each in order."""

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.paths: tuple[list[str], list[str], list[str]] = ([], [], [])
        self.counts = [0, 0, 0]

    def emit(self, path: str, old: Entry | None, new: Entry | None) -> None:
        """Count one difference (a manifest.Emit); folders count only through their files."""
        if (old is not None and old.is_dir and new is None) or (new is not None and new.is_dir):
            return
        kind = 0 if old is None else 2 if new is None else 1
        self.counts[kind] += 1
        paths = self.paths[kind]
        paths.append(path)
        if self.keep is not None and len(paths) >= 2 * self.keep:  # a bounded sample: the first `keep` in order
            paths.sort()
            del paths[self.keep:]

    def lists(self) -> tuple[list[str], list[str], list[str]]:
        """Return the kept paths of each kind, in order."""
        added, modified, deleted = (sorted(p)[:self.keep] for p in self.paths)
        return added, modified, deleted


def status(targets: list[str], progress: Progress = NULL_PROGRESS, *, every_path: bool = False) -> StatusResult:
    """Report every selected dataset; hashes only files the stat cache cannot vouch for.

    Changed paths are counted, and only the first SAMPLE_PATHS of each kind kept unless every_path.
    """
    keep = None if every_path else SAMPLE_PATHS
    with open_project(progress) as project:
        return StatusResult([_target(project, t, keep) for t in workspace_pointers(project, targets)])


def _target(project: Project, t: Tracked, keep: int | None) -> DatasetStatus:
    """Status of a dataset, or of the part a path inside it names (compared with that part of the tree)."""
    try:
        part = narrow(project, t)
    except CacheError as exc:
        raise CacheError(f"{t.path}: {exc.message}", f"run: vtool fetch {t.path}") from None
    if part is None:
        if not os.path.lexists(project.root / t.path):
            raise UsageError(f"{t.path}: no such file or folder in the dataset {t.ds.data_rel} or the workspace")
        return DatasetStatus(t.path, t.ds.pointer_rel, t.pointer.kind, MODIFIED, added=[""])
    return _one(project, part.ds, part.pointer, keep)


def _one(project: Project, ds: Dataset, pointer: Pointer, keep: int | None) -> DatasetStatus:
    if not os.path.lexists(project.root / ds.data_rel):
        missing = _count_or_one(project, pointer)
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, NOT_IN_WORKSPACE, missing_from_cache=missing)
    changes = _Changes(keep)
    compare = FolderCompare(tree_loader(project), changes.emit)
    baseline = Baseline(pointer.oid, tree_loader(project), compare) if pointer.kind == Kind.DIR else None
    # Compared folder by folder as it is scanned: the scan keeps no folder (memory follows the largest one).
    tree = project.scan(ds.data_rel, baseline=baseline, sink=keep_none)
    if matches(tree, pointer):
        missing = count_missing(project, pointer)
        if missing is None:  # a manifest is missing too: the workspace names every object (count exactly)
            missing = count_missing_scanned(project, pointer, ds.data_rel)
        state = NOT_IN_CACHE if missing else IN_SYNC
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, state, missing_from_cache=missing,
                             hashed=tree.hashed)
    added, modified, deleted, counts = [], [], [], None  # no manifest of the pointer's: no file list
    if pointer.kind != Kind.DIR or tree.kind != Kind.DIR:
        modified = [""]
    elif not compare.unknown:
        (added, modified, deleted), counts = changes.lists(), (changes.counts[0], changes.counts[1], changes.counts[2])
    return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, MODIFIED, added, modified, deleted,
                         _count_or_one(project, pointer), tree.hashed, counts)


def _count_or_one(project: Project, pointer: Pointer) -> int:
    """Count what the cache lacks of a pointer; a missing manifest below the root counts as one."""
    missing = count_missing(project, pointer)
    return 1 if missing is None else missing


def keep_none(prefix: str, oid: Oid, data: bytes, files: list[tuple[str, Entry]]) -> None:
    """A scan sink that keeps no folder: status and diff compare each as it is built."""


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


def count_missing(project: Project, pointer: Pointer) -> int | None:
    """Count the pointer's objects (files and manifests) the cache lacks; truncation is checkout's and verify's job.

    The tree is read one manifest at a time and looked up in batches, never held whole; None when a manifest
    below the root is missing too (its files cannot be named). A root found whole before is not listed
    again while the cache's signature says nothing has left the cache since.
    """
    cache = project.cache
    if pointer.kind == Kind.FILE:
        return 0 if cache.has(pointer.oid, pointer.size) else 1
    signature = cache.signature()  # taken before the listing: an object removed after it changes it
    if project.whole_in_cache(pointer, signature):
        return 0
    missing = 0
    batch: set[Oid] = {pointer.oid}
    try:
        for _, e in manifest.walk(tree_loader(project), pointer.oid):
            batch.add(e.oid)
            if len(batch) >= MISSING_BATCH:
                missing += len(cache.missing(batch))
                batch.clear()
    except CacheError:
        return None
    missing += len(cache.missing(batch))
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
