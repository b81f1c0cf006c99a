"""Index bytes (docs/remote-format.md): which object is in which pack at which offset, plus gc marks."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vtool.errors import FormatError
from vtool.fsutil import is_hex
from vtool.store import pack
from vtool.store.pack import ENTRY, FOOTER, DiskTable, PackInfo, Read

MAGIC = b"VTINDEX"
VERSION = 1
HEAD = struct.Struct(">7sBII")
PACK_ENTRY = struct.Struct(">16sQB3sI")
MARK = struct.Struct(">B7s16sQ")
MARK_PACK = 1
MARK_LOOSE = 2
MARK_KINDS = (MARK_PACK, MARK_LOOSE)
MAX_INDEX_BYTES = 256 * pack.MiB


@dataclass(frozen=True, order=True)
class Mark:
    """A pack or loose object gc decided to delete once the grace period after `marked_at` has passed."""

    what: int
    digest: str
    marked_at: int


@dataclass(frozen=True)
class Index:
    """The packs (each with its table) and gc marks one index file records."""

    packs: tuple[PackInfo, ...] = ()
    marks: tuple[Mark, ...] = ()


def encode(index: Index) -> bytes:
    """Return an index's canonical bytes (packs and marks in the order given)."""
    parts = [HEAD.pack(MAGIC, VERSION, len(index.packs), len(index.marks))]
    for info in index.packs:
        parts.append(PACK_ENTRY.pack(bytes.fromhex(info.name), info.size, info.kind, bytes(3), len(info.slots)))
        parts.append(pack.table_bytes(info.slots))
    parts += [MARK.pack(m.what, bytes(7), bytes.fromhex(m.digest), m.marked_at) for m in index.marks]
    return b"".join(parts)


def decode(data: bytes, name: str) -> Index:
    """Parse and check an index: every pack table obeys the pack rules; counts are checked before use."""
    where = f"index {name}"
    if len(data) > MAX_INDEX_BYTES:
        raise FormatError(f"{where}: over the {MAX_INDEX_BYTES} byte cap")
    if len(data) < HEAD.size or data[:len(MAGIC)] != MAGIC:
        raise FormatError(f"{where}: not a vtool index")
    magic, version, npacks, nmarks = HEAD.unpack_from(data)
    if version != VERSION:
        raise FormatError(f"{where}: version {version} is newer than this vtool reads", "upgrade vtool")
    if HEAD.size + npacks * PACK_ENTRY.size > len(data):
        raise FormatError(f"{where}: declares {npacks} packs")
    pos = HEAD.size
    packs: list[PackInfo] = []
    names: set[str] = set()
    for _ in range(npacks):
        info, pos = _pack_entry(data, pos, where)
        if info.name in names:
            raise FormatError(f"{where}: names pack {info.name} twice")
        names.add(info.name)
        packs.append(info)
    if pos + nmarks * MARK.size > len(data):
        raise FormatError(f"{where}: declares {nmarks} marks")
    marks = [_mark(data, pos + i * MARK.size, where) for i in range(nmarks)]
    extra = len(data) - pos - nmarks * MARK.size
    if extra:
        raise FormatError(f"{where}: {extra} bytes after the last mark")
    return Index(tuple(packs), tuple(marks))


def tables_in_file(index: Index, read: Read) -> Index:
    """Return a decoded index with each pack table read on demand from the index's bytes through read(length,
    offset): a holder of many indexes (a remote's view) keeps none of their tables in memory."""
    packs = []
    pos = HEAD.size
    for info in index.packs:
        pos += PACK_ENTRY.size
        packs.append(PackInfo(info.name, info.size, info.kind, DiskTable(read, pos, len(info.slots))))
        pos += ENTRY.size * len(info.slots)
    return Index(tuple(packs), index.marks)


def _pack_entry(data: bytes, pos: int, where: str) -> tuple[PackInfo, int]:
    """Decode one pack entry and its table starting at pos; return it and the position after it."""
    if pos + PACK_ENTRY.size > len(data):
        raise FormatError(f"{where}: truncated")
    digest, size, kind, pad, count = PACK_ENTRY.unpack_from(data, pos)
    pname = digest.hex()
    if any(pad):
        raise FormatError(f"{where}: pack {pname}: nonzero padding")
    if kind not in pack.KINDS:
        raise FormatError(f"{where}: pack {pname}: unknown kind {kind}")
    try:
        if size > pack.PACK_CAP:
            raise FormatError(f"pack {pname}: over the {pack.PACK_CAP} byte cap")
        pack.check_count(count, size, f"pack {pname}")
        start = pos + PACK_ENTRY.size
        end = start + ENTRY.size * count
        if end > len(data):
            raise FormatError(f"pack {pname}: table truncated")
        if size - FOOTER.size - ENTRY.size * count < pack.HEADER_SIZE:
            raise FormatError(f"pack {pname}: table does not end at the footer")
        slots = pack.decode_table(memoryview(data)[start:end], size, pname)  # a view: no copy of the table
    except FormatError as exc:
        raise FormatError(f"{where}: {exc.message}") from None
    return PackInfo(pname, size, kind, slots), end


def _mark(data: bytes, pos: int, where: str) -> Mark:
    what, pad, digest, marked_at = MARK.unpack_from(data, pos)
    if what not in MARK_KINDS:
        raise FormatError(f"{where}: unknown mark kind {what}")
    if any(pad):
        raise FormatError(f"{where}: nonzero padding in a mark")
    return Mark(what, digest.hex(), marked_at)


def is_name(text: str) -> bool:
    """Tell whether text is a pack or index name: 32 lowercase hex digits."""
    return len(text) == pack.NAME_CHARS and is_hex(text)
