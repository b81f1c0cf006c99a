"""The objects that pointers reach, walked through their manifests in the cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vtool import gitrepo, manifest
from vtool.errors import CacheError
from vtool.hashing import Obj, Oid
from vtool.manifest import Entry
from vtool.ops.project import Project
from vtool.ops.targets import Tracked, narrow, revision_pointers, workspace_pointers
from vtool.pointer import Kind, Version
from vtool.store.oidindex import DigestSet

ManifestReader = Callable[[Oid], tuple[list[Entry], int]]


@dataclass
class ObjectSet:
    """Objects reachable from some pointers: files, manifests deepest first, and manifests the cache lacks."""

    files: dict[Oid, Obj] = field(default_factory=dict)
    manifests: list[Obj] = field(default_factory=list)
    unreadable: dict[Oid, str] = field(default_factory=dict)


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
    unreadable: dict[Oid, str] = {}  # manifests on the way down to a target
    result = reach(project.read_manifest, versions(project, tracked, unreadable))
    result.unreadable.update(unreadable)
    return result


def versions(project: Project, tracked: list[Tracked], unreadable: dict[Oid, str]) -> Iterator[Version]:
    """Yield the version each pointer's target names; a manifest on the way down that cannot be read is recorded."""
    for whole in tracked:
        try:
            item = narrow(project, whole)
        except CacheError as exc:
            unreadable[whole.pointer.oid] = str(exc)
            continue
        if item is not None:
            yield item.pointer.version


@dataclass(frozen=True, slots=True)
class Folder:
    """One manifest met by a walk: its oid, byte size and entries."""

    oid: Oid
    size: int
    entries: list[Entry]


def folders(read: ManifestReader, roots: Iterable[Oid], seen: set[Oid],
            unreadable: dict[Oid, str]) -> Iterator[Folder]:
    """Yield each manifest under roots once, after every manifest it names (the order a push must follow).

    Only the folders on the way down are held, so a walk of a million files keeps a few folders' entries;
    seen (one per manifest) is shared across calls so a subtree met again is not walked again.
    """
    for root in roots:
        yield from _folders_under(read, root, 0, seen, unreadable)


def _folders_under(read: ManifestReader, oid: Oid, depth: int, seen: set[Oid],
                   unreadable: dict[Oid, str]) -> Iterator[Folder]:
    if not _first_visit(oid, depth, seen):
        return
    try:
        entries, size = read(oid)
    except CacheError as exc:
        unreadable[oid] = str(exc)
        return
    for e in entries:
        if e.is_dir:
            yield from _folders_under(read, e.oid, depth + 1, seen, unreadable)
    yield Folder(oid, size, entries)


def reached_objects(project: Project, tracked: list[Tracked], unreadable: dict[Oid, str]) -> Iterator[Obj]:
    """Yield every object the pointers reach, files then their folder's manifest, one folder at a time.

    Nothing is kept per file (a file named in several folders comes once per folder), so checks that only
    count what is lacking walk a million files in a folder's memory; manifests that cannot be read are recorded.
    """
    seen: set[Oid] = set()  # one per manifest: bounded by the folder count
    for v in versions(project, tracked, unreadable):
        if v.kind == Kind.FILE:
            yield Obj(v.oid, v.size)
            continue
        for folder in folders(project.read_manifest, [v.oid], seen, unreadable):
            yield from (Obj(e.oid, e.size) for e in folder.entries if not e.is_dir)
            yield Obj(folder.oid, folder.size)


def reach_set(read: ManifestReader, reached: Iterable[Version], unreadable: dict[Oid, str]) -> DigestSet:
    """Every object the versions reach, manifests included, in 16 bytes each (what gc keeps at a million files)."""
    keep = DigestSet()
    seen: set[Oid] = set()
    for v in reached:
        if v.kind == Kind.FILE:
            keep.add(v.oid)
            continue
        for folder in folders(read, [v.oid], seen, unreadable):
            keep.add(folder.oid)
            keep.update(e.oid for e in folder.entries if not e.is_dir)
    return keep


def reach(read: ManifestReader, versions: Iterable[Version]) -> ObjectSet:
    """The one walk of manifest trees by object: every object the versions reach, each shared subtree once.

    read returns a manifest's entries and byte size, or raises CacheError (the manifest is then unreadable).
    """
    result = ObjectSet()
    seen: set[Oid] = set()
    for v in versions:
        if v.kind == Kind.FILE:
            result.files[v.oid] = Obj(v.oid, v.size)
            continue
        for folder in folders(read, [v.oid], seen, result.unreadable):
            for e in folder.entries:
                if not e.is_dir:
                    result.files.setdefault(e.oid, Obj(e.oid, e.size))
            result.manifests.append(Obj(folder.oid, folder.size, tuple(e.oid for e in folder.entries)))
    return result


def _first_visit(oid: Oid, depth: int, seen: set[Oid]) -> bool:
    """Mark a manifest as walked, its depth checked, so a subtree shared by several folders is read once."""
    if oid in seen:
        return False
    manifest.check_depth(depth, oid)
    seen.add(oid)
    return True


def files_below(read: ManifestReader, roots: Iterable[Oid]) -> Iterator[Obj]:
    """Yield the file objects the manifest trees under roots name, one folder at a time, each shared subtree once.

    Unlike reach, nothing is kept per file, so a walk of a million files holds one folder's entries; a
    file named in several folders comes once per folder. Manifests that cannot be read are skipped:
    the fetch that should have brought them has reported them.
    """
    seen: set[Oid] = set()  # one per manifest: bounded by the folder count
    for root in roots:
        yield from _files_under(read, root, 0, seen)


def _files_under(read: ManifestReader, oid: Oid, depth: int, seen: set[Oid]) -> Iterator[Obj]:
    if not _first_visit(oid, depth, seen):
        return
    try:
        entries, _ = read(oid)
    except CacheError:
        return
    below = [e.oid for e in entries if e.is_dir]
    yield from (Obj(e.oid, e.size) for e in entries if not e.is_dir)
    del entries
    for child in below:
        yield from _files_under(read, child, depth + 1, seen)
