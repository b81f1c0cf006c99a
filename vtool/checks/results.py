"""The results cache: table facts stored by (the check's data key, the data's oid), so unchanged data is not read."""

from __future__ import annotations

import contextlib
from pathlib import Path

from vtool.checks.table import Facts
from vtool.fsutil import atomic_write, is_hex, make_dirs_inside
from vtool.hashing import OID_PREFIX, Oid

FOLDER = "checks"
SUFFIX = ".json"


class ResultsCache:
    """One small JSON file per (check, oid) under .vtool/state/checks/; a damaged entry is read as a miss."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.folder = state_dir / FOLDER

    def _path(self, key: str, oid: Oid) -> Path:
        digest = oid[len(OID_PREFIX):]
        if not (is_hex(key) and is_hex(digest)):
            raise ValueError(f"bad results-cache key {key!r}/{oid!r}")
        return self.folder / f"{key}-{digest}{SUFFIX}"

    def get(self, key: str, oid: Oid) -> Facts | None:
        """Return the facts recorded for this check and data, or None."""
        try:
            return Facts.from_json(self._path(key, oid).read_bytes())
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def put(self, key: str, oid: Oid, facts: Facts) -> None:
        """Record facts; a cache that cannot be written (full disk, read-only) only costs a reread later."""
        with contextlib.suppress(OSError):
            make_dirs_inside(self.state_dir.parent, self.folder)
            atomic_write(self._path(key, oid), facts.to_json(), durable=False)
