"""A remote in the store format: the format file, loose objects, and packs as named by its indexes.

Only packs that an index names and a listing confirms count (index-last: the index is the commit point).
"""

from __future__ import annotations

import collections
import io
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Container, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vtool.errors import FormatError, RemoteError, RemoteObjectMissingError
from vtool.fsutil import READ_ONLY, atomic_writer, remove_file, renaming_writer
from vtool.hashing import OID_PREFIX, Oid, hash_bytes
from vtool.store import index as idx
from vtool.store import layout
from vtool.store.backend import Listed, Remote
from vtool.store.index import MARK_PACK, Index, Mark
from vtool.store.oidindex import OidIndex, Reiterable, table_records
from vtool.store.pack import (
    ENTRY,
    HEADER_SIZE,
    KIND_TREE,
    PACK_TARGET,
    SALT_BYTES,
    PackInfo,
    PackWriter,
    Slot,
    table_bytes,
)
from vtool.workers import pooled

MiB = 1 << 20
GAP_MAX = 1 * MiB  # restic's rules: a gap over this starts a new range...
RANGE_MAX = 32 * MiB  # ...and so does a range that would grow past this
WHOLE_FRACTION = 0.5  # wanting this much of a pack's bytes fetches all of them in one range

Accept = Callable[[Oid, bytes], None]


@dataclass
class RemoteView:
    """What one listing of a remote shows: its layout version, confirmed packs, and gc marks."""

    remote: Remote
    version: int
    packs: dict[str, PackInfo] = field(default_factory=dict)
    where: OidIndex = field(default_factory=OidIndex)
    numbered: list[PackInfo] = field(default_factory=list)  # pack numbers the index records
    marks: dict[str, Mark] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    listed_packs: dict[str, int] = field(default_factory=dict)
    pack_mtimes: dict[str, float] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    @property
    def packed(self) -> bool:
        """Tell whether the remote is in the pack format (it has a format file)."""
        return self.version >= layout.FORMAT_VERSION

    def live(self, oid: Oid) -> bool:
        """Tell whether an unmarked confirmed pack holds oid: only such copies let a push skip an object."""
        found = self.locate(oid)
        return found is not None and found[0].name not in self.marks

    def locate(self, oid: Oid) -> tuple[PackInfo, Slot] | None:
        """Return a confirmed pack holding oid, unmarked ones first (marked ones are readable until deleted)."""
        for number, slot_no in self.where.find(bytes.fromhex(oid[len(OID_PREFIX):])):
            info = self.numbered[number]
            return info, info.slots[slot_no]
        return None

    def oids(self) -> Iterator[Oid]:
        """Yield every object a confirmed pack holds, once."""
        return (OID_PREFIX + digest.hex() for digest in self.where.unique(lambda *_: True))

    def loose_marked(self, oid: Oid) -> bool:
        """Tell whether gc marked this loose object for deletion."""
        return oid[len(OID_PREFIX):] in self.marks


def load_view(remote: Remote, index_cache: Path, jobs: int) -> RemoteView:
    """Read the format file, list indexes and packs, and load every index (cached locally by name)."""
    version = layout.parse_format(read_small(remote, layout.FORMAT_KEY), remote.name)
    view = RemoteView(remote, version)
    if not view.packed:
        return view
    names = [e.key[len(layout.INDEX_DIR) + 1:-len(layout.INDEX_SUFFIX)] for e in remote.list(layout.INDEX_DIR + "/")
             if e.key.endswith(layout.INDEX_SUFFIX)]
    for name, entry in listed_packs(remote):
        view.listed_packs[name] = entry.size
        view.pack_mtimes[name] = entry.mtime
    checking = threading.Lock()
    loaded = list(pooled(lambda n: _load_index(remote, index_cache, n, checking), [n for n in names if idx.is_name(n)],
                         jobs))
    for name, got in loaded:
        if isinstance(got, str):
            view.rejected.append(got)
        else:
            view.indexes[name] = got
    _build(view)
    return view


def listed_packs(remote: Remote) -> Iterator[tuple[str, Listed]]:
    """List the packs under `packs/` by name (one paginated listing)."""
    for entry in remote.list(layout.PACKS_DIR + "/"):
        stem = entry.key[len(layout.PACKS_DIR) + 1:]
        if stem.endswith(layout.PACK_SUFFIX) and idx.is_name(stem[:-len(layout.PACK_SUFFIX)]):
            yield stem[:-len(layout.PACK_SUFFIX)], entry


def _load_index(remote: Remote, index_cache: Path, name: str, checking: threading.Lock) -> tuple[str, Index | str]:
    """Return an index from its local copy, downloaded first when missing or corrupt, its tables left in the
    copy (read on demand); a corrupt one becomes the message saying why.

    Downloads run in parallel; reading a copy back and checking it (CPU-bound, under the GIL) takes `checking`,
    so one index's bytes and its checks' sets are in memory at a time, not one per worker.
    """
    local = index_cache / f"{name}{layout.INDEX_SUFFIX}"
    with checking:
        checked = _checked_copy(local, name)
        if checked is not None:
            return name, _decoded(remote, name, *checked)
    index_cache.mkdir(parents=True, exist_ok=True)
    try:  # streamed into the copy, then read back once: never a second buffer of the index
        with atomic_writer(local, READ_ONLY) as out:
            remote.get(layout.index_key(name), out)
    except RemoteObjectMissingError:
        return name, f"index {name} vanished while being read (a concurrent gc compacted it)"
    with checking:
        checked = _checked_copy(local, name)
        if checked is None:
            remove_file(local)
            return name, f"index {name} on remote {remote.name!r} is corrupt: its bytes do not hash to its name"
        return name, _decoded(remote, name, *checked)


def _decoded(remote: Remote, name: str, copy: _IndexFile, data: bytes) -> Index | str:
    """Decode and check an index's bytes, its tables then read from the copy; a corrupt one gives why."""
    try:
        decoded = idx.decode(data, name)
    except FormatError as exc:
        return f"remote {remote.name!r}: {exc.message}"
    return idx.tables_in_file(decoded, copy.read)


def _checked_copy(local: Path, name: str) -> tuple[_IndexFile, bytes] | None:
    """Open the local copy of an index and read it whole; None when it is missing or its bytes fail their name."""
    try:
        copy = _IndexFile(local)
    except FileNotFoundError:
        return None
    data = copy.read(os.fstat(copy.fd).st_size, 0)
    return (copy, data) if hash_bytes(data)[len(OID_PREFIX):] == name else None


class _IndexFile:
    """A local index copy open for reads of its tables; the descriptor closes once no table reads through it."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)

    def read(self, length: int, offset: int) -> bytes:
        """Read bytes of the index, refusing a short read (the copy was cut after it was checked)."""
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise FormatError(f"index copy {self.name}: truncated", "run the command again")
        return data


def _build(view: RemoteView) -> None:
    """Keep the packs a listing confirms at their indexed size; prefer unmarked copies of each object.

    A mark on a pack written again after it (a push re-uploaded the same bytes, so the same name) is void.
    """
    for index in view.indexes.values():
        for mark in index.marks:
            # Listings have one-second resolution: only a write in a later second is known to be after the mark.
            rewritten = mark.what == MARK_PACK and view.pack_mtimes.get(mark.digest, 0.0) >= mark.marked_at + 1
            old = view.marks.get(mark.digest)
            if not rewritten and (old is None or mark.marked_at < old.marked_at):
                view.marks[mark.digest] = mark
        for info in index.packs:
            if view.listed_packs.get(info.name) == info.size:
                view.packs[info.name] = info
    numbered = view.numbered = sorted(view.packs.values(), key=lambda i: i.name in view.marks)
    # Both passes of the build read each table from its file in turn: no table, nor a buffer of every record,
    # is held while the index is built.
    records = Reiterable(lambda: itertools.chain.from_iterable(
        table_records(n, table_bytes(info.slots), ENTRY.size) for n, info in enumerate(numbered)))
    view.where.add(records, sum(len(info.slots) for info in numbered))


def loose_objects(remote: Remote) -> Iterator[tuple[Oid, Listed]]:
    """List every loose object (keys shaped `<2 hex>/<30 hex>`); anything else under the prefix is ignored."""
    for entry in remote.list(""):
        oid = layout.key_oid(entry.key)
        if oid is not None:
            yield oid, entry


def read_small(remote: Remote, key: str, limit: int = layout.MAX_FORMAT_BYTES) -> bytes | None:
    """GET a small value in full, None when absent; refuse one larger than limit."""
    sink = _Capped(limit)
    try:
        remote.get(key, sink)  # type: ignore[arg-type]
    except RemoteObjectMissingError:
        return None
    return sink.buffer.getvalue()


class _Capped:
    def __init__(self, limit: int) -> None:
        self.buffer = io.BytesIO()
        self.limit = limit

    def write(self, data: bytes) -> int:
        if self.buffer.tell() + len(data) > self.limit:
            raise FormatError(f"a value over {self.limit} bytes where a small file was expected")
        return self.buffer.write(data)


@dataclass(frozen=True)
class Range:
    """One single-range GET: bytes [start, start + length) of a pack, and the objects cut from it."""

    pack: str
    start: int
    length: int
    slots: tuple[Slot, ...]


def plan_ranges(info: PackInfo, wanted: Iterable[Slot]) -> list[Range]:
    """Coalesce wanted objects into ranges: split on gaps over GAP_MAX or past RANGE_MAX; whole when most is wanted."""
    slots = sorted(set(wanted), key=_in_pack_order)
    if not slots:
        return []
    if info.kind == KIND_TREE or sum(s.length for s in slots) >= WHOLE_FRACTION * info.data_bytes:
        everything = slots if info.kind != KIND_TREE else sorted(info.slots, key=_in_pack_order)
        if info.data_bytes <= RANGE_MAX:
            return [Range(info.name, HEADER_SIZE, info.data_bytes, tuple(everything))]
    ranges: list[Range] = []
    group = [slots[0]]
    for slot in slots[1:]:
        start = group[0].offset
        if slot.offset - group[-1].end > GAP_MAX or slot.end - start > RANGE_MAX:
            ranges.append(_range(info.name, group))
            group = []
        group.append(slot)
    ranges.append(_range(info.name, group))
    return ranges


def _in_pack_order(slot: Slot) -> tuple[int, int]:
    """Order slots as the cutter meets them: an empty object before the one starting at the same offset."""
    return slot.offset, slot.length


def _range(pack_name: str, group: list[Slot]) -> Range:
    return Range(pack_name, group[0].offset, group[-1].end - group[0].offset, tuple(group))


def fetch_range(remote: Remote, rng: Range, accept: Accept) -> dict[Oid, str]:
    """GET one range and cut it into objects; each is hashed before `accept` sees it. Return failures."""
    cutter = _Cutter(rng, accept)
    try:
        remote.get(layout.pack_key(rng.pack), cutter, rng.start, rng.length)  # type: ignore[arg-type]
    except RemoteObjectMissingError:
        return {s.oid: f"pack {rng.pack} vanished from remote {remote.name!r}" for s in rng.slots
                if s.oid not in cutter.done}
    cutter.finish()
    return cutter.failed


class _Cutter:
    """A download sink that splits a pack range into its objects, keeping only one object in memory at a time."""

    def __init__(self, rng: Range, accept: Accept) -> None:
        self.slots = list(rng.slots)
        self.pos = rng.start
        self.end = rng.start + rng.length
        self.accept = accept
        self.current = bytearray()
        self.failed: dict[Oid, str] = {}
        self.done: set[Oid] = set()
        self.pack = rng.pack
        self.i = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        if self.pos + len(view) > self.end:
            raise RemoteError(f"pack {self.pack}: the server sent more bytes than the range asked for")
        while view:
            if self.i >= len(self.slots):
                self.pos += len(view)
                break
            slot = self.slots[self.i]
            if slot.length == 0 and self.pos >= slot.offset:  # an empty object takes no bytes of the stream
                self._complete(slot)
                continue
            if self.pos < slot.offset:  # a gap between wanted objects
                skip = min(len(view), slot.offset - self.pos)
                view, self.pos = view[skip:], self.pos + skip
                continue
            take = min(len(view), slot.end - self.pos)
            self.current += view[:take]
            view, self.pos = view[take:], self.pos + take
            if self.pos == slot.end:
                self._complete(slot)
        while self.i < len(self.slots) and self.slots[self.i].length == 0 and self.pos >= self.slots[self.i].offset:
            self._complete(self.slots[self.i])
        return len(data)

    def _complete(self, slot: Slot) -> None:
        data = bytes(self.current)
        self.current = bytearray()
        self.i += 1
        if hash_bytes(data) != slot.oid:
            self.failed[slot.oid] = f"corrupt in pack {self.pack}: its bytes do not hash to its name"
            return
        self.accept(slot.oid, data)
        self.done.add(slot.oid)

    def finish(self) -> None:
        """Account for a body cut short: every object not completed failed."""
        while self.i < len(self.slots) and self.slots[self.i].length == 0:
            self._complete(self.slots[self.i])
        for slot in self.slots[self.i:]:
            self.failed.setdefault(slot.oid, f"pack {self.pack}: the range ended early")


def ensure_format(view: RemoteView) -> None:
    """Write the format file of a remote that has none, before the first pack lands on it."""
    if not view.packed:
        view.remote.put(layout.FORMAT_KEY, layout.format_bytes())
        view.version = layout.FORMAT_VERSION


def upload_packs(remote: Remote, objects: Iterable[tuple[Oid, bytes]], kind: int, workdir: Path,
                 jobs: int, avoid: Container[str] = ()) -> list[PackInfo]:
    """Stream objects into packs and upload them all (see uploaded_packs); return every pack's info."""
    return list(uploaded_packs(remote, objects, kind, workdir, jobs, avoid))


def uploaded_packs(remote: Remote, objects: Iterable[tuple[Oid, bytes]], kind: int, workdir: Path,
                   jobs: int, avoid: Container[str] = ()) -> Iterator[PackInfo]:
    """Stream objects into packs of about PACK_TARGET bytes, one temp file at a time, uploading each as it is
    finished while the next is built; yield each pack, in order, once its upload has returned. Memory stays at
    one object plus the uploads in flight, so a caller may commit (and forget) packs while the rest stream."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(jobs) as pool:
        pending: collections.deque[tuple[Future[None], PackInfo]] = collections.deque()
        try:
            for path, info in _built_packs(objects, kind, workdir, avoid):
                pending.append((pool.submit(_put_and_remove, remote, path, info), info))
                while len(pending) > jobs or (pending and pending[0][0].done()):
                    fut, done = pending.popleft()
                    fut.result()
                    yield done
            while pending:
                fut, done = pending.popleft()
                fut.result()
                yield done
        finally:
            for fut, _ in pending:  # a failed upload or a caller that stopped: let the others finish or fail
                fut.cancel()


def _built_packs(objects: Iterable[tuple[Oid, bytes]], kind: int, workdir: Path,
                 avoid: Container[str]) -> Iterator[tuple[Path, PackInfo]]:
    """Write objects into successive pack files named by their hash, yielding each once complete.

    A pack that would take the name of one gc has marked is written again with a salt, so its name differs
    and the mark (which a later gc executes) can never hit these new bytes.
    """
    batch: list[tuple[Oid, bytes]] = []
    size = 0
    for oid, data in objects:
        if batch and size + len(data) > PACK_TARGET:
            yield _write_pack(batch, kind, workdir, avoid)
            batch, size = [], 0
        batch.append((oid, data))
        size += len(data)
    if batch:
        yield _write_pack(batch, kind, workdir, avoid)


def _write_pack(batch: list[tuple[Oid, bytes]], kind: int, workdir: Path,
                avoid: Container[str]) -> tuple[Path, PackInfo]:
    salt = bytes(SALT_BYTES)
    while True:
        with renaming_writer(workdir, layout.PACK_SUFFIX) as out:
            writer = PackWriter(out.handle, kind, salt)
            for oid, data in batch:
                writer.add(oid, data)
            info = writer.finish()
            out.dest = workdir / f"{info.name}{layout.PACK_SUFFIX}"
        if info.name not in avoid:
            return out.dest, info
        remove_file(out.dest)
        salt = os.urandom(SALT_BYTES)  # what secrets.token_bytes returns, without its 3-6 ms import (hashlib, random)


def _put_and_remove(remote: Remote, path: Path, info: PackInfo) -> None:
    try:
        remote.put(layout.pack_key(info.name), path)
    finally:
        remove_file(path)


def commit(view: RemoteView, packs: list[PackInfo], marks: Iterable[Mark] = ()) -> str | None:
    """Confirm every pack by one listing, then write the index naming them: the commit point."""
    marks = tuple(marks)
    if not packs and not marks:
        return None
    listed = {name: entry.size for name, entry in listed_packs(view.remote)}
    unconfirmed = [p.name for p in packs if listed.get(p.name) != p.size]
    if unconfirmed:
        raise RemoteError(f"remote {view.remote.name!r}: uploaded pack {unconfirmed[0]} is not listed at its size; "
                          "no index was written", "run the push again")
    data = idx.encode(Index(tuple(packs), marks))
    name = hash_bytes(data)[len(OID_PREFIX):]
    view.remote.put(layout.index_key(name), data)
    return name
