"""Which pack and slot hold an object, in about 24 bytes per object: fixed-width records in one buffer (like
git's .idx), grouped by the digest's first bits so a lookup is one C-level search of a small bucket."""

from __future__ import annotations

import itertools
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vtool.hashing import OID_PREFIX, Oid

DIGEST_BYTES = 16
WHERE = struct.Struct(">II")  # pack number, slot number
RECORD_BYTES = DIGEST_BYTES + WHERE.size
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
        pos = self.records.find(digest, lo, hi)
        while pos >= 0:
            if pos % RECORD_BYTES == 0:
                yield WHERE.unpack_from(self.records, pos + DIGEST_BYTES)
                pos = self.records.find(digest, pos + RECORD_BYTES, hi)
            else:  # the digest's bytes straddle two records: not a match
                pos = self.records.find(digest, pos + 1, hi)

    def each(self) -> Iterator[bytes]:
        """Yield every record."""
        data = self.records
        return (data[i:i + RECORD_BYTES] for i in range(0, len(data), RECORD_BYTES))

    def buckets(self) -> Iterator[bytes]:
        """Yield each non-empty bucket's records as one buffer."""
        for lo, hi in itertools.pairwise(self.fanout):
            if hi > lo:
                yield bytes(self.records[lo * RECORD_BYTES:hi * RECORD_BYTES])


def _segment(records: Iterable[bytes], count: int) -> _Segment:
    """Bucket records by digest prefix, keeping their order within each bucket (the lookup preference).

    Two passes, counting then placing each record in one buffer of the final size: the index takes its own
    24 bytes an object while it is built, where buffers per bucket joined at the end took over 80.
    """
    bits = min(PREFIX_BITS_MAX, (count // BUCKET_TARGET).bit_length())
    shift = PREFIX_BITS_MAX - bits
    if iter(records) is records:  # an iterator cannot be read twice: hold its records once
        records = _Buffered(records)
    counts = array("I", bytes(4 << bits))
    for rec in records:
        counts[(rec[0] << 8 | rec[1]) >> shift] += 1
    fanout = array("I", [0])
    fanout.extend(itertools.accumulate(counts))
    cursor = array("I", fanout)
    out = bytearray(fanout[-1] * RECORD_BYTES)
    for rec in records:
        b = (rec[0] << 8 | rec[1]) >> shift
        at = cursor[b] * RECORD_BYTES
        out[at:at + RECORD_BYTES] = rec
        cursor[b] += 1
    return _Segment(bits, fanout, out)


class Reiterable(Iterable[bytes]):
    """Records made anew by a function for each pass over them (building an index reads them twice)."""

    def __init__(self, make: Callable[[], Iterator[bytes]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[bytes]:
        return self._make()


class _Buffered(Iterable[bytes]):
    """Records of an iterator held in one buffer, readable twice."""

    def __init__(self, records: Iterator[bytes]) -> None:
        self._data = bytearray()
        for rec in records:
            self._data += rec

    def __iter__(self) -> Iterator[bytes]:
        data = self._data
        return (data[i:i + RECORD_BYTES] for i in range(0, len(data), RECORD_BYTES))


def table_records(pack_no: int, table: bytes, entry_size: int) -> Iterator[bytes]:
    """Yield one record per entry of a pack table (each entry starts with the object's raw digest)."""
    for slot_no, start in enumerate(range(0, len(table), entry_size)):
        yield table[start:start + DIGEST_BYTES] + WHERE.pack(pack_no, slot_no)


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
            merged = Reiterable(lambda first=first, last=last: itertools.chain(first.each(), last.each()))
            segments.append(_segment(merged, first.count + last.count))
        self._segments = tuple(segments)

    def find(self, digest: bytes) -> Iterator[Where]:
        """Yield every (pack, slot) recorded for a digest, earliest added first."""
        for segment in self._segments:
            yield from segment.find(digest)

    def unique(self, keep: Keep) -> Iterator[bytes]:
        """Yield each digest once that has a record `keep(digest, pack, slot)` accepts."""
        segments = self._segments
        if len(segments) > 1:
            every = Reiterable(lambda old=segments: itertools.chain.from_iterable(s.each() for s in old))
            segments = (_segment(every, len(self)),)
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
