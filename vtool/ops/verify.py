"""`vtool verify`: re-hash every object the targets reach (cache or remote) and their workspace files."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from vtool import manifest
from vtool.cache import Cache
from vtool.errors import CacheError, FormatError, RemoteObjectMissingError
from vtool.hashing import OID_PREFIX, HashingSink, Oid
from vtool.manifest import MAX_MANIFEST_BYTES, Entry
from vtool.ops import objects
from vtool.ops.project import Project, matches, open_project
from vtool.ops.status import IN_SYNC, MODIFIED, NOT_IN_WORKSPACE, DatasetStatus, tree_loader
from vtool.ops.sync import connected
from vtool.ops.targets import Tracked, narrowed, workspace_pointers
from vtool.pointer import Kind
from vtool.progress import NULL_PROGRESS, Progress
from vtool.store import remote as store
from vtool.store.index import MARK_PACK, Mark
from vtool.store.layout import object_key, pack_key
from vtool.store.pack import PackInfo, Slot
from vtool.transfer import Target
from vtool.workers import pooled

CORRUPT = "corrupt"
TRUNCATED = "truncated"
MISSING = "missing"
NOT_FETCHED = "missing (not fetched)"
NOT_PUSHED = "missing (not pushed)"
CACHE = "cache"
# The object is intact (its bytes hash to its name) but a manifest or pointer gives it another size:
# the manifest is wrong, not the object, so the object is kept.
WRONG_SIZE = "size mismatch"
NOT_A_MANIFEST = "not a manifest"
FILE = "file"
MANIFEST = "manifest"


@dataclass(frozen=True)
class BadObject:
    """An object that is missing, or whose bytes do not match its name or size, and the datasets reaching it."""

    oid: Oid
    kind: str
    problem: str
    size: int | None
    datasets: list[str]
    removed: bool


@dataclass(frozen=True)
class VerifyResult:
    """What was re-hashed where, what is bad, what is not there at all, and how each workspace dataset compares.

    missing is kept apart from bad: an object never fetched (or never pushed) is absent, not corrupt, and
    each has its own fix.
    """

    target: str
    objects: int
    nbytes: int
    bad: list[BadObject]
    workspace: list[DatasetStatus] = field(default_factory=list)
    missing: list[BadObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether every object present is intact and no workspace file differs from its pointer."""
        return not self.bad and all(d.state != MODIFIED for d in self.workspace)


@dataclass(frozen=True)
class _Check:
    """One object's verdict: its problem (None when intact), bytes read, manifest bytes to walk, removal."""

    problem: str | None = None
    nbytes: int = 0
    data: bytes | None = None
    removed: bool = False


def verify(targets: list[str], remote_name: str | None = None, jobs: int | None = None,
           progress: Progress = NULL_PROGRESS, sample: tuple[int, int] | None = None) -> VerifyResult:
    """Check the cache and workspace (or, with a remote, that remote) for the targets' pointers."""
    with open_project(progress) as project:
        tracked = narrowed(project, workspace_pointers(project, targets))
        if remote_name is not None:
            with connected(project, remote_name, jobs) as (target, n):
                source = _RemoteSource(target, project.cache, sample)
                result = _verify_objects(target.name, tracked, source, n, progress)
                source.finish()
                return result
        n = jobs or project.config.jobs
        # The workspace first: with cache.link=symlink its files are the very objects we may remove next.
        workspace = [_workspace(project, t, n) for t in tracked]
        result = _verify_objects(CACHE, tracked, _CacheSource(project.cache), n, progress)
        return replace(result, workspace=workspace)


class _CacheSource:
    """Reads objects from the cache; removes the corrupt ones, which fetch (checking sizes only) would not replace."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def prepare(self, sizes: dict[Oid, int], jobs: int) -> None:
        """Nothing to read ahead: local reads are cheap one by one."""

    def manifest(self, oid: Oid) -> _Check:
        size = self.cache.size(oid)
        if size is None:
            return _Check(MISSING)
        if size > manifest.MAX_MANIFEST_BYTES:
            return _Check(NOT_A_MANIFEST, size)  # an intact object, maybe: a pointer lies
        got, nbytes, ino = self.cache.rehash(oid)
        if got is None:
            return _Check(MISSING)
        if got != oid:
            return _Check(CORRUPT, nbytes, removed=self.cache.quarantine(oid, ino))
        return _decoded(oid, self.cache.read_bytes(oid))

    def file(self, oid: Oid, size: int) -> _Check:
        got, nbytes, ino = self.cache.rehash(oid)
        if got is None:
            return _Check(MISSING)
        if got == oid:
            return _Check(None if nbytes == size else WRONG_SIZE, nbytes)
        moved = self.cache.quarantine(oid, ino)
        return _Check(TRUNCATED if nbytes != size else CORRUPT, nbytes, removed=moved)


class _RemoteSource:
    """Streams objects from a remote into hashing sinks (never into the cache).

    A corrupt loose object is removed (push uploads it again); a pack holding a corrupt object is marked
    for gc, so pushes stop counting on it and upload its objects anew.
    """

    def __init__(self, target: Target, cache: Cache, sample: tuple[int, int] | None = None) -> None:
        self.target = target
        self.cache = cache
        self.sample = sample
        self.bad_packs: set[str] = set()
        self._read_ahead: dict[Oid, int] = {}
        self._failed: dict[Oid, str] = {}

    def prepare(self, sizes: dict[Oid, int], jobs: int) -> None:
        """Check every sampled packed object by coalesced ranged reads of its pack, not one GET per object."""
        by_pack: dict[str, tuple[PackInfo, list[Slot]]] = {}
        for oid in sizes:
            found = self.target.view.locate(oid)
            if found is not None and self.sampled(oid):
                by_pack.setdefault(found[0].name, (found[0], []))[1].append(found[1])
        ranges = [r for info, slots in by_pack.values() for r in store.plan_ranges(info, slots)]

        def seen(oid: Oid, data: bytes) -> None:
            self._read_ahead[oid] = len(data)

        for failed in pooled(lambda r: store.fetch_range(self.target.remote, r, seen), ranges, jobs):
            self._failed.update(failed)

    def _get(self, oid: Oid, sink: HashingSink) -> str | None:
        """Stream the object into sink; return the pack it came from (None when loose)."""
        found = self.target.view.locate(oid)
        if found is None:
            self.target.remote.get(object_key(oid), sink)  # type: ignore[arg-type]
            return None
        info, slot = found
        self.target.remote.get(pack_key(info.name), sink, slot.offset, slot.length)  # type: ignore[arg-type]
        return info.name

    def _condemn(self, oid: Oid, pack_name: str | None) -> bool:
        if pack_name is None:
            self.target.remote.remove(object_key(oid))
            return True
        self.bad_packs.add(pack_name)
        return False

    def sampled(self, oid: Oid) -> bool:
        """Tell whether `--sample N/T` selects this object (by its pack's name, or its own oid when loose)."""
        if self.sample is None:
            return True
        found = self.target.view.locate(oid)
        number = int(found[0].name, 16) if found else int(oid[len(OID_PREFIX):], 16)
        return number % self.sample[1] == self.sample[0]

    def manifest(self, oid: Oid) -> _Check:
        buffer = io.BytesIO()
        sink = HashingSink(_capped(buffer))
        try:
            where = self._get(oid, sink)
        except RemoteObjectMissingError:
            return _Check(MISSING, data=self._local(oid))
        except _TooLarge:  # unread, so unjudged: only a pointer or manifest calls this object a folder
            return _Check(NOT_A_MANIFEST, sink.size)
        data = buffer.getvalue()
        if sink.oid != oid:
            return _Check(CORRUPT, len(data), self._local(oid), removed=self._condemn(oid, where))
        return _decoded(oid, data)

    def _local(self, oid: Oid) -> bytes | None:
        """The cache's copy of a manifest the remote lacks, so the files below it still get checked."""
        try:
            return self.cache.read_bytes(oid)
        except CacheError:
            return None

    def file(self, oid: Oid, size: int) -> _Check:
        if not self.sampled(oid):
            return _Check()
        if oid in self._read_ahead:
            nbytes = self._read_ahead[oid]
            return _Check(None if nbytes == size else WRONG_SIZE, nbytes)
        if oid in self._failed:
            found = self.target.view.locate(oid)
            if "vanished" in self._failed[oid] or found is None:
                return _Check(MISSING)
            self.bad_packs.add(found[0].name)
            return _Check(CORRUPT, size)
        sink = HashingSink()
        try:
            where = self._get(oid, sink)
        except RemoteObjectMissingError:
            return _Check(MISSING)
        if sink.oid == oid:
            return _Check(None if sink.size == size else WRONG_SIZE, sink.size)
        removed = self._condemn(oid, where)
        return _Check(TRUNCATED if sink.size != size else CORRUPT, sink.size, removed=removed)

    def finish(self) -> None:
        """Mark every pack found holding a corrupt object, so the next push uploads its objects again."""
        if self.bad_packs:
            now = int(time.time())
            store.commit(self.target.view, [], [Mark(MARK_PACK, name, now) for name in sorted(self.bad_packs)])


def _decoded(oid: Oid, data: bytes) -> _Check:
    """An intact object that does not parse as a manifest is reported, never removed: what names it lies."""
    try:
        manifest.decode(data, oid)
    except FormatError:
        return _Check(NOT_A_MANIFEST, len(data))
    return _Check(None, len(data), data)


class _TooLarge(Exception):
    """A 'manifest' longer than any valid manifest."""


def _capped(buffer: io.BytesIO) -> Callable[[bytes], object]:
    """Keep a manifest's bytes, refusing more than any manifest can hold."""
    def keep(data: bytes) -> None:
        if buffer.tell() + len(data) > MAX_MANIFEST_BYTES:
            raise _TooLarge
        buffer.write(data)
    return keep


Source = _CacheSource | _RemoteSource


def _verify_objects(target: str, tracked: list[Tracked], source: Source, jobs: int,
                    progress: Progress) -> VerifyResult:
    """Check every manifest level by level, then every file they name, each object once."""
    checks = _check_manifests(tracked, source, jobs, progress)
    entries = {oid: manifest.decode(c.data, oid) for oid, c in checks.items() if c.data is not None}

    def read(oid: Oid) -> tuple[list[Entry], int]:
        if oid not in entries:
            raise CacheError(f"manifest {oid} could not be read")
        return entries[oid], 0

    reach: dict[Oid, set[str]] = {}
    sizes: dict[Oid, int] = {}
    for t in tracked:
        objs = objects.reach(read, [t.pointer.version])
        for oid in [*objs.unreadable, *(m.oid for m in objs.manifests), *objs.files]:
            reach.setdefault(oid, set()).add(t.ds.data_rel)
        for oid, obj in objs.files.items():
            sizes.setdefault(oid, obj.size or 0)
    source.prepare(sizes, jobs)
    files = _pool(jobs, lambda oid: source.file(oid, sizes[oid]), list(sizes), progress,
                  "verify", sum(sizes.values()))
    found = [BadObject(oid, MANIFEST, c.problem, None, sorted(reach[oid]), c.removed)
             for oid, c in checks.items() if c.problem is not None]
    found += [BadObject(oid, FILE, c.problem, sizes[oid], sorted(reach[oid]), c.removed)
              for oid, c in files.items() if c.problem is not None]
    absent = NOT_FETCHED if target == CACHE else NOT_PUSHED
    missing = [replace(b, problem=absent) for b in found if b.problem == MISSING]
    every = [c for c in [*checks.values(), *files.values()] if c.problem != MISSING]
    return VerifyResult(target, len(every), sum(c.nbytes for c in every), [b for b in found if b.problem != MISSING],
                        missing=missing)


def _check_manifests(tracked: list[Tracked], source: Source, jobs: int, progress: Progress) -> dict[Oid, _Check]:
    checks: dict[Oid, _Check] = {}

    def visit(level: list[Oid]) -> list[Oid]:
        got = _pool(jobs, source.manifest, level, progress, "verify manifests")
        checks.update(got)
        return [e.oid for oid, c in got.items() if c.data is not None for e in manifest.decode(c.data, oid) if e.is_dir]

    manifest.by_level([t.pointer.oid for t in tracked if t.pointer.kind == Kind.DIR], visit)
    return checks


def _pool(jobs: int, check: Callable[[Oid], _Check], oids: list[Oid], progress: Progress, what: str,
          total_bytes: int | None = None) -> dict[Oid, _Check]:
    """Run check over oids in a thread pool, reporting progress per object."""
    progress.start(what, total=len(oids), total_bytes=total_bytes)
    out: dict[Oid, _Check] = {}
    for oid, result in zip(oids, pooled(check, oids, jobs), strict=True):
        out[oid] = result
        progress.advance(1, result.nbytes)
    progress.done()
    return out


def _workspace(project: Project, t: Tracked, jobs: int) -> DatasetStatus:
    """Hash every workspace file of a dataset and compare it with the pointer, like status without its shortcuts."""
    ds, pointer = t.ds, t.pointer
    if not os.path.lexists(project.root / ds.data_rel):
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, NOT_IN_WORKSPACE)
    tree = project.scan(ds.data_rel, trust_stats=False, jobs=jobs)
    if matches(tree, pointer):
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, IN_SYNC, hashed=tree.hashed)
    added: list[str] = []
    modified: list[str] = [""]
    deleted: list[str] = []
    if pointer.kind == Kind.DIR and tree.kind == Kind.DIR:
        try:
            changes = manifest.diff(tree_loader(project, tree), pointer.oid, tree.oid)
            added, modified, deleted = sorted(changes.added), sorted(changes.modified), sorted(changes.deleted)
        except CacheError:
            modified = []  # the pointer's manifests are bad; the objects report says which
    return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, MODIFIED, added, modified, deleted,
                         hashed=tree.hashed)
