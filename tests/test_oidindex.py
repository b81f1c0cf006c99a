"""The in-memory pack index: compact (bytes per object bounded), exact lookups, preference order, merged views."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from vtool.hashing import OID_PREFIX, hash_bytes
from vtool.store import oidindex, pack
from vtool.store.local import LocalPacks
from vtool.store.oidindex import DigestSet, OidIndex, table_records
from vtool.store.pack import ENTRY, Slot, Table

INDEXED_OBJECTS = 100_000
PACK_OBJECTS = 25_000  # objects per synthetic pack table (packs of 16 MiB hold about this many small files)
MAX_BYTES_PER_OBJECT = 64  # table entry (32) + index record (24) + fan-out and slack
SET_OBJECTS = 50_000
MAX_SET_BYTES_PER_OBJECT = 40  # the digest (16) + bucket slack and the fan-out list; a set of oid strings takes 120


def _tables(count: int, per_pack: int, seed: int = 16) -> list[bytes]:
    rng = random.Random(seed)
    tables = []
    for start in range(0, count, per_pack):
        n = min(per_pack, count - start)
        tables.append(b"".join(ENTRY.pack(rng.randbytes(16), 16 + i, 1) for i in range(n)))
    return tables


def test_index_and_tables_hold_100k_objects_in_under_the_byte_budget() -> None:
    raw = _tables(INDEXED_OBJECTS, PACK_OBJECTS)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tables = [Table(bytes(memoryview(t))) for t in raw]  # a copy, so the tables count too
    index = OidIndex()
    for number, table in enumerate(tables):
        index.add(table_records(number, table.raw, ENTRY.size), len(table))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(index) == INDEXED_OBJECTS
    assert held / INDEXED_OBJECTS <= MAX_BYTES_PER_OBJECT, f"{held / INDEXED_OBJECTS:.1f} bytes per object"
    rng = random.Random(1)
    for _ in range(200):
        number = rng.randrange(len(tables))
        slot_no = rng.randrange(len(tables[number]))
        digest = tables[number][slot_no].oid[len(OID_PREFIX):]
        assert list(index.find(bytes.fromhex(digest))) == [(number, slot_no)]
    assert list(index.find(bytes(16))) == []


def test_every_copy_is_found_in_the_order_added_across_merged_segments() -> None:
    digest = bytes(range(16))
    index = OidIndex()
    for number in range(5):  # segments merge as they accumulate; order must survive every merge
        filler = _tables(40 * (number + 1), 1000, seed=number)[0]
        entry = ENTRY.pack(digest, 16, 1)
        index.add(table_records(number, filler + entry, ENTRY.size), len(filler) // ENTRY.size + 1)
    wanted = [(n, 40 * (n + 1)) for n in range(5)]
    assert list(index.find(digest)) == wanted
    assert sum(1 for d in index.unique(lambda *_: True) if d == digest) == 1
    assert len(set(index.unique(lambda *_: True))) == sum(40 * (n + 1) for n in range(5)) + 1


def test_a_digest_straddling_two_records_is_not_a_match() -> None:
    first, second = bytes([7] * 16), bytes([7] * 8 + [9] * 8)
    index = OidIndex()
    table = ENTRY.pack(first, 16, 0) + ENTRY.pack(second, 16, 0)
    index.add(table_records(0, table, ENTRY.size), 2)
    inside = first[12:] + b"\x00" * 4 + b"\x00" * 8  # bytes that occur across the first record's tail
    assert list(index.find(inside)) == []
    assert list(index.find(second)) == [(0, 1)]


def test_a_table_s_records_come_as_one_chunk_and_a_merge_passes_whole_segments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the index looped in Python over every record three times (making it, counting it, placing
    # it): records now come a table at a time and only the placing loops, so a merge takes two chunks.
    table = _tables(300, 300)[0]
    chunks = list(table_records(3, table, ENTRY.size))
    assert len(chunks) == 1 and len(chunks[0]) == 300 * oidindex.RECORD_BYTES
    passed: list[int] = []
    real = oidindex._segment  # noqa: SLF001

    def counted(chunks: list[bytes], count: int) -> oidindex._Segment:  # noqa: SLF001
        chunks = list(chunks)
        passed.append(len(chunks))
        return real(chunks, count)

    monkeypatch.setattr(oidindex, "_segment", counted)
    index = OidIndex()
    index.add(chunks, 300)
    index.add(table_records(4, _tables(300, 300, seed=2)[0], ENTRY.size), 300)
    assert passed == [1, 1, 2]  # the second add merged the two segments from their two record buffers
    for slot_no in (0, 150, 299):
        assert list(index.find(table[slot_no * ENTRY.size:slot_no * ENTRY.size + 16])) == [(3, slot_no)]


def test_first_returns_the_earliest_copy_keep_accepts_across_segments() -> None:
    digest = bytes(range(16))
    index = OidIndex()
    for number in range(3):
        filler = _tables(50 * (number + 1), 1000, seed=number)[0]
        index.add(table_records(number, filler + ENTRY.pack(digest, 16, 1), ENTRY.size),
                  len(filler) // ENTRY.size + 1)
    assert index.first(digest, lambda *_: True) == (0, 50)
    assert index.first(digest, lambda _, pack_no, slot_no: pack_no > 0) == (1, 100)
    assert index.first(digest, lambda *_: False) is None
    straddling = digest[8:] + oidindex.WHERE.pack(0, 50)  # a digest's tail and its where: inside one record
    assert index.first(straddling, lambda *_: True) is None


def test_table_reads_back_the_slots_it_was_built_from() -> None:
    slots = (Slot(hash_bytes(b"a"), 16, 1), Slot(hash_bytes(b""), 17, 0))
    table = Table(pack.encode_table(slots))
    assert len(table) == 2 and table == slots and list(table) == list(slots)
    assert table[-1] == slots[1] and table[0:1] == slots[:1]


def test_local_packs_find_objects_of_packs_added_after_loading_and_forget_removed_ones(tmp_path) -> None:
    packs = LocalPacks(tmp_path)
    first = packs.write([(hash_bytes(b"one"), b"one"), (hash_bytes(b"two"), b"two")], pack.KIND_DATA)[0]
    assert packs.read(hash_bytes(b"two"))[0] == b"two"
    second = packs.write([(hash_bytes(b"two"), b"two"), (hash_bytes(b"three"), b"three")], pack.KIND_DATA)[0]
    assert packs.locate(hash_bytes(b"two")).pack == first.name
    packs.mark_damaged(hash_bytes(b"two"), first.name)
    assert packs.locate(hash_bytes(b"two")).pack == second.name
    packs.remove_pack(first.name)
    assert packs.locate(hash_bytes(b"one")) is None
    assert sorted(packs.oids()) == sorted([hash_bytes(b"two"), hash_bytes(b"three")])
    assert LocalPacks(tmp_path).locate(hash_bytes(b"three")).slot.length == 5


def test_digest_set_holds_each_oid_once_in_under_its_byte_budget() -> None:
    oids = [hash_bytes(str(i).encode()) for i in range(SET_OBJECTS)]
    tracemalloc.start()
    try:
        held = DigestSet()
        held.update(oids)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used <= MAX_SET_BYTES_PER_OBJECT * SET_OBJECTS, f"{used / SET_OBJECTS:.1f} bytes per oid"
    assert len(held) == SET_OBJECTS
    assert held.add(oids[7]) is False and len(held) == SET_OBJECTS
    assert all(oid in held for oid in oids)
    assert hash_bytes(b"absent") not in held and None not in held
    assert sorted(held) == sorted(oids)


def test_digest_set_finds_no_oid_in_the_bytes_straddling_two_others() -> None:
    prefix = bytes(2)
    first = prefix + bytes(range(1, 7)) + prefix + bytes(range(7, 13))
    second = prefix + bytes(range(13, 27))
    straddling = first[8:] + second[:8]  # same bucket: it also starts with the prefix
    held = DigestSet()
    held.update(OID_PREFIX + d.hex() for d in (first, second))
    assert OID_PREFIX + straddling.hex() not in held
    assert held.add(OID_PREFIX + straddling.hex()) is True
    assert OID_PREFIX + straddling.hex() in held and len(held) == 3
