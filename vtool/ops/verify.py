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
VERIFY_BATCH = 8_192  # files checked per round: verify holds these and one level's manifest chunk
MANIFEST_BATCH = 64  # manifests read per round of a level (a manifest of 1,000 files is about 100 KB)


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
        """Check a round's sampled packed objects by coalesced ranged reads of their packs, not one GET each."""
        self._read_ahead, self._failed = {}, {}
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
    """Check every manifest level by level and the files they name in rounds of VERIFY_BATCH, each round
    dropped once judged: memory follows the batch and the largest folder, not the tree."""
    walk = _Walk(source, jobs)
    progress.start("verify", total=sum(t.pointer.files for t in tracked),
                   total_bytes=sum(t.pointer.size for t in tracked))
    walk.progress = progress
    for t in tracked:
        if t.pointer.kind == Kind.DIR:
            walk.owners.setdefault(t.pointer.oid, set()).add(t.ds.data_rel)
        else:
            walk.want(t.pointer.oid, t.pointer.size, {t.ds.data_rel})
    manifest.by_level([t.pointer.oid for t in tracked if t.pointer.kind == Kind.DIR], walk.visit)
    walk.flush()
    progress.done()
    absent = NOT_FETCHED if target == CACHE else NOT_PUSHED
    found = list(walk.bad.values())
    missing = [replace(b, problem=absent) for b in found if b.problem == MISSING]
    return VerifyResult(target, walk.objects, walk.nbytes, [b for b in found if b.problem != MISSING],
                        missing=missing)


class _Walk:
    """What verify found so far, and the files waiting for the next round of checks.

    Each manifest is checked once (by_level), so a folder shared by two datasets names the datasets that
    reached it by the level it was checked at; a file reached again after its round is checked again,
    unless it was already found bad.
    """

    def __init__(self, source: Source, jobs: int) -> None:
        self.source = source
        self.jobs = jobs
        self.progress: Progress = NULL_PROGRESS
        self.owners: dict[Oid, set[str]] = {}  # manifests of the next level -> datasets reaching them
        self.pending: dict[tuple[Oid, int], set[str]] = {}
        self.bad: dict[Oid, BadObject] = {}
        self.objects = 0
        self.nbytes = 0

    def record(self, oid: Oid, kind: str, size: int | None, check: _Check, owners: set[str]) -> None:
        """Count one verdict and keep it when the object is bad or missing."""
        if check.problem != MISSING:
            self.objects += 1
            self.nbytes += check.nbytes
        if check.problem is not None and oid not in self.bad:
            self.bad[oid] = BadObject(oid, kind, check.problem, size, sorted(owners), check.removed)

    def want(self, oid: Oid, size: int, owners: set[str]) -> None:
        """Queue a file for the next round (a bad one is not checked again: it may be gone by now)."""
        bad = self.bad.get(oid)
        if bad is not None:
            self.bad[oid] = replace(bad, datasets=sorted({*bad.datasets, *owners}))
            return
        self.pending.setdefault((oid, size), set()).update(owners)  # each size claimed is checked
        if len(self.pending) >= VERIFY_BATCH:
            self.flush()

    def flush(self) -> None:
        """Check the queued files in parallel and keep only their verdicts' counts and the bad ones."""
        batch, self.pending = self.pending, {}
        claims = list(batch)
        self.source.prepare(dict(claims), self.jobs)
        checks = pooled(lambda claim: self.source.file(*claim), claims, self.jobs)
        for (oid, size), check in zip(claims, checks, strict=True):
            self.record(oid, FILE, size, check, batch[oid, size])
            self.progress.advance(1, check.nbytes)

    def visit(self, level: list[Oid]) -> list[Oid]:
        """Check one level's manifests MANIFEST_BATCH at a time, queue their files, return their subfolders."""
        below: list[Oid] = []
        for start in range(0, len(level), MANIFEST_BATCH):
            chunk = level[start:start + MANIFEST_BATCH]
            for oid, check in zip(chunk, pooled(self.source.manifest, chunk, self.jobs), strict=True):
                owners = self.owners.pop(oid, set())
                self.record(oid, MANIFEST, None, check, owners)
                if check.data is None:
                    continue
                for entry in manifest.decode(check.data, oid):
                    if entry.is_dir:
                        self.owners.setdefault(entry.oid, set()).update(owners)
                        below.append(entry.oid)
                    else:
                        self.want(entry.oid, entry.size, owners)
        return below


def _workspace(project: Project, t: Tracked, jobs: int) -> DatasetStatus:
    """Hash every workspace file of a dataset and compare it with the pointer, like status without its shortcuts."""
    ds, pointer = t.ds, t.pointer
    if not os.path.lexists(project.root / ds.data_rel):
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, NOT_IN_WORKSPACE)
    # The hashing pass keeps no folder (memory per folder); only a dataset that differs is hashed again, keeping
    # its folders, to list what changed.
    hashed = project.scan(ds.data_rel, trust_stats=False, jobs=jobs, sink=_discard)
    if matches(hashed, pointer):
        return DatasetStatus(ds.data_rel, ds.pointer_rel, pointer.kind, IN_SYNC, hashed=hashed.hashed)
    tree = project.scan(ds.data_rel, trust_stats=False, jobs=jobs)
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
                         hashed=hashed.hashed)


def _discard(prefix: str, oid: Oid, data: bytes, files: list[tuple[str, Entry]]) -> None:
    """A scan sink that keeps no folder: verify's hashing pass needs only the root oid."""
