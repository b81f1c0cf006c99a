"""`vtool checkout [TARGETS]`, and the one recipe that makes the workspace match pointers (pull.py fetches, then
calls it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vtool import manifest
from vtool.errors import CorruptObjectError, FormatError, MissingObjectsError, WouldLoseDataError
from vtool.fsutil import check_real_folder, is_temp_name, make_dirs_inside, remove_file
from vtool.hashing import Oid
from vtool.manifest import Entry
from vtool.ops.project import Dataset, Project, file_entry, open_project
from vtool.ops.status import tree_loader
from vtool.ops.targets import Tracked, narrowed, workspace_pointers
from vtool.pointer import Kind, Pointer
from vtool.progress import NULL_PROGRESS, Progress
from vtool.statcache import Stamp
from vtool.workspace import Baseline, link_out, write_out

VERIFIED_KEY = "\0verified/"
# Written files entered in the stat cache at a time: bounds what a checkout holds per file, not the tree.
REMEMBER_BATCH = 4096


@dataclass(frozen=True)
class CheckedOut:
    """What checkout changed in one dataset."""

    path: str
    written: int
    deleted: int
    unchanged: int


@dataclass(frozen=True)
class CheckoutResult:
    """Every dataset checkout touched."""

    datasets: list[CheckedOut]


@dataclass
class Plan:
    """The changes one dataset needs, computed before anything is written."""

    ds: Dataset
    pointer: Pointer
    write: dict[str, Entry] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: bool = False
    # Planned by folder oids: the folders the target lacks (None: each one `folders` does not list).
    gone: set[str] | None = None
    # Nothing is there yet: the whole tree of this manifest is written, streamed from it folder by folder.
    tree: Oid | None = None

    def files(self, project: Project) -> Iterator[tuple[str, Entry]]:
        """Yield what to write by dataset-relative path: the planned files, or the whole tree's as it is read."""
        if self.tree is None:
            yield from ((rel, self.write[rel]) for rel in sorted(self.write))
        else:
            yield from ((rel, e) for rel, e in manifest.walk(tree_loader(project), self.tree) if not e.is_dir)

    @property
    def writes(self) -> tuple[int, int]:
        """Return how many files the plan writes and their bytes."""
        if self.tree is not None:
            return self.pointer.files, self.pointer.size
        return len(self.write), sum(e.size for e in self.write.values())


def checkout(targets: list[str], force: bool = False, progress: Progress = NULL_PROGRESS,
             verify: bool = False) -> CheckoutResult:
    """Plan every dataset, refuse if data would be lost or objects are missing, then apply."""
    with open_project(progress) as project:
        wanted = narrowed(project, workspace_pointers(project, targets))
        return CheckoutResult(update_workspace(project, wanted, force=force, verify=verify))


def update_workspace(project: Project, wanted: list[Tracked], before: Iterable[Tracked] = (), force: bool = False,
                     verify: bool = False, then: Callable[[], None] | None = None) -> list[CheckedOut]:
    """Make the workspace match the wanted pointers, removing the data of datasets in before that leave.

    The one recipe of checkout, checkout REV, rollback, pull and the post-checkout hook: plan everything,
    refuse before anything is written, run then (git moving HEAD), then write.
    """
    plans = [plan(project, t.ds, t.pointer) for t in wanted] + leaving(project, before, wanted)
    check_plans(project, plans, force)
    if then is not None:
        then()
    return [_apply(project, p, verify) for p in plans]


def leaving(project: Project, before: Iterable[Tracked], after: list[Tracked]) -> list[Plan]:
    """Plan removing the data of datasets tracked before and not after (only what is in the workspace)."""
    kept = {t.ds.data_rel for t in after}
    return [plan_removal(project, t.ds, t.pointer) for t in before
            if t.ds.data_rel not in kept and os.path.lexists(project.root / t.ds.data_rel)]


def check_plans(project: Project, plans: list[Plan], force: bool) -> None:
    """Refuse plans that would lose uncached data (unless forced) or need objects the cache lacks or holds cut."""
    lost = [f"{p.ds.data_rel}/{rel}".rstrip("/") for p in plans for rel in p.lost]
    if lost and not force:
        raise WouldLoseDataError(lost, "checkout")
    cache = project.cache
    missing: set[Oid] = set()
    needed: dict[Oid, Entry] = {}  # only the objects held at the wrong size: streamed plans hold no file list
    for _, e in (f for p in plans for f in p.files(project)):
        if not cache.has(e.oid):
            missing.add(e.oid)
        elif not missing and not cache.has(e.oid, e.size):
            needed.setdefault(e.oid, e)
    if missing:
        raise MissingObjectsError(sorted(missing), "the cache (run: vtool fetch, or vtool pull)")
    truncated = sorted(needed)
    if truncated:
        oid = truncated[0]
        actual = cache.size(oid)
        if cache.verify(oid):  # intact bytes: the manifest or pointer lies about the size
            raise FormatError(f"a pointer or manifest says object {oid} has {needed[oid].size} bytes, "
                              f"but it has {actual}", "the pointer or manifest is wrong: fix or revert it")
        raise CorruptObjectError(
            f"cache object {oid} has {actual} bytes, expected {needed[oid].size}"
            + (f" (and {len(truncated) - 1} more object(s) of the wrong size)" if len(truncated) > 1 else ""),
            "run: vtool fetch to repair it, then checkout again",
        )


def target_files(project: Project, pointer: Pointer) -> tuple[dict[str, Entry], set[str]]:
    """Return the pointer's files by dataset-relative path, and its folders."""
    if pointer.kind == Kind.FILE:
        return {"": file_entry(pointer)}, set()
    files: dict[str, Entry] = {}
    folders: set[str] = set()
    for path, entry in manifest.walk(tree_loader(project), pointer.oid):
        (folders.add(path) if entry.is_dir else files.__setitem__(path, entry))
    return files, folders


def plan(project: Project, ds: Dataset, pointer: Pointer) -> Plan:
    """Work out what to write and delete for one dataset, and what that would lose."""
    path = project.root / ds.data_rel
    check_real_folder(project.root, path)  # before reading anything through it
    project.claim_totals(pointer, ds.pointer_rel)  # a tree bigger than its pointer says is refused as it is read
    if pointer.kind == Kind.DIR and path.is_dir() and not path.is_symlink():
        return _plan_folders(project, ds, pointer)
    if pointer.kind == Kind.DIR and not os.path.lexists(path):  # a fresh clone: nothing to compare or lose
        return Plan(ds, pointer, gone=set(), tree=pointer.oid)
    wanted, folders = target_files(project, pointer)
    result = Plan(ds, pointer, folders=folders)
    current: dict[str, Entry] = {}
    if os.path.lexists(project.root / ds.data_rel):
        tree = project.scan(ds.data_rel)
        current = tree.file_oids
    base = project.root / ds.data_rel
    for rel, entry in wanted.items():
        have = current.get(rel)
        if have is not None and have.oid == entry.oid and have.kind == entry.kind:
            result.unchanged += 1
            continue
        result.write[rel] = entry
        if have is not None and have.oid != entry.oid and not cache_keeps(project, base / rel if rel else base, have):
            result.lost.append(rel)
    for rel, have in current.items():
        if rel not in wanted:
            result.delete.append(rel)
            if not cache_keeps(project, base / rel if rel else base, have):
                result.lost.append(rel)
    return result


def _plan_folders(project: Project, ds: Dataset, pointer: Pointer) -> Plan:
    """Plan a folder over a folder one folder at a time: each folder the scan rebuilds is compared with the
    target's folder at the same place as it is built, then dropped, so memory follows the changes, not the tree.

    The scan takes folders the stat cache remembers unchanged with the target's oid as they are, and a rebuilt
    folder with the target's oid is equal to it: an untouched, unchanged folder costs one stat per file.
    """
    load = tree_loader(project)
    target = _target_folders(load, pointer.oid)
    changes = manifest.TreeDiff({}, {}, {})

    def compare(prefix: str, oid: Oid, data: bytes, files: list[tuple[str, Entry]]) -> None:
        want = target(prefix)
        if want != oid:
            manifest.diff_folder(load, manifest.decode(data, oid), want, prefix, changes)

    project.scan(ds.data_rel, baseline=Baseline(pointer.oid, load), sink=compare)
    base = project.root / ds.data_rel
    result = Plan(ds, pointer, folders=changes.added_folders, gone=changes.deleted_folders)
    result.write = {**changes.added, **{rel: want for rel, (_, want) in changes.modified.items()}}
    result.delete = sorted(changes.deleted)
    result.unchanged = pointer.files - len(result.write)
    for rel, (have, want) in changes.modified.items():
        if have.oid != want.oid and not cache_keeps(project, base / rel, have):
            result.lost.append(rel)
    result.lost += [rel for rel, have in changes.deleted.items() if not cache_keeps(project, base / rel, have)]
    return result


def _target_folders(load: manifest.Loader, root: Oid) -> Callable[[str], Oid | None]:
    """Find the target tree's folder at a dataset-relative prefix ("" or "a/b/"), None where it has none;
    each target folder's subfolders are listed once (a dict per folder, never its files)."""
    subfolders: dict[str, dict[str, Oid]] = {}

    def at(prefix: str) -> Oid | None:
        if not prefix:
            return root
        parent, _, name = prefix[:-1].rpartition("/")
        parent_prefix = f"{parent}/" if parent else ""
        oid = at(parent_prefix)
        if oid is None:
            return None
        dirs = subfolders.get(parent_prefix)
        if dirs is None:
            dirs = subfolders[parent_prefix] = {e.name: e.oid for e in load(oid) if e.is_dir}
        return dirs.get(name)

    return at


def cache_keeps(project: Project, path: Path, have: Entry) -> bool:
    """Make sure the cache holds a good copy of a workspace file before it is replaced or deleted.

    Presence at the right size is not enough: an object whose bytes rotted (a flipped bit) would leave
    the workspace file as the only good copy. The object is hashed unless the stat cache vouches for it;
    a rotten one is moved to quarantine and replaced by the workspace file itself, the good copy.
    """
    cache = project.cache
    if not cache.has(have.oid, have.size):
        return False
    loose = cache.is_loose(have.oid)  # small objects live in packs: cheap to hash, no stamp of their own
    if loose and _known_good(project, cache.path(have.oid), have):
        return True
    if cache.verify(have.oid):
        if loose:
            project.stats.record(VERIFIED_KEY + have.oid, Stamp.of(os.stat(cache.path(have.oid))), have.oid)
        return True
    cache.quarantine(have.oid)
    try:
        oid, _ = cache.insert_file(path)
    except OSError:
        return False
    return oid == have.oid


def plan_removal(project: Project, ds: Dataset, pointer: Pointer) -> Plan:
    """Plan deleting a dataset's data entirely (it does not exist at the target revision)."""
    result = Plan(ds, pointer, removed=True)
    check_real_folder(project.root, project.root / ds.data_rel)
    tree = project.scan(ds.data_rel)
    base = project.root / ds.data_rel
    for rel, have in tree.file_oids.items():
        result.delete.append(rel)
        if not cache_keeps(project, base / rel if rel else base, have):
            result.lost.append(rel)
    return result


def _apply(project: Project, p: Plan, verify: bool) -> CheckedOut:
    base = project.root / p.ds.data_rel
    # Checked again at write time: `vtool checkout REV` runs git between planning and applying.
    one_per_folder = {os.path.dirname(rel): rel for rel in p.delete if rel}
    for rel in [*one_per_folder.values(), ""]:
        check_real_folder(project.root, base / rel if rel else base)
    for rel in p.delete:
        remove_file(base / rel if rel else base)
    _prune_folders(base, p)
    corrupt: list[str] = []
    progress = project.progress
    count, nbytes = p.writes
    progress.start(f"checkout {p.ds.data_rel}", total=count, total_bytes=nbytes)
    written: list[tuple[str, Path, Entry, Stamp]] = []
    for rel, entry in p.files(project):
        try:
            written.append(_write_one(project, base, p.ds.data_rel, rel, entry, verify))
        except CorruptObjectError:
            project.cache.quarantine(entry.oid)  # useless as it is; fetch restores it
            corrupt.append(entry.oid)
        progress.advance(1, entry.size)
        if len(written) >= REMEMBER_BATCH:
            _remember(project, written)
            written.clear()
            project.stats.flush_if_full()  # a batch of rows at a time, not a queue of the whole tree
    progress.done()
    _remember(project, written)
    if p.tree is not None:
        _make_folders(project, base, p.tree)
    for folder in sorted(p.folders | ({""} if p.pointer.kind == Kind.DIR and not p.removed else set())):
        make_dirs_inside(project.root, base / folder if folder else base)  # "": a folder dataset with no files
    if corrupt:
        raise CorruptObjectError(
            f"{len(corrupt)} corrupt cache object(s) not checked out and moved to the cache's quarantine/: "
            f"{', '.join(corrupt[:3])}", "run: vtool pull to restore them from the remote")
    return CheckedOut(p.ds.data_rel, count, len(p.delete), p.unchanged)


def _make_folders(project: Project, base: Path, tree: Oid) -> None:
    """Create every folder of a streamed tree, empty ones included (the files made the others)."""
    for rel, entry in manifest.walk(tree_loader(project), tree):
        if entry.is_dir:
            make_dirs_inside(project.root, base / rel)


def _prune_folders(base: Path, p: Plan) -> None:
    """Remove folders the target lacks once they are empty (deepest first); a file target replaces its folder.

    Temp files a killed checkout left behind go too: under the repo lock no other process writes here,
    and their names end like the real file's (`*.csv` globs would find them).
    """
    if not base.is_dir() or base.is_symlink():
        return
    keep = set(p.folders) if p.pointer.kind == Kind.DIR and not p.removed else None
    # Bottom-up, one folder's names at a time: sorting the whole walk held every file name of the tree.
    for folder, _, names in os.walk(base, topdown=False):
        for name in names:
            if is_temp_name(name):
                remove_file(Path(folder, name))
        rel = os.path.relpath(folder, base)
        if not _kept(p, keep, rel):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def _kept(p: Plan, keep: set[str] | None, rel: str) -> bool:
    """Tell whether a workspace folder stays: one the target has (planned by oids: one it does not lack)."""
    if p.gone is not None:
        return rel not in p.gone
    return keep is not None and (rel == "." or rel in keep)


def _remember(project: Project, written: list[tuple[str, Path, Entry, Stamp]]) -> None:
    """Enter written files in the stat cache, so status right after checkout hashes nothing.

    Stamps are refreshed once a batch of files is written: a later hard link to the same object changes the
    ctime of every file sharing it (one in a later batch only costs a re-hash). A file whose size or mtime
    moved meanwhile was edited: not trusted.
    """
    for repo_rel, dest, entry, first in written:
        now = Stamp.of(os.stat(dest))
        if (now.ino, now.size, now.mtime_ns) == (first.ino, first.size, first.mtime_ns):
            project.stats.record(repo_rel, now, entry.oid)


def _write_one(project: Project, base: Path, data_rel: str, rel: str, entry: Entry,
               verify: bool) -> tuple[str, Path, Entry, Stamp]:
    dest = base / rel if rel else base
    make_dirs_inside(project.root, dest.parent)
    if os.path.isdir(dest) and not os.path.islink(dest):
        os.rmdir(dest)
    repo_rel = f"{data_rel}/{rel}" if rel else data_rel
    if not project.cache.is_loose(entry.oid):  # packed: written from its verified bytes, never linked
        write_out(project.cache.read_bytes(entry.oid), dest, entry)
        return repo_rel, dest, entry, Stamp.of(os.stat(dest))
    src = project.cache.path(entry.oid)
    known_good = not verify and _known_good(project, src, entry)
    if link_out(src, dest, entry, project.config.link, known_good):
        project.stats.record(VERIFIED_KEY + entry.oid, Stamp.of(os.stat(src)), entry.oid)
    return repo_rel, dest, entry, Stamp.of(os.stat(dest))


def _known_good(project: Project, src: Path, entry: Entry) -> bool:
    """Tell whether this object was hashed before and has not changed since."""
    return project.stats.lookup(VERIFIED_KEY + entry.oid, Stamp.of(os.stat(src))) == entry.oid
