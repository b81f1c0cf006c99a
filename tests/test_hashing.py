"""XXH3-128 oids: known vectors, streaming equals one-shot, and the strict oid text form."""

from __future__ import annotations

import io
import os

import pytest
import xxhash

from vtool.errors import FormatError
from vtool.hashing import CHUNK_SIZE, hash_bytes, hash_file, hash_stream, is_oid, new_hasher, oid_of, parse_oid

MIB = 1 << 20


@pytest.mark.parametrize(("data", "digest"), [
    (b"", "99aa06d3014798d86001c324468d497f"),  # the published XXH3-128 of empty input
    (b"abc", "06b05ab6733a618578af5f94892f3950"),
    (b"hello\n", "6bba86c7e069f56d5a10b435f1c8e49c"),
])
def test_known_vectors(data: bytes, digest: str) -> None:
    assert xxhash.xxh3_128_hexdigest(data) == digest
    assert hash_bytes(data) == "xxh128:" + digest


@pytest.mark.parametrize("size", [0, 1, MIB, MIB + 1, 3 * MIB + 7])
def test_streaming_equals_one_shot(size: int, tmp_path) -> None:
    data = os.urandom(size)
    expected = "xxh128:" + xxhash.xxh3_128_hexdigest(data)
    assert hash_bytes(data) == expected
    assert hash_stream(io.BytesIO(data)) == (expected, size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert hash_file(path) == (expected, size)
    hasher = new_hasher()
    for start in range(0, size, 4096):
        hasher.update(data[start:start + 4096])
    assert oid_of(hasher) == expected


def test_stream_feeds_every_byte_to_the_sink_in_chunks() -> None:
    data = os.urandom(2 * CHUNK_SIZE + 3)
    chunks: list[bytes] = []
    oid, size = hash_stream(io.BytesIO(data), sink=lambda chunk: chunks.append(bytes(chunk)))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= CHUNK_SIZE
    assert (oid, size) == (hash_bytes(data), len(data))


@pytest.mark.parametrize(("text", "valid"), [
    ("xxh128:" + "0" * 32, True),
    ("xxh128:99aa06d3014798d86001c324468d497f", True),
    ("xxh128:99AA06D3014798D86001C324468D497F", False),  # uppercase hex
    ("xxh128:" + "0" * 31, False),  # too short
    ("xxh128:" + "0" * 33, False),  # too long
    ("xxh128:" + "g" * 32, False),  # not hex
    ("md5:" + "0" * 32, False),
    ("XXH128:" + "0" * 32, False),
    ("0" * 32, False),  # no prefix
    (" xxh128:" + "0" * 31, False),
    ("xxh128:" + "0" * 31 + "\n", False),
    ("", False),
    (None, False),
    (12, False),
    (b"xxh128:" + b"0" * 32, False),  # bytes are not text
])
def test_is_oid(text: object, valid: bool) -> None:
    assert is_oid(text) is valid


def test_parse_oid_names_where_the_bad_oid_came_from() -> None:
    assert parse_oid("xxh128:" + "a" * 32) == "xxh128:" + "a" * 32
    with pytest.raises(FormatError, match=r"data\.vtool: invalid oid 'md5:abc'"):
        parse_oid("md5:abc", "data.vtool")
