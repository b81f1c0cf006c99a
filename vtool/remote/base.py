"""The one protocol every remote implements: objects keyed by oid, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from vtool.config import RemoteConfig
from vtool.hashing import OID_PREFIX

__all__ = ["FANOUT_CHARS", "OID_PREFIX", "Remote", "RemoteConfig", "object_key"]

FANOUT_CHARS = 2


def object_key(oid: str) -> str:
    """Map `xxh128:<32 hex>` to the relative key `<2 hex>/<30 hex>` used by the cache and every remote."""
    digest = oid[len(OID_PREFIX):]
    return f"{digest[:FANOUT_CHARS]}/{digest[FANOUT_CHARS:]}"


class Remote(Protocol):
    """Object storage addressed by oid; implementations must never expose a partial object under its key."""

    name: str

    def describe(self) -> str:
        """Return a short human description (URL, endpoint) that never contains secrets."""

    def iter_oids(self, fanout: str = "") -> Iterator[str]:
        """Yield the oid of every object stored (only under one `<2 hex>` fan-out folder when given)."""

    def has(self, oid: str) -> bool:
        """Tell whether the object exists (one request)."""

    def put(self, oid: str, src: Path) -> None:
        """Upload `src` as the object `oid`, atomically: readers see all of it or nothing."""

    def get(self, oid: str, dest: BinaryIO) -> None:
        """Stream the object's bytes into `dest`; raise RemoteObjectMissingError when absent."""

    def remove(self, oid: str) -> None:
        """Delete the object; absent objects are not an error."""

    def close(self) -> None:
        """Release connections and pools."""
