"""Which pack and slot hold an object, in about 24 bytes per object: fixed-width records in one buffer (like
git's .idx), grouped by the digest's first bits so a lookup is one C-level search of a small bucket."""

from __future__ import annotations

import itertools
import operator
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vtool.hashing import OID_PREFIX, Oid

DIGEST_BYTES = 16
WHERE = struct.Struct(">II")  # pack number, slot number
WHERE_PACK = struct.Struct(">I")  # one of the two
RECORD_BYTES = DIGEST_BYTES + WHERE.size
RECORD = struct.Struct(f"{RECORD_BYTES}s")
BYTEORDER_LITTLE = sys.byteorder == "little"  # arrays hold native ints; the format is big-endian
BUCKET_TARGET = 8  # records per fan-out bucket aimed for: a lookup searches about this many
PREFIX_BITS_MAX = 16  # at most 65,536 buckets (a 256 KiB fan-out) however many objects
MERGE_RATIO = 2  # a segment is merged into the one before it once that one is at most this many times larger

Where = tuple[int, int]
Keep = Callable[[bytes, int, int], bool]


@dataclass(frozen=True)
class _Segment:
    """Records bucketed by the top `bits` bits of their digest; fanout[b] is where bucket b starts."""

    bits: int
    fanout: array
    records: bytes | bytearray  # never changed once built

    @property
    def count(self) -> int:
        """Return how many records the segment holds."""
        return len(self.records) // RECORD_BYTES

    def bucket(self, digest: bytes) -> tuple[int, int]:
        """Return the byte range of the bucket a digest falls in."""
        b = (digest[0] << 8 | digest[1]) >> (PREFIX_BITS_MAX - self.bits)
        return self.fanout[b] * RECORD_BYTES, self.fanout[b + 1] * RECORD_BYTES

    def find(self, digest: bytes) -> Iterator[Where]:
        """Yield where every record of this digest points, in the order they were added."""
        lo, hi = self.bucket(digest)
        pos = self.next_record(digest, lo, hi)
        while pos >= 0:
            yield WHERE.unpack_from(self.records, pos + DIGEST_BYTES)
            pos = self.next_record(digest, pos + RECORD_BYTES, hi)

    def next_record(self, digest: bytes, start: int, end: int) -> int:
        """Return where the next whole record of this digest starts in records[start:end], or -1."""
        records = self.records
        pos = records.find(digest, start, end)
        while pos >= 0 and pos % RECORD_BYTES:  # the digest's bytes straddle two records: not a match
            pos = records.find(digest, pos + 1, end)
        return pos

    def buckets(self) -> Iterator[bytes]:
        """Yield each non-empty bucket's records as one buffer."""
        for lo, hi in itertools.pairwise(self.fanout):
            if hi > lo:
                yield bytes(self.records[lo * RECORD_BYTES:hi * RECORD_BYTES])


def _segment(chunks: Iterable[bytes], count: int) -> _Segment:
    """Bucket records by digest prefix, keeping their order within each bucket (the lookup preference).

    `chunks` are buffers of whole records (a pack table's records come as one). Two passes, counting then
    placing each record in one buffer of the final size: the index takes its own 24 bytes an object while it
    is built, where buffers per bucket joined at the end took over 80. The bucket of every record is worked
    out a chunk at a time in C (strided slices, `map`); only the placing is a Python loop.
    """
    bits = min(PREFIX_BITS_MAX, (count // BUCKET_TARGET).bit_length())
    shift = PREFIX_BITS_MAX - bits
    if iter(chunks) is chunks:  # an iterator cannot be read twice: hold its records once
        chunks = _Buffered(chunks)
    counts = array("I", bytes(4 << bits))
    for chunk in chunks:
        for b, n in Counter(_buckets(chunk, shift)).items():
            counts[b] += n
    fanout = array("I", [0])
    fanout.extend(itertools.accumulate(counts))
    cursor = array("Q", (at * RECORD_BYTES for at in fanout))
    out = bytearray(fanout[-1] * RECORD_BYTES)
    for chunk in chunks:
        for (rec,), b in zip(RECORD.iter_unpack(chunk), _buckets(chunk, shift), strict=True):
            at = cursor[b]
            out[at:at + RECORD_BYTES] = rec
            cursor[b] = at + RECORD_BYTES
    return _Segment(bits, fanout, out)


def _buckets(chunk: bytes | bytearray, shift: int) -> Iterator[int]:
    """Yield the bucket of each record of a chunk: the digest's first 16 bits, shifted."""
    top = bytearray(2 * (len(chunk) // RECORD_BYTES))
    top[0::2] = chunk[0::RECORD_BYTES]
    top[1::2] = chunk[1::RECORD_BYTES]
    prefixes = array("H", top)
    if BYTEORDER_LITTLE:
        prefixes.byteswap()
    return iter(prefixes) if not shift else map(operator.rshift, prefixes, itertools.repeat(shift))


class Reiterable(Iterable[bytes]):
    """Record chunks made anew by a function for each pass over them (building an index reads them twice)."""

    def __init__(self, make: Callable[[], Iterator[bytes]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[bytes]:
        return self._make()


class _Buffered(Iterable[bytes]):
    """Record chunks of an iterator held in one buffer, readable twice."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._data = bytearray()
        for chunk in chunks:
            self._data += chunk

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._data,))


def table_records(pack_no: int, table: bytes, entry_size: int) -> Iterator[bytes]:
    """Yield the records of a pack table's entries (each starts with the object's raw digest) as one chunk.

    Built column by column with strided slices, in C: a Python loop over the entries cost more than the
    rest of building the index.
    """
    count = len(table) // entry_size
    if not count:
        return
    out = bytearray(count * RECORD_BYTES)
    for i in range(DIGEST_BYTES):
        out[i::RECORD_BYTES] = table[i::entry_size]
    slots = array("I", range(count))
    if BYTEORDER_LITTLE:
        slots.byteswap()
    numbers = bytes(slots)
    for i, byte in enumerate(WHERE_PACK.pack(pack_no)):
        out[DIGEST_BYTES + i::RECORD_BYTES] = bytes([byte]) * count
        out[DIGEST_BYTES + WHERE_PACK.size + i::RECORD_BYTES] = numbers[i::WHERE_PACK.size]
    yield out


class OidIndex:
    """Digest -> (pack number, slot number) over many packs, growing by segments merged as they accumulate.

    Lookups stay near one bucket search and building is linear; readers may run while a writer adds.
    """

    def __init__(self) -> None:
        self._segments: tuple[_Segment, ...] = ()

    def __len__(self) -> int:
        return sum(s.count for s in self._segments)

    @property
    def nbytes(self) -> int:
        """Return the bytes the records and fan-outs take."""
        return sum(len(s.records) + s.fanout.itemsize * len(s.fanout) for s in self._segments)

    def add(self, records: Iterable[bytes], count: int) -> None:
        """Add records; they are found after every record added before them."""
        if not count:
            return
        segments = [*self._segments, _segment(records, count)]
        while len(segments) > 1 and segments[-2].count <= MERGE_RATIO * segments[-1].count:
            last = segments.pop()
            first = segments.pop()
            merged = (first.records, last.records)
            segments.append(_segment(merged, first.count + last.count))
        self._segments = tuple(segments)

    def find(self, digest: bytes) -> Iterator[Where]:
        """Yield every (pack, slot) recorded for a digest, earliest added first."""
        for segment in self._segments:
            yield from segment.find(digest)

    def first(self, digest: bytes, keep: Keep) -> Where | None:
        """Return the earliest (pack, slot) of a digest that `keep(digest, pack, slot)` accepts, or None.

        No generator per segment: presence is asked once per file of a tree (status, add, checkout).
        """
        for segment in self._segments:
            lo, hi = segment.bucket(digest)
            pos = segment.next_record(digest, lo, hi)
            while pos >= 0:
                pack_no, slot_no = WHERE.unpack_from(segment.records, pos + DIGEST_BYTES)
                if keep(digest, pack_no, slot_no):
                    return pack_no, slot_no
                pos = segment.next_record(digest, pos + RECORD_BYTES, hi)
        return None

    def unique(self, keep: Keep) -> Iterator[bytes]:
        """Yield each digest once that has a record `keep(digest, pack, slot)` accepts."""
        segments = self._segments
        if len(segments) > 1:
            segments = (_segment([s.records for s in segments], len(self)),)
        for bucket in segments[0].buckets() if segments else ():
            seen: set[bytes] = set()
            for start in range(0, len(bucket), RECORD_BYTES):
                digest = bucket[start:start + DIGEST_BYTES]
                if digest not in seen and keep(digest, *WHERE.unpack_from(bucket, start + DIGEST_BYTES)):
                    seen.add(digest)
                    yield digest


SET_BITS = 14  # 16,384 buckets: about 61 digests (1 KiB) to search per lookup at a million objects


class DigestSet:
    """A set of oids in 16 bytes each (a Python set of oid strings takes over 100): gc's and push's reachability.

    Digests sit in byte buckets picked by their first bits; a lookup is one C-level search of its bucket.
    """

    def __init__(self) -> None:
        self._buckets: list[bytearray | None] = [None] * (1 << SET_BITS)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, oid: object) -> bool:
        if not isinstance(oid, str):
            return False
        digest = bytes.fromhex(oid[len(OID_PREFIX):])
        bucket = self._buckets[(digest[0] << 8 | digest[1]) >> (PREFIX_BITS_MAX - SET_BITS)]
        return bucket is not None and _aligned_find(bucket, digest) >= 0

    def add(self, oid: Oid) -> bool:
        """Add an oid; return whether it was new."""
        digest = bytes.fromhex(oid[len(OID_PREFIX):])
        b = (digest[0] << 8 | digest[1]) >> (PREFIX_BITS_MAX - SET_BITS)
        bucket = self._buckets[b]
        if bucket is None:
            self._buckets[b] = bytearray(digest)
        elif _aligned_find(bucket, digest) >= 0:
            return False
        else:
            bucket += digest
        self._count += 1
        return True

    def update(self, oids: Iterable[Oid]) -> None:
        """Add every oid."""
        for oid in oids:
            self.add(oid)

    def __iter__(self) -> Iterator[Oid]:
        for bucket in self._buckets:
            if bucket is not None:
                for start in range(0, len(bucket), DIGEST_BYTES):
                    yield OID_PREFIX + bucket[start:start + DIGEST_BYTES].hex()


def _aligned_find(records: bytes | bytearray, digest: bytes) -> int:
    """Return where digest starts as a whole 16-byte record of records, or -1 (a match across two is none)."""
    pos = records.find(digest)
    while pos >= 0 and pos % DIGEST_BYTES:
        pos = records.find(digest, pos + 1)
    return pos
