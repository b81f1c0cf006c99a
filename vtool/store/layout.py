"""The remote's format-version file and the keys of loose objects, packs and indexes under a prefix."""

from __future__ import annotations

from vtool.errors import FormatError, RemoteError
from vtool.hashing import OID_PREFIX, Oid

FORMAT_KEY = "vtool-format"
FORMAT_WORD = b"vtool-store"
FORMAT_VERSION = 1
LOOSE_LAYOUT = 0  # a remote with no format file, written by releases before packs
MAX_FORMAT_BYTES = 64
PACKS_DIR = "packs"
INDEX_DIR = "index"
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
GC_LOCK_KEY = "locks/gc"
FANOUT = 2


def object_key(oid: Oid) -> str:
    """Map `xxh128:<32 hex>` to the relative key `<2 hex>/<30 hex>` used by the cache and every remote."""
    digest = oid[len(OID_PREFIX):]
    return f"{digest[:FANOUT]}/{digest[FANOUT:]}"


def pack_key(name: str) -> str:
    """Return the key of the pack with this name."""
    return f"{PACKS_DIR}/{name}{PACK_SUFFIX}"


def index_key(name: str) -> str:
    """Return the key of the index with this name."""
    return f"{INDEX_DIR}/{name}{INDEX_SUFFIX}"


def format_bytes(version: int = FORMAT_VERSION) -> bytes:
    """Return the format file's exact bytes."""
    return FORMAT_WORD + b" " + str(version).encode() + b"\n"


def parse_format(data: bytes | None, remote: str) -> int:
    """Return the layout version a format file declares (0 when absent); refuse a future or corrupt one."""
    if data is None:
        return LOOSE_LAYOUT
    word, _, rest = data.partition(b" ")
    number = rest[:-1]
    if len(data) > MAX_FORMAT_BYTES or word != FORMAT_WORD or not rest.endswith(b"\n") or not number.isdigit():
        raise FormatError(f"remote {remote!r}: the format file {FORMAT_KEY} is corrupt",
                          f"it should hold {format_bytes()!r}")
    version = int(number)
    if version > FORMAT_VERSION:
        raise RemoteError(f"remote {remote!r} uses object-store format {version}; this vtool reads up to "
                          f"format {FORMAT_VERSION}", "upgrade vtool")
    if version < 1:
        raise FormatError(f"remote {remote!r}: the format file {FORMAT_KEY} is corrupt")
    return version


def shown_key(key: str) -> str:
    """Name a key for messages: a loose object by its oid (what users see everywhere else), others as they are."""
    digest = key.replace("/", "")
    if len(key) == FANOUT + 1 + 30 and key[FANOUT] == "/" and all(c in "0123456789abcdef" for c in digest):
        return OID_PREFIX + digest
    return key
