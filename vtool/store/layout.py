"""The remote's format-version file and the keys of loose objects, packs and indexes under a prefix."""

from __future__ import annotations

from vtool.errors import FormatError, RemoteError
from vtool.fsutil import is_hex
from vtool.hashing import OID_PREFIX, Oid

FORMAT_KEY = "vtool-format"
FORMAT_WORD = b"vtool-store"
FORMAT_VERSION = 1
LOOSE_LAYOUT = 0  # a remote with no format file, written by releases before packs
MAX_FORMAT_BYTES = 64
PACKS_DIR = "packs"
OUTGOING_DIR = "outgoing"  # the cache's scratch folder for packs a push builds (gc clears what a kill left)
# Objects below this size are packed (measured in docs/remote-format.md); here, not in pack.py, so the cache
# knows it without importing the pack format.
PACK_THRESHOLD = 1 << 20
INDEX_DIR = "index"
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
GC_LOCK_KEY = "locks/gc"
# Loose objects live under `<2 hex>/<30 hex>` in the cache and on every remote (git's loose-object fan-out).
FANOUT = 2
DIGEST_CHARS = 32
LOOSE_KEY_CHARS = DIGEST_CHARS + 1


def object_key(oid: Oid) -> str:
    """Map `xxh128:<32 hex>` to the relative key `<2 hex>/<30 hex>` used by the cache and every remote."""
    digest = oid[len(OID_PREFIX):]
    return f"{digest[:FANOUT]}/{digest[FANOUT:]}"


def fanout_of(oid: Oid) -> str:
    """Return the `<2 hex>` folder a loose object is kept in."""
    return oid[len(OID_PREFIX):len(OID_PREFIX) + FANOUT]


def is_fanout(name: str) -> bool:
    """Tell whether a folder name is a `<2 hex>` fan-out folder."""
    return len(name) == FANOUT and is_hex(name)


def key_oid(key: str) -> Oid | None:
    """Return the oid a loose key `<2 hex>/<30 hex>` names, or None for anything else (temp files, packs, strays)."""
    if len(key) != LOOSE_KEY_CHARS or key[FANOUT] != "/":
        return None
    digest = key[:FANOUT] + key[FANOUT + 1:]
    return OID_PREFIX + digest if is_hex(digest) else None


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
    return key_oid(key) or key
