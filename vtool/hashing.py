"""Streaming XXH3-128 and the Oid text form `xxh128:<32 lowercase hex>`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import xxhash

from vtool.errors import FormatError

OID_PREFIX = "xxh128:"
DIGEST_HEX_CHARS = 32
OID_LENGTH = len(OID_PREFIX) + DIGEST_HEX_CHARS
CHUNK_SIZE = 1 << 20
# The first read of a stream: most files are small, and a fresh 1 MiB buffer per file (zeroed, or
# mapped and unmapped by malloc) costs more than reading and hashing a 16 KiB file (docs/performance.md).
FIRST_READ = 64 << 10
_HEX = frozenset("0123456789abcdef")

Oid = str


@dataclass(frozen=True, slots=True)
class Obj:
    """An object by hash: its oid, size and, for a manifest, the objects it names (slots: one per file moved)."""

    oid: Oid
    size: int | None
    children: tuple[Oid, ...] = ()


def is_oid(text: object) -> bool:
    """Tell whether text is exactly `xxh128:` followed by 32 lowercase hex digits."""
    return (
        isinstance(text, str)
        and len(text) == OID_LENGTH
        and text.startswith(OID_PREFIX)
        and all(c in _HEX for c in text[len(OID_PREFIX):])
    )


def parse_oid(text: object, where: str = "oid") -> Oid:
    """Return text as an Oid, or raise a FormatError naming where it came from."""
    if not is_oid(text):
        raise FormatError(f"{where}: invalid oid {str(text)[:80]!r}", "expected xxh128: and 32 lowercase hex digits")
    return str(text)


def hash_bytes(data: bytes) -> Oid:
    """Hash an in-memory buffer (manifests, small reads)."""
    return OID_PREFIX + xxhash.xxh3_128_hexdigest(data)


def new_hasher() -> xxhash.xxh3_128:
    """Start an incremental hash, for streams hashed while they are copied."""
    return xxhash.xxh3_128()


def oid_of(hasher: xxhash.xxh3_128) -> Oid:
    """Finish an incremental hash as an Oid."""
    return OID_PREFIX + hasher.hexdigest()


def hash_stream(src: BinaryIO, sink: Callable[[bytes | memoryview], object] | None = None,
                hasher: xxhash.xxh3_128 | None = None) -> tuple[Oid, int]:
    """Hash a stream in fixed chunks (never the whole file in memory), feeding each chunk to sink.

    Returns the oid and the bytes read, counted as they are hashed (never a size taken before reading);
    a hasher already fed with a first part of the stream may be passed to continue it.
    """
    hasher = hasher or xxhash.xxh3_128()
    view = memoryview(bytearray(FIRST_READ))
    size = 0
    while True:
        n = src.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        chunk = view[:n]
        hasher.update(chunk)
        if sink is not None:
            sink(chunk)
        if n == len(view) < CHUNK_SIZE:  # a big file: full-size chunks from here on
            view = memoryview(bytearray(CHUNK_SIZE))
        size += n
    return OID_PREFIX + hasher.hexdigest(), size


class HashingSink:
    """A write-only file object that hashes and counts what passes through it on its way to out (if any)."""

    def __init__(self, out: Callable[[bytes], object] | None = None) -> None:
        self.hasher = xxhash.xxh3_128()
        self.size = 0
        self.out = out

    def write(self, data: bytes) -> int:
        """Hash, count and pass on one chunk."""
        self.hasher.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out(data)
        return len(data)

    @property
    def oid(self) -> Oid:
        """Return the oid of everything written so far."""
        return OID_PREFIX + self.hasher.hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[Oid, int]:
    """Hash a file's content; small files in one read, large ones streamed."""
    with open(path, "rb", buffering=0) as src:
        return hash_stream(src)
