"""A remote that is a folder: a NAS mount, a USB disk, or a temp dir in tests."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vtool.errors import CorruptObjectError, RemoteError, RemoteObjectMissingError, SpecialFileError
from vtool.fsutil import atomic_copy, is_hex, open_regular
from vtool.remote.base import FANOUT_CHARS, OID_PREFIX, RemoteConfig, object_key

COPY_CHUNK = 1 << 20
DIGEST_CHARS = 32


class LocalRemote:
    """Objects as files under `<root>/<2 hex>/<30 hex>`, written by temp file and rename."""

    def __init__(self, config: RemoteConfig) -> None:
        self.name = config.name
        self.root = Path(os.path.expanduser(config.url.removeprefix("file://")))
        if not self.root.is_dir():
            raise RemoteError(
                f"remote {self.name!r}: folder {self.root} does not exist",
                f"create it with: mkdir -p {self.root}",
            )

    def describe(self) -> str:
        """Return the folder path."""
        return str(self.root)

    def _path(self, oid: str) -> Path:
        return self.root / object_key(oid)

    def iter_oids(self, fanout: str = "") -> Iterator[str]:
        """Walk the two-level fan-out (or one folder of it), skipping anything that is not ours."""
        folders = [self.root / fanout] if fanout else [Path(e.path) for e in os.scandir(self.root)]
        for bucket in folders:
            if len(bucket.name) != FANOUT_CHARS or not is_hex(bucket.name) or not bucket.is_dir():
                continue
            for entry in os.scandir(bucket):
                rest = entry.name
                if len(rest) == DIGEST_CHARS - FANOUT_CHARS and is_hex(rest) and entry.is_file(follow_symlinks=False):
                    yield OID_PREFIX + bucket.name + rest

    def has(self, oid: str) -> bool:
        """Check the object file exists as a regular file (a FIFO or symlink planted there is no object)."""
        try:
            return stat.S_ISREG(os.lstat(self._path(oid)).st_mode)
        except FileNotFoundError:
            return False

    def put(self, oid: str, src: Path) -> None:
        """Copy to a temp file beside the final name, then rename over it."""
        dest = self._path(oid)
        dest.parent.mkdir(exist_ok=True)
        atomic_copy(src, dest)

    def get(self, oid: str, dest: BinaryIO) -> None:
        """Stream the object file into `dest`."""
        try:
            with open_regular(self._path(oid), f"remote {self.name!r}: object {oid}") as src:
                shutil.copyfileobj(src, dest, COPY_CHUNK)
        except FileNotFoundError:
            raise RemoteObjectMissingError(oid, self.name) from None
        except SpecialFileError as exc:  # one bad object, not a broken remote: the others still transfer
            raise CorruptObjectError(exc.message, "delete it from the remote folder; a push puts the object back") \
                from None

    def remove(self, oid: str) -> None:
        """Unlink the object file if present."""
        self._path(oid).unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release."""
