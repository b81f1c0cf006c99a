"""Where the cache meets a remote: plan what is missing, then move it in parallel, collecting failures."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import IO

from vtool.cache import Cache
from vtool.errors import CacheError, CorruptObjectError, RemoteError, RemoteObjectMissingError, VtoolError
from vtool.hashing import OID_PREFIX, Oid
from vtool.manifest import MAX_MANIFEST_BYTES
from vtool.progress import NULL_PROGRESS, Progress
from vtool.remote.base import FANOUT_CHARS, Remote

# Above this many objects one paginated listing of the remote beats a HEAD request per object.
LIST_THRESHOLD = 256


@dataclass(frozen=True)
class Obj:
    """An object to move: its oid, size, and (for manifests) the objects it names."""

    oid: Oid
    size: int | None
    children: tuple[Oid, ...] = ()


@dataclass(frozen=True)
class TransferResult:
    """What a transfer moved, found already there, and could not move (oid -> reason)."""

    transferred: int = 0
    present: int = 0
    nbytes: int = 0
    failed: dict[Oid, str] = field(default_factory=dict)


def remote_has(remote: Remote, oids: Iterable[Oid], jobs: int) -> set[Oid]:
    """Return which of oids the remote holds: one listing for large sets, HEAD requests for small ones."""
    wanted = set(oids)
    if len(wanted) > LIST_THRESHOLD:
        # Listing the fan-out folders in parallel beats one long sequential pagination.
        fanouts = sorted({oid[len(OID_PREFIX):len(OID_PREFIX) + FANOUT_CHARS] for oid in wanted})
        present: set[Oid] = set()
        with ThreadPoolExecutor(jobs) as pool:
            for found in pool.map(lambda fanout: set(remote.iter_oids(fanout)), fanouts):
                present |= found
        return wanted & present
    with ThreadPoolExecutor(jobs) as pool:
        found = dict(zip(wanted, pool.map(remote.has, wanted), strict=True))
    return {oid for oid, ok in found.items() if ok}


def _is_fatal(exc: BaseException) -> bool:
    """Errors that will fail every object alike (endpoint down, auth, bucket) stop the whole transfer."""
    return isinstance(exc, RemoteError) and not isinstance(exc, RemoteObjectMissingError)


def _run(objs: list[Obj], action: Callable[[Obj], None], jobs: int, progress: Progress) -> dict[Oid, str]:
    """Apply action to every object in a pool, largest first; return per-object failures."""
    failed: dict[Oid, str] = {}
    ordered = sorted(objs, key=lambda o: -(o.size or 0))
    with ThreadPoolExecutor(jobs) as pool:
        futures: dict[Future[None], Obj] = {pool.submit(action, o): o for o in ordered}
        try:
            for fut in as_completed(futures):
                obj = futures[fut]
                exc = fut.exception()
                if exc is None:
                    progress.advance(1, obj.size or 0)
                elif isinstance(exc, VtoolError) and not _is_fatal(exc):
                    failed[obj.oid] = str(exc)
                else:
                    raise exc
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return failed


def push(cache: Cache, remote: Remote, files: list[Obj], manifests: list[Obj], jobs: int,
         progress: Progress = NULL_PROGRESS, blocked: set[Oid] | None = None) -> TransferResult:
    """Upload what the remote lacks: every file first, then manifests wave by wave, never before their members.

    `manifests` lists every manifest after the manifests it names; `blocked` names objects known to be
    unavailable (a manifest the cache cannot read), so nothing above them is uploaded.
    """
    present = remote_has(remote, (o.oid for o in files + manifests), jobs)
    todo_files = [o for o in files if o.oid not in present]

    def upload(obj: Obj) -> None:
        if not cache.has(obj.oid, obj.size) or not cache.verify(obj.oid):
            raise CacheError(f"object {obj.oid} is missing or corrupt in the cache", "run: vtool verify")
        remote.put(obj.oid, cache.path(obj.oid))

    progress.start("push", total=len(todo_files), total_bytes=sum(o.size or 0 for o in todo_files))
    failed = _run(todo_files, upload, jobs, progress)
    progress.done()
    stuck = set(failed) | (blocked or set())
    waves = _waves([m for m in manifests if m.oid not in present])
    for wave in waves:
        ready = []
        for obj in wave:
            if stuck.intersection(obj.children):
                failed[obj.oid] = "not uploaded: some of its members are missing"
                stuck.add(obj.oid)
            else:
                ready.append(obj)
        wave_failed = _run(ready, upload, jobs, NULL_PROGRESS)
        failed.update(wave_failed)
        stuck.update(wave_failed)
    sent = [o for o in todo_files + [m for w in waves for m in w] if o.oid not in failed]
    return TransferResult(len(sent), len(present), sum(o.size or 0 for o in sent), failed)


def _waves(manifests: list[Obj]) -> list[list[Obj]]:
    """Group manifests by height, so each wave only names objects of earlier waves (or files)."""
    height: dict[Oid, int] = {}
    for obj in manifests:  # post-order: children are seen before their parents
        height[obj.oid] = 1 + max((height[c] for c in obj.children if c in height), default=-1)
    waves: list[list[Obj]] = [[] for _ in range(max(height.values(), default=-1) + 1)]
    for obj in manifests:
        waves[height[obj.oid]].append(obj)
    return waves


def fetch(cache: Cache, remote: Remote, objs: list[Obj], jobs: int, progress: Progress = NULL_PROGRESS,
          description: str = "fetch") -> TransferResult:
    """Download objects the cache lacks (or holds at the wrong size), each verified before it enters the cache."""
    todo = [o for o in {o.oid: o for o in objs}.values() if not cache.has(o.oid, o.size)]

    def download(obj: Obj) -> None:
        # No removal first: the verified download renames over whatever is there, and an object
        # that only a lying manifest calls the wrong size (its bytes hash to its name) must survive
        # a failed download.
        limit = obj.size if obj.size is not None else MAX_MANIFEST_BYTES  # size unknown: a manifest
        try:
            with cache.receiving(obj.oid) as sink:
                remote.get(obj.oid, _Capped(sink, limit, obj.oid))  # type: ignore[arg-type]
        except CorruptObjectError as exc:
            raise CorruptObjectError(f"{exc} (remote {remote.name})") from None

    progress.start(description, total=len(todo), total_bytes=sum(o.size or 0 for o in todo))
    failed = _run(todo, download, jobs, progress)
    progress.done()
    nbytes = sum(o.size or 0 for o in todo if o.oid not in failed)
    return TransferResult(len(todo) - len(failed), len(objs) - len(todo), nbytes, failed)


class _Capped:
    """A download sink that refuses bytes past the object's size, so a broken or hostile remote cannot fill the disk."""

    def __init__(self, sink: IO[bytes], limit: int, oid: Oid) -> None:
        self.sink, self.limit, self.oid, self.seen = sink, limit, oid, 0

    def write(self, data: bytes) -> int:
        self.seen += len(data)
        if self.seen > self.limit:
            raise CorruptObjectError(f"download of {self.oid} is corrupt: more than the {self.limit} bytes expected")
        return self.sink.write(data)
