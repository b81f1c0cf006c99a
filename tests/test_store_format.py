"""docs/remote-format.md as tests: canonical pack and index bytes, and every row of its invalid-input table."""

from __future__ import annotations

import struct

import pytest

from vtool.errors import FormatError, RemoteError
from vtool.hashing import hash_bytes
from vtool.store import index, layout, pack
from vtool.store.pack import ENTRY, FOOTER, HEADER_SIZE

HELLO = b"hello\n"


def two_objects() -> tuple[bytes, pack.PackInfo]:
    return pack.pack_bytes([(hash_bytes(HELLO), HELLO), (hash_bytes(b""), b"")])


def test_the_documented_example_pack_is_110_bytes_and_round_trips() -> None:
    data, info = two_objects()
    assert len(data) == 110
    assert data[:16] == b"VTPACK\x00\x01" + bytes(8)
    assert data[16:22] == HELLO
    assert data[-8:] == b"VTPKTAIL"
    assert struct.unpack(">QQ", data[-24:-8]) == (2, 22)
    assert info.name == hash_bytes(data)[len("xxh128:"):]
    assert pack.parse(data, info.name) == info
    assert [(s.offset, s.length) for s in info.slots] == [(16, 6), (22, 0)]


def test_a_salt_in_the_header_changes_the_name_but_not_the_objects() -> None:
    plain, info = pack.pack_bytes([(hash_bytes(b"x"), b"x")])
    import io

    buf = io.BytesIO()
    writer = pack.PackWriter(buf, pack.KIND_DATA, b"salted!")
    writer.add(hash_bytes(b"x"), b"x")
    salted = writer.finish()
    assert salted.name != info.name and salted.slots == info.slots
    assert pack.parse(buf.getvalue(), salted.name).slots == info.slots


def test_a_tree_pack_records_its_kind() -> None:
    data, info = pack.pack_bytes([(hash_bytes(b"x"), b"x")], pack.KIND_TREE)
    assert data[8] == pack.KIND_TREE and pack.parse(data, info.name).kind == pack.KIND_TREE


def with_table(data: bytes, table: bytes, count: int | None = None, table_offset: int | None = None) -> bytes:
    """Rebuild a pack's tail with another table (and footer fields), keeping header and object bytes."""
    n = len(table) // ENTRY.size if count is None else count
    body_end = len(data) - FOOTER.size - ENTRY.size * 2
    t = body_end if table_offset is None else table_offset
    return data[:body_end] + table + FOOTER.pack(n, t, b"VTPKTAIL")


def entries(*rows: tuple[bytes, int, int]) -> bytes:
    return b"".join(ENTRY.pack(*r) for r in rows)


D1 = bytes.fromhex(hash_bytes(HELLO)[7:])
D2 = bytes.fromhex(hash_bytes(b"")[7:])


def mutate(kind: str) -> bytes:
    data, _ = two_objects()
    if kind == "truncated":
        return data[:30]
    if kind == "magic":
        return b"XXPACK" + data[6:]
    if kind == "version":
        return data[:7] + b"\x02" + data[8:]
    if kind == "kind":
        return data[:8] + b"\x07" + data[9:]
    if kind == "padding":
        return data[:12] + b"\x01" + data[13:]
    if kind == "footer":
        return data[:-8] + b"NOTATAIL"
    if kind == "empty":
        return pack.header(0) + FOOTER.pack(0, HEADER_SIZE, b"VTPKTAIL")
    if kind == "huge":
        return with_table(data, entries((D1, 16, 6), (D2, 22, 0)), count=1 << 40)
    if kind == "table-end":
        return with_table(data, entries((D1, 16, 6), (D2, 22, 0)), table_offset=23)
    if kind == "first-offset":
        return with_table(data, entries((D1, 17, 5), (D2, 22, 0)))
    if kind == "overlap":
        return with_table(data, entries((D1, 16, 6), (D2, 20, 2)))
    if kind == "past-end":
        return with_table(data, entries((D1, 16, 6), (D2, 22, 178)))
    if kind == "twice":
        return with_table(data, entries((D1, 16, 6), (D1, 22, 0)))
    if kind == "wrapping":  # offset + length past 2**64: the column check must not wrap round to a match
        return with_table(data, entries((D1, 16, (1 << 64) - 1), (D2, 22, 0)))
    raise AssertionError(kind)


PACK_CASES = [
    ("truncated", "truncated"),
    ("magic", "not a vtool pack"),
    ("version", "version 2 is newer"),
    ("kind", "unknown kind 7"),
    ("footer", "footer missing"),
    ("empty", "holds no objects"),
    ("huge", "declares 1099511627776 objects"),
    ("table-end", "table does not end at the footer"),
    ("first-offset", "object 0 starts at 17, expected 16"),
    ("overlap", "object 1 starts at 20, expected 22"),
    ("past-end", "objects end at 200, table starts at 22"),
    ("twice", "twice"),
    ("wrapping", "objects end at 18446744073709551631, table starts at 22"),
]


@pytest.mark.parametrize(("kind", "message"), PACK_CASES, ids=[c[0] for c in PACK_CASES])
def test_invalid_packs_are_rejected_from_their_table_alone(kind: str, message: str) -> None:
    import io

    data = mutate(kind)
    with pytest.raises(FormatError, match=message):
        pack.read_info(io.BytesIO(data), len(data), "p")
    with pytest.raises(FormatError, match=message):
        pack.parse(data, "p")


def test_a_well_formed_table_is_checked_by_column_without_a_walk_of_its_entries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Walking the entries in Python was a quarter of building the cache's index at every first lookup.
    def walked(*_: object) -> None:
        raise AssertionError("the entries were walked one by one")

    monkeypatch.setattr(pack, "_refuse", walked)
    objects = [(hash_bytes(bytes([i]) * i), bytes([i]) * i) for i in range(200)]
    data, info = pack.pack_bytes(objects)
    import io

    got = pack.read_info(io.BytesIO(data), len(data), info.name)
    assert [(s.oid, s.offset, s.length) for s in got.slots] == [(s.oid, s.offset, s.length) for s in info.slots]


def test_a_pack_over_the_cap_is_refused_before_reading_its_table() -> None:
    with pytest.raises(FormatError, match="over the 67108864 byte cap"):
        pack.decode_footer(FOOTER.pack(1, 16, b"VTPKTAIL"), pack.PACK_CAP + 1, "p")


def test_an_object_not_matching_its_digest_is_reported_by_parse() -> None:
    data, info = two_objects()
    bad = data[:16] + b"jello\n" + data[22:]
    with pytest.raises(FormatError, match=f"corrupt object {hash_bytes(HELLO)}"):
        pack.parse(bad, info.name)


def test_a_pack_not_hashing_to_its_name_is_reported() -> None:
    data, _ = two_objects()
    with pytest.raises(FormatError, match="do not hash to its name"):
        pack.parse(data, "0" * 32)


def test_the_writer_refuses_to_grow_a_pack_past_the_cap() -> None:
    writer = pack.PackWriter(_Discard(), pack.KIND_DATA)
    assert writer.fits(pack.PACK_CAP)  # an empty pack takes any object that is itself under the cap
    writer.add(hash_bytes(b"a"), b"a")
    assert not writer.fits(pack.PACK_CAP - 100)
    assert writer.fits(1000)


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def sample_index() -> tuple[index.Index, bytes]:
    _, info = two_objects()
    idx = index.Index((info,), (index.Mark(index.MARK_PACK, "ab" * 16, 1_700_000_000),))
    return idx, index.encode(idx)


def test_an_index_round_trips_and_copies_each_pack_table() -> None:
    idx, data = sample_index()
    assert data[:8] == b"VTINDEX\x01"
    assert len(data) == 16 + 32 + 2 * 32 + 32
    assert index.decode(data, "i") == idx


def index_mutation(kind: str) -> bytes:
    idx, data = sample_index()
    if kind == "magic":
        return b"XX" + data[2:]
    if kind == "version":
        return data[:7] + b"\x02" + data[8:]
    if kind == "packs":
        return data[:8] + struct.pack(">I", 0xFFFFFFFF) + data[12:]
    if kind == "table":
        entry = data[16:48]
        bad_table = entries((D1, 16, 6), (D2, 23, 0))
        return data[:16] + entry + bad_table + data[112:]
    if kind == "twice":
        info = idx.packs[0]
        return index.encode(index.Index((info, info)))
    if kind == "mark":
        return data[:112] + b"\x09" + data[113:]
    if kind == "trailing":
        return data + b"abc"
    raise AssertionError(kind)


INDEX_CASES = [
    ("magic", "not a vtool index"),
    ("version", "version 2 is newer"),
    ("packs", "declares 4294967295 packs"),
    ("table", "object 1 starts at 23, expected 22"),
    ("twice", "names pack .* twice"),
    ("mark", "unknown mark kind 9"),
    ("trailing", "3 bytes after the last mark"),
]


@pytest.mark.parametrize(("kind", "message"), INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_invalid_indexes_are_rejected(kind: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        index.decode(index_mutation(kind), "i")


def test_format_file_bytes_and_versions() -> None:
    assert layout.format_bytes() == b"vtool-store 1\n"
    assert layout.parse_format(None, "origin") == layout.LOOSE_LAYOUT
    assert layout.parse_format(b"vtool-store 1\n", "origin") == 1
    with pytest.raises(RemoteError, match="uses object-store format 2; this vtool reads up to format 1"):
        layout.parse_format(b"vtool-store 2\n", "origin")
    for bad in (b"hello", b"vtool-store 1", b"vtool-store x\n", b"vtool-store 0\n", b"vtool-store 1\n" * 10):
        with pytest.raises(FormatError, match="format file vtool-format is corrupt"):
            layout.parse_format(bad, "origin")
