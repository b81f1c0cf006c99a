"""Pack bytes (docs/remote-format.md): header, objects back to back, then their table, so one stream writes it."""

from __future__ import annotations

import io
import operator
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from vtool.errors import FormatError
from vtool.hashing import OID_PREFIX, Oid, hash_bytes, new_hasher
from vtool.store.layout import PACK_THRESHOLD as PACK_THRESHOLD  # defined with the layout, still named here

MiB = 1 << 20
PACK_TARGET = 16 * MiB
PACK_CAP = 64 * MiB
MAX_OBJECTS = 1 << 20
MAGIC = b"VTPACK\x00"
VERSION = 1
FOOTER_MAGIC = b"VTPKTAIL"
HEADER_SIZE = 16
ENTRY = struct.Struct(">16sQQ")
DIGEST_SIZE = 16
U64 = struct.Struct(">Q")
DIGEST_ROW = struct.Struct(f"{DIGEST_SIZE}s{ENTRY.size - DIGEST_SIZE}x")  # an entry's digest alone
FOOTER = struct.Struct(">QQ8s")
KIND_DATA = 0
KIND_TREE = 1
KINDS = (KIND_DATA, KIND_TREE)
NAME_CHARS = 32
SALT_BYTES = HEADER_SIZE - len(MAGIC) - 2  # header bytes 9..15: zero, or a salt that changes the pack's name

Read = Callable[[int, int], bytes]  # (length, offset) -> exactly that many bytes of a file


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one object sits in a pack."""

    oid: Oid
    offset: int
    length: int

    @property
    def end(self) -> int:
        """Return the offset just past the object."""
        return self.offset + self.length


class Table(Sequence[Slot]):
    """A pack's object table kept as its 32-byte entries in one buffer; a Slot is built only when asked for.

    Holding tables this way costs 32 bytes per object instead of about 200 for a tuple of Slots.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: bytes | memoryview) -> None:
        self.raw = raw  # a memoryview when decoded from a larger buffer (an index): the table is not copied

    def __len__(self) -> int:
        return len(self.raw) // ENTRY.size

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return tuple(self)[i]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        digest, offset, length = ENTRY.unpack_from(self.raw, i * ENTRY.size)
        return Slot(OID_PREFIX + digest.hex(), offset, length)

    def __iter__(self) -> Iterator[Slot]:
        return (Slot(OID_PREFIX + d.hex(), offset, length) for d, offset, length in ENTRY.iter_unpack(self.raw))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table):
            return self.raw == other.raw
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"Table({len(self)} objects)"


class DiskTable(Sequence[Slot]):
    """A pack table left in a file (a pack, or a remote's index kept locally), an entry read when asked for: the
    cache and a remote's view keep only their index of where each object is (24 bytes an object), not the tables
    too (32 more: 32 MB at a million objects)."""

    __slots__ = ("_count", "_read", "_start")

    def __init__(self, read: Read, start: int, count: int) -> None:
        self._read = read
        self._start = start
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return tuple(self)[i]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        return Table(self._read(ENTRY.size, self._start + i * ENTRY.size))[0]

    def __iter__(self) -> Iterator[Slot]:
        return iter(self.table())

    def table(self) -> Table:
        """Read the whole table (one pread)."""
        return Table(self._read(ENTRY.size * self._count, self._start))

    def __repr__(self) -> str:
        return f"DiskTable({self._count} objects)"


def table_bytes(slots: Sequence[Slot]) -> bytes:
    """Return a table's entry bytes, without re-encoding one already held as bytes (or left in a file)."""
    if isinstance(slots, DiskTable):
        slots = slots.table()
    return bytes(slots.raw) if isinstance(slots, Table) else encode_table(slots)


@dataclass(frozen=True)
class PackInfo:
    """A pack's name (32 hex of the hash of its bytes), size, kind and object table."""

    name: str
    size: int
    kind: int
    slots: Sequence[Slot]

    @property
    def table_offset(self) -> int:
        """Return where the table starts (the end of the object bytes)."""
        return self.size - FOOTER.size - ENTRY.size * len(self.slots)

    @property
    def data_bytes(self) -> int:
        """Return how many object bytes the pack holds."""
        return self.table_offset - HEADER_SIZE


def header(kind: int, salt: bytes = bytes(SALT_BYTES)) -> bytes:
    """Return the 16 header bytes of a pack of this kind (with a salt only to avoid a marked pack's name)."""
    return MAGIC + bytes([VERSION, kind]) + salt


def check_header(head: bytes, name: str) -> int:
    """Return the kind a pack header declares, refusing a wrong magic, version or kind (the salt is free)."""
    where = f"pack {name}"
    if len(head) < HEADER_SIZE or head[:len(MAGIC)] != MAGIC:
        raise FormatError(f"{where}: not a vtool pack")
    version, kind = head[len(MAGIC)], head[len(MAGIC) + 1]
    if version != VERSION:
        raise FormatError(f"{where}: version {version} is newer than this vtool reads", "upgrade vtool")
    if kind not in KINDS:
        raise FormatError(f"{where}: unknown kind {kind}")
    return kind


def encode_table(slots: Iterable[Slot]) -> bytes:
    """Return the table bytes: per object its raw digest, offset and length."""
    return b"".join(ENTRY.pack(bytes.fromhex(s.oid[len(OID_PREFIX):]), s.offset, s.length) for s in slots)


def decode_footer(tail: bytes, size: int, name: str) -> int:
    """Return the object count the 24 footer bytes declare, checked against the pack size."""
    where = f"pack {name}"
    if size < HEADER_SIZE + FOOTER.size or len(tail) != FOOTER.size:
        raise FormatError(f"{where}: truncated")
    if size > PACK_CAP:
        raise FormatError(f"{where}: over the {PACK_CAP} byte cap")
    count, table_offset, magic = FOOTER.unpack(tail)
    if magic != FOOTER_MAGIC:
        raise FormatError(f"{where}: footer missing")
    check_count(count, size, where)
    if table_offset + ENTRY.size * count + FOOTER.size != size:
        raise FormatError(f"{where}: table does not end at the footer")
    return count


def check_count(count: int, size: int, where: str) -> None:
    """Refuse an empty pack, and a declared count no pack of this size can hold, before reading any table."""
    if count == 0:
        raise FormatError(f"{where}: holds no objects")
    if count > MAX_OBJECTS or ENTRY.size * count + HEADER_SIZE + FOOTER.size > size:
        raise FormatError(f"{where}: declares {count} objects")


def decode_table(table: bytes | memoryview, size: int, name: str) -> Table:
    """Decode a table, requiring objects back to back from the header to the table: no gap, overlap or overrun.

    Checked column by column in C; only a table failing that is walked entry by entry, to name the fault.
    """
    if not _well_formed(table, size):
        _refuse(table, size, name)
    return Table(table)  # a view of an index's bytes stays one: the table is not copied


def _well_formed(table: bytes | memoryview, size: int) -> bool:
    """Tell whether the entries lie back to back from the header to the table and name distinct objects."""
    count = len(table) // ENTRY.size
    if not count:
        return size - FOOTER.size == HEADER_SIZE
    offsets, lengths = _column(table, DIGEST_SIZE, count), _column(table, DIGEST_SIZE + U64.size, count)
    try:
        ends = array("Q", map(operator.add, offsets, lengths))
    except OverflowError:
        return False
    return (offsets[0] == HEADER_SIZE and offsets[1:] == ends[:-1]
            and ends[-1] == size - FOOTER.size - len(table)
            and len(set(map(operator.itemgetter(0), DIGEST_ROW.iter_unpack(table)))) == count)


def _column(table: bytes | memoryview, start: int, count: int) -> array:
    """Return one big-endian u64 field of every entry as an array."""
    raw = bytearray(U64.size * count)
    for i in range(U64.size):
        raw[i::U64.size] = table[start + i::ENTRY.size]
    values = array("Q", raw)
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _refuse(table: bytes | memoryview, size: int, name: str) -> None:
    """Raise the error naming the first fault of a table that is not well formed."""
    where = f"pack {name}"
    table_offset = size - FOOTER.size - len(table)
    expected = HEADER_SIZE
    seen: set[bytes] = set()
    for i, (digest, offset, length) in enumerate(ENTRY.iter_unpack(table)):
        if offset != expected:
            raise FormatError(f"{where}: object {i} starts at {offset}, expected {expected}")
        if digest in seen:
            raise FormatError(f"{where}: holds {OID_PREFIX}{digest.hex()} twice")
        seen.add(digest)
        expected = offset + length
        if expected > table_offset:
            raise FormatError(f"{where}: objects end at {expected}, table starts at {table_offset}")
    raise FormatError(f"{where}: objects end at {expected}, table starts at {table_offset}")


def read_info(f: IO[bytes], size: int, name: str) -> PackInfo:
    """Read and check a pack's header, footer and table from an open file (three small reads)."""
    if size < HEADER_SIZE + FOOTER.size:
        raise FormatError(f"pack {name}: truncated")
    f.seek(0)
    kind = check_header(f.read(HEADER_SIZE), name)
    f.seek(size - FOOTER.size)
    count = decode_footer(f.read(FOOTER.size), size, name)
    f.seek(size - FOOTER.size - ENTRY.size * count)
    return PackInfo(name, size, kind, decode_table(f.read(ENTRY.size * count), size, name))


def parse(data: bytes, name: str) -> PackInfo:
    """Check a whole pack held in memory: structure, every object's hash, and the name."""
    size = len(data)
    if size < HEADER_SIZE + FOOTER.size:
        raise FormatError(f"pack {name}: truncated")
    kind = check_header(data[:HEADER_SIZE], name)
    count = decode_footer(data[-FOOTER.size:], size, name)
    table_offset = size - FOOTER.size - ENTRY.size * count
    info = PackInfo(name, size, kind, decode_table(data[table_offset:size - FOOTER.size], size, name))
    for slot in info.slots:
        if hash_bytes(data[slot.offset:slot.end]) != slot.oid:
            raise FormatError(f"corrupt object {slot.oid} in pack {name}")
    if hash_bytes(data)[len(OID_PREFIX):] != name:
        raise FormatError(f"pack {name}: its bytes do not hash to its name")
    return info


class PackWriter:
    """Stream objects into a pack, hashing as it goes; `finish` writes the table and returns the pack's info."""

    def __init__(self, out: IO[bytes], kind: int, salt: bytes = bytes(SALT_BYTES)) -> None:
        self.out = out
        self.kind = kind
        self.hasher = new_hasher()
        self.slots: list[Slot] = []
        self.size = 0
        self._write(header(kind, salt))

    def _write(self, data: bytes) -> None:
        self.hasher.update(data)
        self.out.write(data)
        self.size += len(data)

    def fits(self, length: int) -> bool:
        """Tell whether one more object of this length keeps the pack under its cap (always true when empty)."""
        room = PACK_CAP - self.size - FOOTER.size - ENTRY.size * (len(self.slots) + 1)
        return not self.slots or (length <= room and len(self.slots) < MAX_OBJECTS)

    def add(self, oid: Oid, data: bytes) -> Slot:
        """Append one object (the caller has hashed it)."""
        slot = Slot(oid, self.size, len(data))
        self.slots.append(slot)
        self._write(data)
        return slot

    def finish(self) -> PackInfo:
        """Write the table and footer; the pack is named by the hash of every byte written."""
        table_offset = self.size
        table = encode_table(self.slots)
        self._write(table)
        self._write(FOOTER.pack(len(self.slots), table_offset, FOOTER_MAGIC))
        return PackInfo(self.hasher.hexdigest(), self.size, self.kind, Table(table))


def pack_bytes(objects: Iterable[tuple[Oid, bytes]], kind: int = KIND_DATA) -> tuple[bytes, PackInfo]:
    """Build a whole pack in memory (tests, small repacks)."""
    buf = io.BytesIO()
    writer = PackWriter(buf, kind)
    for oid, data in objects:
        writer.add(oid, data)
    info = writer.finish()
    return buf.getvalue(), info
