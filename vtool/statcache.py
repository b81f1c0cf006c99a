"""Remembers what a walk established, so an unchanged workspace is never re-hashed nor its manifests rebuilt.

Three tables in one sqlite file, written in one transaction (a kill leaves the old rows or the new ones):
the oid of each file by (inode, size, mtime, ctime); the manifest entry of each folder by its signature;
and the root oids the cache was found to hold in full, by the cache's own signature.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vtool.errors import UnsafePathError
from vtool.hashing import Oid

# A file modified within this window after we stat it could keep the same mtime (coarse
# kernel clocks tick every few ms), so such entries are trusted only once they are older.
RACY_WINDOW_NS = 50_000_000
# Filesystems with whole-second timestamps (FAT, some network mounts) need a wider window.
COARSE_WINDOW_NS = 2_000_000_000
NS_PER_SECOND = 1_000_000_000
BUSY_TIMEOUT_S = 30.0
IN_MEMORY = ":memory:"
# Queued entries are written once this many wait (each batch one transaction), so a huge scan holds a batch, not
# the tree; a kill between batches leaves only whole, true rows.
FLUSH_BATCH = 20_000
# sqlite's names for a file that is not (or no longer) a database; anything else (full, read-only) is not damage.
DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS stat (
        path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
        oid TEXT, recorded_ns INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS folder (
        path TEXT PRIMARY KEY, signature TEXT, oid TEXT, size INTEGER, files INTEGER
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS complete (oid TEXT PRIMARY KEY, cache TEXT) WITHOUT ROWID",
)


@dataclass(frozen=True, slots=True)
class Stamp:
    """The stat fields that change whenever a file's content can have changed."""

    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        """Take a stamp from a stat result."""
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class FolderMemo:
    """A folder's manifest entry as last built, and the signature of what the folder held then."""

    signature: str
    oid: Oid
    size: int
    files: int


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Tell a damaged file (rebuild it) from one that cannot be written (leave it)."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name in DAMAGED
    return not isinstance(exc, sqlite3.OperationalError)


def _window(mtime_ns: int) -> int:
    return COARSE_WINDOW_NS if mtime_ns % NS_PER_SECOND == 0 else RACY_WINDOW_NS


def is_settled(mtime_ns: int, ctime_ns: int, at_ns: int) -> bool:
    """Tell whether, at at_ns, a file stamped so was older than the racy window (a same-tick edit keeps stamps)."""
    return at_ns - max(mtime_ns, ctime_ns) >= _window(mtime_ns)


def changed_ns(stamp: Stamp) -> int:
    """Return when the file last changed, content (mtime) or inode (ctime, e.g. a new hard link)."""
    return max(stamp.mtime_ns, stamp.ctime_ns)


def settle(changed: int) -> None:
    """Sleep until a file last changed at `changed` is older than the racy window (never for future dates)."""
    wait_ns = changed + RACY_WINDOW_NS - time.time_ns()
    if 0 < wait_ns <= RACY_WINDOW_NS:
        time.sleep(wait_ns / NS_PER_SECOND)


class StatCache:
    """A sqlite table of repo-relative path -> (stamp, oid), read one folder at a time for fast lookups."""

    def __init__(self, db_path: Path, warn: Callable[[str], None] | None = None) -> None:
        if db_path.is_symlink():
            raise UnsafePathError(f"{db_path} is a symlink; refusing to write through it", f"delete {db_path}")
        self._warn = warn
        self._warned = False
        self._db = self._connect(db_path)
        self._rows: dict[str, tuple[int, int, int, int, str, int]] = {}
        self._rows_folder: str | None = None  # the folder whose rows _rows holds
        self._pending: dict[str, tuple[Stamp, Oid, int | None]] = {}
        self._folders: dict[str, FolderMemo] | None = None
        self._new_folders: dict[str, FolderMemo] = {}
        self._gone_folders: set[str] = set()
        self._complete: dict[Oid, str] = {}

    def _connect(self, db_path: Path) -> sqlite3.Connection:
        """Open the table, rebuilding a damaged file; if it cannot be written at all, keep it in memory."""
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return self._open(db_path)
            except sqlite3.DatabaseError as exc:
                if not _damaged(exc):
                    raise
            for suffix in ("", "-wal", "-shm"):  # only a cache: a damaged one is rebuilt, never trusted
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            return self._open(db_path)
        except (sqlite3.Error, OSError) as exc:
            self._skip(exc)
            return self._open(Path(IN_MEMORY))

    def _skip(self, exc: BaseException) -> None:
        """Warn once that the stat cache is not being saved: a full disk must not fail a read-only command."""
        if not self._warned and self._warn is not None:
            self._warn(f"warning: the stat cache under .vtool/state cannot be written ({exc}); "
                       "files will be hashed again next time")
        self._warned = True

    @staticmethod
    def _open(db_path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            db.execute(statement)
        return db

    def _load(self, folder: str) -> dict[str, tuple[int, int, int, int, str, int]]:
        """Read the rows of the files directly in one folder (one indexed range query), dropping the last folder's."""
        if self._rows_folder != folder:
            start = folder + "/" if folder else ""
            end = folder + "0" if folder else "\U0010ffff"  # "0" follows "/": the range holds exactly folder/...
            try:
                cursor = self._db.execute(
                    "SELECT path, ino, size, mtime_ns, ctime_ns, oid, recorded_ns FROM stat "
                    "WHERE path >= ? AND path < ? AND instr(substr(path, ?), '/') = 0", (start, end, len(start) + 1))
                self._rows = {row[0]: row[1:] for row in cursor}
            except sqlite3.Error as exc:  # unreadable: vouch for nothing, so every file is hashed
                self._skip(exc)
                self._rows = {}
            self._rows_folder = folder
        return self._rows

    def lookup(self, path: str, stamp: Stamp) -> Oid | None:
        """Return the remembered oid if the file is provably unchanged since it was recorded."""
        row = self._load(path.rpartition("/")[0]).get(path)
        if row is None:
            return None
        ino, size, mtime_ns, ctime_ns, oid, recorded_ns = row
        if (ino, size, mtime_ns, ctime_ns) != (stamp.ino, stamp.size, stamp.mtime_ns, stamp.ctime_ns):
            return None
        if not is_settled(mtime_ns, ctime_ns, recorded_ns):
            return None  # read too soon after its last change: a same-tick edit would have kept this stamp
        return oid

    def folders(self) -> dict[str, FolderMemo]:
        """Return every remembered folder by repo-relative path (one query, a row per folder)."""
        if self._folders is None:
            try:
                cursor = self._db.execute("SELECT path, signature, oid, size, files FROM folder")
                self._folders = {row[0]: FolderMemo(*row[1:]) for row in cursor}
            except sqlite3.Error as exc:  # unreadable: remember nothing, so every folder is built again
                self._skip(exc)
                self._folders = {}
        return self._folders

    def remember_folder(self, path: str, memo: FolderMemo) -> None:
        """Queue a folder's entry; the caller vouches that every stamp under it was settled.

        Nothing is queued when the table holds this very entry: a changed folder a status rebuilds to list
        its changes is the same each time, and rewriting it cost a transaction and a checkpoint per status.
        """
        if self._folders is not None and self._folders.get(path) == memo and path not in self._gone_folders:
            self._new_folders.pop(path, None)
        else:
            self._new_folders[path] = memo

    def forget_folders(self, under: str, kept: set[str]) -> None:
        """Queue the removal of remembered folders at or below `under` that are not in kept (they are gone)."""
        prefix = under + "/"
        self._gone_folders.update(p for p in self.folders() if (p == under or p.startswith(prefix)) and p not in kept)

    def complete_at(self, oid: Oid) -> str | None:
        """Return the cache signature at which every object under root oid was last found in the cache."""
        try:
            row = self._db.execute("SELECT cache FROM complete WHERE oid = ?", (oid,)).fetchone()
        except sqlite3.Error as exc:
            self._skip(exc)
            return None
        return None if row is None else str(row[0])

    def remember_complete(self, oid: Oid, cache_signature: str) -> None:
        """Queue that the cache held every object under oid when its signature was cache_signature; nothing when
        the table says so already (a no-change add then writes nothing, and closing does not checkpoint)."""
        if self.complete_at(oid) == cache_signature:
            self._complete.pop(oid, None)
        else:
            self._complete[oid] = cache_signature

    def record(self, path: str, stamp: Stamp, oid: Oid, read_ns: int | None = None) -> None:
        """Queue an entry; read_ns is when hashing began (None for a file we just wrote ourselves)."""
        self._pending[path] = (stamp, oid, read_ns)

    def carry(self, old: str, new: str) -> None:
        """Copy the entries of a moved path (and everything below it) to its new path, so a move rehashes nothing.

        Safe because every entry is checked against the file's stamp: a file the move touched fails that check.
        """
        self.flush()
        below = len(old) + 1
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("INSERT OR REPLACE INTO stat SELECT ? || substr(path, ?), ino, size, mtime_ns, "
                                 "ctime_ns, oid, recorded_ns FROM stat WHERE path = ? OR substr(path, 1, ?) = ?",
                                 (new, len(old) + 1, old, below, old + "/"))
        except (sqlite3.Error, OSError) as exc:  # as in flush: the move stands, the next status rehashes
            self._skip(exc)
        self._rows_folder = None

    def flush_if_full(self) -> None:
        """Write the queued entries once a batch is full (called between folders, on the thread that owns the db)."""
        if len(self._pending) >= FLUSH_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write queued entries in one transaction; files we wrote are stamped once the racy window is past."""
        if not (self._pending or self._new_folders or self._gone_folders or self._complete):
            return
        written = [changed_ns(stamp) for stamp, _, read_ns in self._pending.values() if read_ns is None]
        if written:
            settle(max(written))
        now = time.time_ns()
        rows = [(p, s.ino, s.size, s.mtime_ns, s.ctime_ns, oid, now if read_ns is None else read_ns)
                for p, (s, oid, read_ns) in self._pending.items()]
        folders = [(p, m.signature, m.oid, m.size, m.files) for p, m in self._new_folders.items()]
        gone, complete = list(self._gone_folders), list(self._complete.items())
        self._pending.clear()
        self._new_folders.clear()
        self._gone_folders.clear()
        self._complete.clear()
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("DELETE FROM folder WHERE path = ?", [(p,) for p in gone])
                self._db.executemany("INSERT OR REPLACE INTO folder VALUES (?, ?, ?, ?, ?)", folders)
                if complete:  # rows for an older cache signature can never match again
                    current = sorted({signature for _, signature in complete})
                    self._db.execute(f"DELETE FROM complete WHERE cache NOT IN ({', '.join('?' * len(current))})",
                                     current)
                    self._db.executemany("INSERT OR REPLACE INTO complete VALUES (?, ?)", complete)
        except (sqlite3.Error, OSError) as exc:  # disk full, read-only: the entries are simply not kept
            self._skip(exc)
            return
        self._rows_folder = None  # read again: the rows just written may be in it
        if self._folders is not None:
            for path in gone:
                self._folders.pop(path, None)
            self._folders.update({row[0]: FolderMemo(*row[1:]) for row in folders})

    def close(self) -> None:
        """Flush and close the database."""
        self.flush()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
