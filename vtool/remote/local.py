"""A remote that is a folder: a NAS mount, a USB disk, or a temp dir in tests."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vtool.errors import CorruptObjectError, RemoteError, RemoteObjectMissingError, SpecialFileError
from vtool.fsutil import atomic_copy, atomic_writer, is_temp_name, open_regular
from vtool.remote.base import RemoteConfig
from vtool.store.backend import Listed

COPY_CHUNK = 1 << 20


class LocalRemote:
    """Keys as files below a folder, written by temp file and rename."""

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

    def _path(self, key: str) -> Path:
        return self.root / key

    def list(self, prefix: str = "") -> Iterator[Listed]:
        """Walk the folder the prefix names (all of it for ""), skipping temp files and anything not a file."""
        folder = prefix.rpartition("/")[0]
        base = self.root / folder if folder else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                key = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
                if is_temp_name(name) or not key.startswith(prefix):
                    continue
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield Listed(key, st.st_size, st.st_mtime)

    def stat(self, key: str) -> int | None:
        """Return the file's size if it exists as a regular file."""
        try:
            st = os.lstat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None  # a FIFO or symlink planted there is no object

    def put(self, key: str, src: Path | bytes) -> None:
        """Copy to a temp file beside the final name, then rename over it."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, bytes):
            with atomic_writer(dest) as out:
                out.write(src)
        else:
            atomic_copy(src, dest)

    def get(self, key: str, dest: BinaryIO, start: int = 0, length: int | None = None) -> None:
        """Stream the file (or a range of it) into `dest`."""
        try:
            with open_regular(self._path(key), f"remote {self.name!r}: {key}") as src:
                src.seek(start)
                left = length
                while left is None or left > 0:
                    chunk = src.read(COPY_CHUNK if left is None else min(COPY_CHUNK, left))
                    if not chunk:
                        break
                    dest.write(chunk)
                    if left is not None:
                        left -= len(chunk)
        except (FileNotFoundError, IsADirectoryError):
            raise RemoteObjectMissingError(key, self.name) from None
        except SpecialFileError as exc:  # one bad object, not a broken remote: the others still transfer
            raise CorruptObjectError(exc.message, "delete it from the remote folder; a push puts the object back") \
                from None

    def remove(self, key: str) -> None:
        """Unlink the file if present."""
        self._path(key).unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release."""
