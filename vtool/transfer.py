"""Where the cache meets a remote: plan what is missing, then move it in parallel, collecting failures.

Small objects and manifests travel in packs, committed by an index written last; large ones travel loose.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from vtool.cache import Cache
from vtool.errors import CacheError, CorruptObjectError, RemoteObjectMissingError, VtoolError
from vtool.hashing import OID_PREFIX, Obj, Oid, hash_bytes
from vtool.manifest import MAX_MANIFEST_BYTES
from vtool.progress import NULL_PROGRESS, Progress
from vtool.remote.base import Remote
from vtool.store import remote as store
from vtool.store.layout import OUTGOING_DIR, fanout_of, key_oid, object_key
from vtool.store.pack import KIND_DATA, KIND_TREE, PACK_THRESHOLD, PackInfo, Slot
from vtool.store.remote import RemoteView
from vtool.workers import completed, pooled

# Above this many objects one paginated listing of the remote beats a HEAD request per object.
LIST_THRESHOLD = 256
LIST_PAGE = 1000  # keys per S3 listing page
# Parallel pack uploads and ranged reads: a few streams fill a link; more only hold more 16 MiB buffers.
PACK_JOBS = 4
# Objects a fetch plans at once (their pack slots and ranges): bounds its memory, not the tree's file count.
FETCH_BATCH = 8192
# Objects a push's data packs hold before an index commits them: bounds the tables a push keeps (32 bytes an
# object) and the index it encodes, whatever the tree's size (about 4 MiB of table each, 8 indexes at 1,000,000).
COMMIT_OBJECTS = 131_072
REMOTES_DIR = "remotes"


@dataclass(frozen=True)
class TransferResult:
    """What a transfer moved, found already there, and could not move (oid -> reason)."""

    transferred: int = 0
    present: int = 0
    nbytes: int = 0
    failed: dict[Oid, str] = field(default_factory=dict)
    requests: int = 0


@dataclass
class Target:
    """A remote with its store view loaded once per command, and whether pushes must stay loose-only."""

    remote: Remote
    view: RemoteView
    loose_only: bool = False

    @property
    def name(self) -> str:
        """Return the remote's name."""
        return self.remote.name

    @property
    def packs(self) -> bool:
        """Tell whether pushes write packs (else every object goes loose, readable by older releases)."""
        return not self.loose_only


def open_target(cache: Cache, remote: Remote | Target, jobs: int, loose_only: bool = False) -> Target:
    """Load a remote's format file and indexes (cached under the cache's remotes/ folder)."""
    if isinstance(remote, Target):
        return remote
    folder = cache.root / REMOTES_DIR / hash_bytes(remote.describe().encode())[len(OID_PREFIX):][:16]
    return Target(remote, store.load_view(remote, folder, jobs), loose_only)


def _packable(obj: Obj) -> bool:
    """Manifests (size unknown or given as such) and objects under the threshold travel in packs."""
    return obj.size is None or obj.size < PACK_THRESHOLD


def remote_has(target: Target, objs: Iterable[Obj], jobs: int) -> set[Oid]:
    """Return which objects the remote holds for a push: in an unmarked indexed pack, or as an unmarked loose key."""
    objs = list(objs)
    holds = _holder(target, objs, jobs)
    return {o.oid for o in objs if holds(o)}


def _holder(target: Target, objs: Iterable[Obj], jobs: int) -> Callable[[Obj], bool]:
    """Return a test of whether the remote holds an object for a push, asking the remote only about loose keys.

    On a packed remote small objects and manifests count only when an index names them (index-last), so only
    large ones are looked up by key; packed ones are answered by the compact index, so no set of every held
    object is built.
    """
    view = target.view
    asked = [o.oid for o in objs if not view.live(o.oid) and not view.loose_marked(o.oid)
             and not (view.packed and _packable(o))]
    loose = _loose_has(target.remote, asked, jobs)
    return lambda o: o.oid in loose or view.live(o.oid)


def _loose_has(remote: Remote, oids: list[Oid], jobs: int) -> set[Oid]:
    """Return which oids exist as loose keys: one listing per fan-out folder for large sets, HEAD for small ones.

    A remote holding fewer keys than one listing page (a new one, say) is listed whole in one request.
    """
    wanted = set(oids)
    if not wanted:
        return set()
    if len(wanted) > LIST_THRESHOLD:
        first_page = list(itertools.islice(remote.list(""), LIST_PAGE))
        if len(first_page) < LIST_PAGE:
            return wanted & {key_oid(e.key) for e in first_page}
        # Listing the fan-out folders in parallel beats one long sequential pagination.
        fanouts = sorted({fanout_of(oid) for oid in wanted})
        present: set[Oid] = set()
        for found in pooled(lambda f: {key_oid(e.key) for e in remote.list(f"{f}/")}, fanouts, jobs):
            present |= found
        return wanted & present
    ordered = list(wanted)
    found = dict(zip(ordered, pooled(lambda o: remote.stat(object_key(o)) is not None, ordered, jobs), strict=True))
    return {oid for oid, ok in found.items() if ok}


def _run(objs: list[Obj], action: Callable[[Obj], None], jobs: int, progress: Progress) -> dict[Oid, str]:
    """Apply action to every object in a pool, largest first; return per-object failures."""
    failed: dict[Oid, str] = {}
    for obj, fut in completed(action, sorted(objs, key=lambda o: -(o.size or 0)), jobs):
        exc = fut.exception()
        if exc is None:
            progress.advance(1, obj.size or 0)
        elif isinstance(exc, VtoolError) and not exc.fatal:
            failed[obj.oid] = str(exc)
        else:
            raise exc
    return failed


@dataclass(frozen=True)
class PushBatch:
    """Files to push, then manifests over them: each manifest after those it names, its members here or earlier."""

    files: list[Obj]
    manifests: list[Obj]


def push(cache: Cache, remote: Remote | Target, files: list[Obj], manifests: list[Obj], jobs: int,
         progress: Progress = NULL_PROGRESS, blocked: set[Oid] | None = None) -> TransferResult:
    """Upload what the remote lacks of one planned set: files first, then manifests (see push_batches)."""
    return push_batches(cache, remote, [PushBatch(files, manifests)], jobs, progress, blocked)


def push_batches(cache: Cache, remote: Remote | Target, batches: Iterable[PushBatch], jobs: int,
                 progress: Progress = NULL_PROGRESS, blocked: set[Oid] | None = None) -> TransferResult:
    """Upload what the remote lacks, batch by batch: files first, then manifests, never before all their members.

    batches may stream (a tree walked folder by folder): each is planned against the remote and sent before the
    next is read. `blocked` names objects known to be unavailable (a manifest the cache cannot read; it may grow
    as batches stream), so nothing above them is uploaded. On a packed remote small files and manifests go into
    packs, and one index written after every upload is confirmed publishes them all at once.
    """
    target = open_target(cache, remote, jobs)
    it = iter(batches)
    first = next(it, PushBatch([], []))
    following = next(it, None)
    pushing = _Pushing(cache, target, jobs, progress, blocked if blocked is not None else set())
    pushing.single = following is None  # one batch: progress gets totals
    stream = itertools.chain([first], [following] if following is not None else [], it)
    if not pushing.single:
        progress.start("push")
    packs: list[PackInfo] = []
    if target.packs:
        uploaded = store.uploaded_packs(target.remote, pushing.files(stream), KIND_DATA, cache.root / OUTGOING_DIR,
                                        min(jobs, PACK_JOBS), target.view.marks)
        packs = _committed_along(target.view, uploaded)
    else:
        for _ in pushing.files(stream):  # loose-only: every file went up as its batch was planned
            pass
    progress.done()
    if target.packs:
        trees = pushing.trees
        packs += store.upload_packs(target.remote, _readable(cache, trees, pushing.failed, NULL_PROGRESS), KIND_TREE,
                                    cache.root / OUTGOING_DIR, min(jobs, PACK_JOBS), target.view.marks)
        store.commit(target.view, packs)
        pushing.settle(trees)
    return TransferResult(pushing.sent, pushing.present, pushing.nbytes, pushing.failed)


def _committed_along(view: RemoteView, uploaded: Iterable[PackInfo]) -> list[PackInfo]:
    """Commit an index each time the uploaded packs' tables reach COMMIT_OBJECTS; return the packs left over.

    Only data packs are committed along the way (their objects name nothing), so a reader still sees every
    manifest after all its members; the tables held, and the index built, stay at COMMIT_OBJECTS entries, and
    a push killed part way keeps what its earlier indexes published.
    """
    pending: list[PackInfo] = []
    count = 0
    for info in uploaded:
        pending.append(info)
        count += len(info.slots)
        if count >= COMMIT_OBJECTS:
            store.commit(view, pending)
            pending, count = [], 0
    return pending


class _Pushing:
    """One push's running state: what failed, what went up, and (packed remotes) the manifests kept for last."""

    def __init__(self, cache: Cache, target: Target, jobs: int, progress: Progress, blocked: set[Oid]) -> None:
        self.cache, self.target, self.jobs, self.progress = cache, target, jobs, progress
        self.blocked = blocked
        self.single = True
        self.failed: dict[Oid, str] = {}
        self.trees: list[Obj] = []  # one per folder, without children: bounded by the folder count
        self.sent = self.present = self.nbytes = 0

    def files(self, batches: Iterable[PushBatch]) -> Iterator[tuple[Oid, bytes]]:
        """Upload each batch's large (or, loose-only, every) file, yield its small ones for packing, then settle its
        manifests: by the time the next batch is read every member of this batch's manifests has its fate."""
        for batch in batches:
            holds = _holder(self.target, itertools.chain(batch.files, batch.manifests), self.jobs)
            todo = [o for o in batch.files if not holds(o)]
            manifests = [m for m in batch.manifests if not holds(m)]
            self.present += len(batch.files) - len(todo) + len(batch.manifests) - len(manifests)
            packing = self.target.packs
            if packing and (todo or batch.manifests):
                store.ensure_format(self.target.view)
            if self.single:
                self.progress.start("push", total=len(todo), total_bytes=sum(o.size or 0 for o in todo))
            loose = [o for o in todo if not packing or not _packable(o)]
            self.failed.update(_run(loose, self._upload, self.jobs, self.progress))
            yield from _readable(self.cache, [o for o in todo if packing and _packable(o)], self.failed,
                                 self.progress)
            self.settle(todo)
            ready = _unblocked(manifests, set(self.failed) | self.blocked, self.failed)
            if packing:
                self.trees += [Obj(m.oid, m.size) for m in ready]
            else:
                self._upload_waves(ready)
                self.settle(ready)

    def _upload_waves(self, ready: list[Obj]) -> None:
        """Upload manifests loose, one height at a time, each only once every member it names went up."""
        stuck = set(self.failed) | self.blocked
        for wave in _waves(ready):
            for obj in wave:
                if stuck.intersection(obj.children):
                    self.failed[obj.oid] = "not uploaded: some of its members are missing"
                    stuck.add(obj.oid)
            wave_failed = _run([o for o in wave if o.oid not in stuck], self._upload, self.jobs, NULL_PROGRESS)
            self.failed.update(wave_failed)
            stuck.update(wave_failed)

    def _upload(self, obj: Obj) -> None:
        cache = self.cache
        if not cache.has(obj.oid, obj.size) or not cache.verify(obj.oid):
            raise CacheError(f"object {obj.oid} is missing or corrupt in the cache", "run: vtool verify")
        with cache.exported(obj.oid) as src:
            self.target.remote.put(object_key(obj.oid), src)

    def settle(self, objs: list[Obj]) -> None:
        """Count the objects that went up (those not failed)."""
        sent = [o for o in objs if o.oid not in self.failed]
        self.sent += len(sent)
        self.nbytes += sum(o.size or 0 for o in sent)


def _unblocked(manifests: list[Obj], stuck: set[Oid], failed: dict[Oid, str]) -> list[Obj]:
    """Drop every manifest naming something stuck (in post-order, so stuck-ness climbs to the root)."""
    ready = []
    for obj in manifests:
        if stuck.intersection(obj.children):
            failed[obj.oid] = "not uploaded: some of its members are missing"
            stuck.add(obj.oid)
        else:
            ready.append(obj)
    return ready


def _readable(cache: Cache, objs: list[Obj], failed: dict[Oid, str], progress: Progress) -> Iterator[tuple[Oid, bytes]]:
    """Yield each object's verified bytes from the cache, recording the ones that are missing or corrupt."""
    for obj in objs:
        try:
            data = cache.read_bytes(obj.oid)
        except CacheError as exc:
            failed[obj.oid] = f"object {obj.oid} is missing or corrupt in the cache ({exc.message})"
            continue
        if obj.size is not None and len(data) != obj.size:
            failed[obj.oid] = f"object {obj.oid} has {len(data)} bytes in the cache, expected {obj.size}"
            continue
        progress.advance(1, len(data))
        yield obj.oid, data


def _waves(manifests: list[Obj]) -> list[list[Obj]]:
    """Group manifests by height, so each wave only names objects of earlier waves (or files)."""
    height: dict[Oid, int] = {}
    for obj in manifests:  # post-order: children are seen before their parents
        height[obj.oid] = 1 + max((height[c] for c in obj.children if c in height), default=-1)
    waves: list[list[Obj]] = [[] for _ in range(max(height.values(), default=-1) + 1)]
    for obj in manifests:
        waves[height[obj.oid]].append(obj)
    return waves


def fetch(cache: Cache, remote: Remote | Target, objs: Iterable[Obj], jobs: int, progress: Progress = NULL_PROGRESS,
          description: str = "fetch") -> TransferResult:
    """Download objects the cache lacks (or holds at the wrong size), each verified before it enters the cache.

    Packed objects come by coalesced single-range GETs per pack; the rest by one GET per loose key. objs
    may stream: they are planned and moved FETCH_BATCH at a time (progress then has no total past the first).
    """
    target = open_target(cache, remote, jobs)
    batches = in_batches(objs)
    first = next(batches, [])
    following = next(batches, None)
    if following is None:
        return _fetch_batch(cache, target, first, jobs, progress, description, started=False)
    progress.start(description)
    results = [_fetch_batch(cache, target, b, jobs, progress, description, started=True)
               for b in itertools.chain([first, following], batches)]
    progress.done()
    return TransferResult(sum(r.transferred for r in results), sum(r.present for r in results),
                          sum(r.nbytes for r in results), {k: v for r in results for k, v in r.failed.items()})


def in_batches(objs: Iterable[Obj]) -> Iterator[list[Obj]]:
    """Cut objects into lists of FETCH_BATCH, each object once per list."""
    it = iter(objs)
    while batch := list({o.oid: o for o in itertools.islice(it, FETCH_BATCH)}.values()):
        yield batch


def _fetch_batch(cache: Cache, target: Target, objs: list[Obj], jobs: int, progress: Progress, description: str,
                 started: bool) -> TransferResult:
    """Fetch one batch: locate each missing object in the remote's packs, then move ranges and loose keys."""
    todo = [o for o in objs if not cache.has(o.oid, o.size)]
    by_pack: dict[str, tuple[PackInfo, list[Slot]]] = {}
    loose: list[Obj] = []
    for obj in todo:
        found = target.view.locate(obj.oid)
        if found is None or (obj.size is not None and found[1].length != obj.size):
            loose.append(obj)
        else:
            by_pack.setdefault(found[0].name, (found[0], []))[1].append(found[1])
    if not started:
        progress.start(description, total=len(todo), total_bytes=sum(o.size or 0 for o in todo))
    failed = _fetch_packed(cache, target, by_pack, jobs, progress)
    failed.update(_run(loose, lambda o: _download(cache, target.remote, o), jobs, progress))
    if not started:
        progress.done()
    nbytes = sum(o.size or 0 for o in todo if o.oid not in failed)
    return TransferResult(len(todo) - len(failed), len(objs) - len(todo), nbytes, failed)


def _fetch_packed(cache: Cache, target: Target, by_pack: dict[str, tuple[PackInfo, list[Slot]]], jobs: int,
                  progress: Progress) -> dict[Oid, str]:
    """Fetch every planned range in parallel; objects are staged into the cache's own packs as they arrive."""
    wanted = {slot.oid for _, slots in by_pack.values() for slot in slots}
    # The cache's new packs keep the remote's order (the path order the push wrote).
    order = {slot.oid: f"{name}{slot.offset:012d}" for name, (_, slots) in by_pack.items() for slot in slots}

    def accept(oid: Oid, data: bytes) -> None:
        if not cache.has(oid, len(data)):
            cache.put_checked(oid, data, order.get(oid, oid))
        if oid in wanted:
            progress.advance(1, len(data))

    ranges = [r for info, slots in by_pack.values() for r in store.plan_ranges(info, slots)]
    failed: dict[Oid, str] = {}
    for got in pooled(lambda r: store.fetch_range(target.remote, r, accept), ranges, min(jobs, PACK_JOBS)):
        failed.update({oid: f"{why} (remote {target.name})" for oid, why in got.items() if oid in wanted})
    return failed


def _download(cache: Cache, remote: Remote, obj: Obj) -> None:
    """GET one loose key; small objects go through memory into a pack, large ones stream into a temp file."""
    limit = obj.size if obj.size is not None else MAX_MANIFEST_BYTES  # size unknown: a manifest
    key = object_key(obj.oid)
    try:
        if _packable(obj) and cache.packing:
            sink = _Capped(_Buffer(), limit, obj.oid)
            _get(remote, key, obj.oid, sink)
            data = sink.sink.getvalue()
            if hash_bytes(data) != obj.oid:
                raise CorruptObjectError(f"download of {obj.oid} is corrupt (its bytes hash to {hash_bytes(data)})")
            cache.put_checked(obj.oid, data, obj.oid)
            return
        # No removal first: the verified download renames over whatever is there, and an object
        # that only a lying manifest calls the wrong size (its bytes hash to its name) must survive
        # a failed download.
        with cache.receiving(obj.oid) as out:
            _get(remote, key, obj.oid, _Capped(out, limit, obj.oid))
    except CorruptObjectError as exc:
        raise CorruptObjectError(f"{exc} (remote {remote.name})") from None


def _get(remote: Remote, key: str, oid: Oid, sink: object) -> None:
    try:
        remote.get(key, sink)  # type: ignore[arg-type]
    except RemoteObjectMissingError:
        raise RemoteObjectMissingError(oid, remote.name) from None


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class _Capped:
    """A download sink that refuses bytes past the object's size, so a broken or hostile remote cannot fill the disk."""

    def __init__(self, sink: IO[bytes] | _Buffer, limit: int, oid: Oid) -> None:
        self.sink, self.limit, self.oid, self.seen = sink, limit, oid, 0

    def write(self, data: bytes) -> int:
        self.seen += len(data)
        if self.seen > self.limit:
            raise CorruptObjectError(f"download of {self.oid} is corrupt: more than the {self.limit} bytes expected")
        return self.sink.write(data)
