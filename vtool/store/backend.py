"""The one protocol every remote implements (vtool/remote/ has the implementations): bytes by key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol


class Listed(NamedTuple):
    """One key a listing returned: its size and when it was last written (Unix seconds)."""

    key: str
    size: int
    mtime: float


class Remote(Protocol):
    """Keys (relative paths like `ab/cdef...` or `packs/<name>.pack`) holding immutable bytes.

    Implementations must never expose a partial value under its key.
    """

    name: str

    def describe(self) -> str:
        """Return a short human description (URL, endpoint) that never contains secrets."""

    def list(self, prefix: str = "") -> Iterator[Listed]:
        """Yield every stored key starting with prefix (a folder such as `packs/` or `ab/`), with size and mtime."""

    def stat(self, key: str) -> int | None:
        """Return the size stored under key, None when absent (one request)."""

    def put(self, key: str, src: Path | bytes) -> None:
        """Store a file's or a buffer's bytes under key, atomically: readers see all of it or nothing."""

    def get(self, key: str, dest: BinaryIO, start: int = 0, length: int | None = None) -> None:
        """Stream the value (or `length` bytes of it from `start`: one single-range request) into dest.

        Raise RemoteObjectMissingError when the key is absent.
        """

    def remove(self, key: str) -> None:
        """Delete the key; absent keys are not an error."""

    def close(self) -> None:
        """Release connections and pools."""
