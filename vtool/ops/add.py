"""`vtool add`: hash, cache, write the pointer, ignore the data in git."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vtool import pointer as ptr
from vtool.cache import Cache
from vtool.errors import FormatError, UsageError, WorkspaceError
from vtool.fsutil import atomic_write
from vtool.gitrepo import ensure_ignored, ignore_rules, is_tracked, list_pointer_files
from vtool.hashing import Oid
from vtool.manifest import KIND_EXEC, Entry
from vtool.ops.project import Dataset, Project, dataset_for, open_project, read_small_file
from vtool.ops.status import holds_all, tree_loader
from vtool.pointer import POINTER_SUFFIX, Kind, Pointer
from vtool.progress import NULL_PROGRESS, Progress
from vtool.statcache import settle
from vtool.workspace import Baseline, Hasher, Tree

# A status that cannot trust the cache's signature looks up every object (about 35 us each): from this many
# files on, waiting out the racy window once (50 ms) is cheaper.
WAIT_FOR_SIGNATURE_FILES = 2_000


@dataclass(frozen=True)
class Added:
    """One tracked path after add."""

    path: str
    pointer: str
    kind: str
    oid: Oid
    size: int
    files: int
    hashed: int
    changed: bool


@dataclass(frozen=True)
class IgnoredPointer:
    """A pointer add wrote that git ignores, and the ignore rule responsible (so it can be un-ignored)."""

    pointer: str
    source: str
    line: int
    pattern: str


@dataclass(frozen=True)
class AddResult:
    """Everything add did, the git command the user should run next, and pointers git would refuse to add."""

    added: list[Added]
    git_paths: list[str]
    ignored: list[IgnoredPointer]


def add(paths: list[str], progress: Progress = NULL_PROGRESS) -> AddResult:
    """Track each path: store its content, then write its pointer and ignore rule."""
    if not paths:
        raise UsageError("nothing to add", "name a file or folder: vtool add data/")
    with open_project(progress) as project:
        datasets = _disjoint([_checked(project, p) for p in paths])
        added = [_add_one(project, ds) for ds in datasets]
        rules = ignore_rules(project.root, [ds.pointer_rel for ds in datasets])
    ignored = [IgnoredPointer(path, *rule) for path, rule in rules.items()]
    git_paths: list[str] = []
    for ds in datasets:
        parent = ds.pointer_rel.rsplit("/", 1)[0] + "/" if "/" in ds.pointer_rel else ""
        git_paths += [parent + ".gitignore"] + ([] if ds.pointer_rel in rules else [ds.pointer_rel])
    return AddResult(added, sorted(set(git_paths)), ignored)


def _disjoint(datasets: list[Dataset]) -> list[Dataset]:
    """Drop repeats and refuse two paths of one call where one holds the other (`add other other/x`)."""
    unique = list(dict.fromkeys(datasets))
    for ds in unique:
        for other in unique:
            if ds.data_rel.startswith(other.data_rel + "/"):
                raise WorkspaceError(f"{ds.data_rel} is inside {other.data_rel}, which this add also tracks",
                                     f"add one of them: vtool add {other.data_rel}")
    return unique


def _checked(project: Project, user_path: str) -> Dataset:
    """Refuse paths that are missing, git-tracked, or nested in or around another dataset."""
    root = project.root
    ds = dataset_for(root, user_path)
    data = root / ds.data_rel
    if not os.path.lexists(data):
        raise UsageError(f"{user_path}: no such file or folder")
    if data.is_symlink():
        raise WorkspaceError(f"{user_path} is a symlink; vtool tracks files and folders, not links")
    ptr.check_component(ds.name, user_path)
    if is_tracked(root, ds.data_rel):
        raise WorkspaceError(
            f"{ds.data_rel} is tracked by git",
            f"untrack it first: git rm -r --cached {ds.data_rel} && git commit",
        )
    for other in list_pointer_files(root):
        other_data = other[: -len(POINTER_SUFFIX)]
        if ds.data_rel.startswith(other_data + "/"):
            raise WorkspaceError(f"{ds.data_rel} is inside {other_data}, which vtool already tracks")
        if other_data.startswith(ds.data_rel + "/"):
            raise WorkspaceError(f"{ds.data_rel} contains {other_data}, which vtool already tracks",
                                 f"remove {other} first")
    return ds


def _add_one(project: Project, ds: Dataset) -> Added:
    root, cache = project.root, project.cache
    old = _old_pointer(root / ds.pointer_rel)
    base = root / ds.data_rel
    stored: set[Oid] = set()
    tree = project.scan(ds.data_rel, _storing(cache, stored), baseline=_stored_baseline(project, old),
                        sink=lambda _, oid, data, files: _store_folder(project, base, oid, data, files, stored))
    if tree.kind == Kind.FILE:
        _store_folder(project, base, None, b"", list(tree.file_oids.items()), stored)
    cache.sync()  # every object durable before the pointer that names them
    if tree.kind == Kind.DIR:
        _remember_whole(project, tree)
    executable = tree.kind == Kind.FILE and tree.file_oids[""].kind == KIND_EXEC
    new = Pointer(ds.name, tree.kind, tree.oid, tree.size, tree.files,
                  old.meta if old else {}, old.extra if old else {}, executable)
    data = ptr.dumps(new)
    pointer_path = root / ds.pointer_rel
    changed = not pointer_path.exists() or pointer_path.read_bytes() != data
    if changed:
        atomic_write(pointer_path, data)
    ensure_ignored(pointer_path.parent, ds.name)
    return Added(ds.data_rel, ds.pointer_rel, tree.kind, tree.oid, tree.size, tree.files, tree.hashed, changed)


def _remember_whole(project: Project, tree: Tree) -> None:
    """Record that the cache now holds this whole version (add just stored every object it reaches), so the
    first status after add does not look every object up again.

    The cache's signature is withheld while its folders are inside the racy window; on a large tree add waits
    that window out (at most RACY_WINDOW_NS), which costs less than the lookups it spares.
    """
    signature = project.cache.signature()
    if signature is None and tree.files >= WAIT_FOR_SIGNATURE_FILES:
        settle(time.time_ns())
        signature = project.cache.signature()
    project.remember_whole(tree.oid, signature)


def _stored_baseline(project: Project, old: Pointer | None) -> Baseline | None:
    """Compare the scan with the previous version when the cache provably holds all of it: folders equal to
    it are then neither rebuilt nor stored again (status remembers such a whole version)."""
    if old is None or old.kind != Kind.DIR or not holds_all(project, old):
        return None
    return Baseline(old.oid, tree_loader(project))


def _old_pointer(path: Path) -> Pointer | None:
    """Read the previous pointer to keep its notes; a broken one must be fixed by hand, not dropped."""
    if not os.path.lexists(path):
        return None
    try:
        return ptr.loads(read_small_file(path, ptr.MAX_POINTER_BYTES, path.name), path.name)
    except FormatError as exc:
        raise FormatError(f"cannot update {path.name}: {exc}", f"fix or delete {path.name}, then add again") from None


def _storing(cache: Cache, stored: set[Oid]) -> Hasher:
    """Store every file the scan hashes and note its oid, so the folder's sink looks up only the files the stat
    cache vouched for (a lookup reads back the tables of the packs this add wrote: memory per tree)."""

    def stream(handle: BinaryIO) -> tuple[Oid, int]:
        oid, size = cache.insert(handle)
        stored.add(oid)
        return oid, size

    def whole(data: bytes, path: str) -> Oid:
        oid = cache.put_bytes(data, path)  # the path orders small objects in packs
        stored.add(oid)
        return oid

    return Hasher(stream, whole)


def _store_folder(project: Project, base: Path, oid: Oid | None, data: bytes, files: list[tuple[str, Entry]],
                  stored: set[Oid]) -> None:
    """Store a folder's manifest as the scan builds it, and any file the stat cache vouched for but the cache
    no longer holds; one folder at a time, so add holds a folder, not the tree.

    Folders the scan reused from the baseline never come here: the cache holds them whole already. stored
    holds what the scan hashed (and so stored) since the last folder: this folder's own files.
    """
    cache = project.cache
    if oid is not None:
        cache.put_manifest(data)
    vouched = [(rel, entry) for rel, entry in files if entry.oid not in stored]
    stored.clear()
    absent = cache.missing({entry.oid for _, entry in vouched}) if vouched else set()
    for rel, entry in vouched:
        if entry.oid in absent:
            path = base / rel if rel else base
            got, _ = cache.insert_file(path)
            if got != entry.oid:
                raise WorkspaceError(f"{path} changed while it was being added", "run vtool add again")
