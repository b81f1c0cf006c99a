"""`vtool gc -r` on a packed remote: mark now, delete only in a later run after the grace period.

A push running meanwhile never loses an object: pushes do not count on marked packs or marked loose
objects (they upload them again), and a marked pack is deleted only once the grace period has passed.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from vtool import transfer
from vtool.errors import RemoteError
from vtool.hashing import OID_PREFIX, Oid
from vtool.ops.project import Project
from vtool.store import remote as store
from vtool.store.backend import Listed
from vtool.store.index import MARK_LOOSE, MARK_PACK, Mark
from vtool.store.layout import GC_LOCK_KEY, index_key, object_key, pack_key
from vtool.store.oidindex import DigestSet
from vtool.store.pack import KIND_TREE, PackInfo
from vtool.store.remote import RemoteView
from vtool.transfer import Obj, Target

# A gc lock older than this was left by a killed gc.
LOCK_STALE_S = 6 * 3600
LOCK_BYTES = 256
GC_LOCK_DIR = GC_LOCK_KEY.rsplit("/", 1)[0]
# A pack is repacked once less than this fraction of its bytes is still reachable.
REPACK_BELOW = 0.5


@dataclass(frozen=True)
class RemotePlan:
    """What one gc run on a packed remote deletes (due marks) and marks (sparse packs, dead loose objects)."""

    doomed: list[Oid]
    doomed_bytes: int
    kept: int
    due_packs: list[str]
    due_loose: list[Oid]
    sparse: list[PackInfo]
    dead_loose: list[Oid]
    rescue: list[Oid]


def plan(target: Target, keep: DigestSet, grace_s: int, now: float) -> RemotePlan:
    """Work out deletions and marks from one view of the remote, without changing anything."""
    view = target.view
    loose = dict(store.loose_objects(target.remote))
    due = {d: m for d, m in view.marks.items() if m.marked_at + grace_s <= now}
    due_packs = [d for d, m in due.items() if m.what == MARK_PACK and d in view.listed_packs]
    # A loose object written again after its mark (a push re-uploaded it) is no longer doomed.
    due_loose = [OID_PREFIX + d for d, m in due.items() if m.what == MARK_LOOSE and OID_PREFIX + d in loose
                 and loose[OID_PREFIX + d].mtime < m.marked_at and OID_PREFIX + d not in keep]
    # Kept objects whose copy in use is in a pack due for deletion: only those packs' slots can hold one.
    rescue = sorted({s.oid for name in due if (info := view.packs.get(name)) is not None for s in info.slots
                     if s.oid in keep and s.oid not in loose and (found := view.locate(s.oid)) is not None
                     and found[0].name in due})
    sparse = []
    for info in view.packs.values():
        if info.name in view.marks:
            continue
        live = sum(s.length for s in info.slots if s.oid in keep)
        if live < REPACK_BELOW * max(info.data_bytes, 1) or not any(s.oid in keep for s in info.slots):
            sparse.append(info)
    dead_loose = sorted(oid for oid in loose if oid not in keep and oid[len(OID_PREFIX):] not in view.marks)
    stored = 0
    doomed: list[Oid] = []
    doomed_bytes = 0
    for oid, size in _stored(view, loose):  # counted as they stream by: only the doomed are listed
        stored += 1
        if oid not in keep:
            doomed.append(oid)
            doomed_bytes += size
    doomed.sort()
    return RemotePlan(doomed, doomed_bytes, stored - len(doomed), due_packs, due_loose, sparse, dead_loose, rescue)


def _stored(view: RemoteView, loose: dict[Oid, Listed]) -> Iterator[tuple[Oid, int]]:
    """Yield every object the remote holds once, with its size (a packed copy's length before a loose key's)."""
    for oid in view.oids():
        found = view.locate(oid)
        if found is not None:
            yield oid, found[1].length
    for oid, entry in loose.items():
        if view.locate(oid) is None:
            yield oid, entry.size


def collect(project: Project, target: Target, jobs: int, keep: DigestSet, delete: bool) -> RemotePlan:
    """Plan (dry run), or plan and carry out under the remote's gc lock, timed by the server's own clock."""
    grace = project.config.grace_s
    if not delete:
        return plan(target, keep, grace, clock())
    with _GcLock(target) as now:
        p = plan(target, keep, grace, now)
        _run(project, target, jobs, keep, p, now)
    return p


def _run(project: Project, target: Target, jobs: int, keep: DigestSet, p: RemotePlan, now: float) -> None:
    """Repack, commit one index, then delete what is due."""
    view = target.view
    moved = sorted({s.oid for info in p.sparse for s in info.slots if s.oid in keep} | set(p.rescue))
    new_packs = _repack(project, target, jobs, moved)
    marks = [Mark(MARK_PACK, info.name, int(now)) for info in p.sparse]
    marks += [Mark(MARK_LOOSE, oid[len(OID_PREFIX):], int(now)) for oid in p.dead_loose]
    # A pack a push wrote again since this run's listing (same bytes, same name) is not deleted after all.
    listed = dict(store.listed_packs(target.remote))
    due = [name for name in p.due_packs if name not in listed or listed[name].mtime < view.marks[name].marked_at + 1]
    compact = bool(due or p.due_loose)
    if compact:  # one merged index replaces every index read; the executed marks leave with it
        gone = set(due) | {o[len(OID_PREFIX):] for o in p.due_loose}
        survivors = [i for i in view.packs.values() if i.name not in gone]
        kept_marks = [m for d, m in view.marks.items() if d not in gone]
        store.commit(view, survivors + new_packs, kept_marks + marks)
    else:
        store.commit(view, new_packs, marks)
    for name in due:
        target.remote.remove(pack_key(name))
    for oid in p.due_loose:
        target.remote.remove(object_key(oid))
    if compact:
        for name in view.indexes:
            target.remote.remove(index_key(name))


def _repack(project: Project, target: Target, jobs: int, oids: list[Oid]) -> list[PackInfo]:
    """Copy still-reachable objects out of sparse or due packs into new packs (through the cache)."""
    if not oids:
        return []
    got = transfer.fetch(project.cache, target, [Obj(o, None if _is_tree(target, o) else _size(target, o))
                                                 for o in oids], jobs)
    if got.failed:
        oid, why = next(iter(got.failed.items()))
        raise RemoteError(f"gc of remote {target.name!r}: cannot copy {oid} out of its pack: {why}; nothing deleted")
    trees = [o for o in oids if _is_tree(target, o)]
    data = [o for o in oids if not _is_tree(target, o)]
    workdir = project.cache.root / transfer.OUTGOING_DIR
    # The new packs must not take a marked pack's name (the same objects in the same order would).
    avoid = set(target.view.marks) | {info.name for info in target.view.packs.values()}
    packs = store.upload_packs(target.remote, ((o, project.cache.read_bytes(o)) for o in data), 0, workdir, jobs,
                               avoid)
    packs += store.upload_packs(target.remote, ((o, project.cache.read_bytes(o)) for o in trees), KIND_TREE,
                                workdir, jobs, avoid)
    return packs


def _is_tree(target: Target, oid: Oid) -> bool:
    found = target.view.locate(oid)
    return found is not None and found[0].kind == KIND_TREE


def _size(target: Target, oid: Oid) -> int | None:
    found = target.view.locate(oid)
    return found[1].length if found else None


class _GcLock:
    """The remote's only lock: two gcs must not compact at once (pushes never take it).

    Entering it returns the server's time (the lock's own timestamp), so marks and the grace period are
    judged on the clock that also stamps the packs.
    """

    def __init__(self, target: Target) -> None:
        self.target = target

    def __enter__(self) -> float:
        remote = self.target.remote
        held = {e.key: e for e in remote.list(GC_LOCK_DIR + "/")}.get(GC_LOCK_KEY)
        if held is not None and clock() - held.mtime < LOCK_STALE_S:
            holder = (store.read_small(remote, GC_LOCK_KEY, LOCK_BYTES) or b"").decode(errors="replace").strip()
            raise RemoteError(f"remote {self.target.name!r}: another gc is running ({holder or 'unknown holder'})",
                              "wait for it to finish, and run gc again")
        remote.put(GC_LOCK_KEY, f"{socket.gethostname()} pid={os.getpid()}\n".encode())
        mine = {e.key: e for e in remote.list(GC_LOCK_DIR + "/")}.get(GC_LOCK_KEY)
        return mine.mtime if mine is not None and mine.mtime else clock()

    def __exit__(self, *exc: object) -> None:
        self.target.remote.remove(GC_LOCK_KEY)


def clock() -> float:
    """Return the current time (one place, so tests can move it)."""
    return time.time()
