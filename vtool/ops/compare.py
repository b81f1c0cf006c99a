"""diff's changes counted by kind: each kind spooled to a temp file in sorted runs, so two versions that differ
in every one of a million files are compared without holding a change per file."""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from vtool.hashing import Oid
from vtool.manifest import Entry
from vtool.store.oidindex import DigestSet

# Changed files of each kind a diff keeps for its human output unless asked for all (the CLI shows this many
# rows, then "... and K more").
SHOWN_CHANGES = 50
# Lines of one kind held in memory before they are sorted and written out as a run (about 1.5 MB of them).
SPOOL_RUN = 8_192
# Bytes read from a run at a time while the runs are merged (a million changes make about 120 runs).
READ_CHUNK = 16 * 1024
FIELDS = 5


@dataclass(frozen=True)
class FileChange:
    """A file that differs: old/new sizes and oids (None on the side where it is absent)."""

    path: str
    old_size: int | None = None
    new_size: int | None = None
    old_oid: Oid | None = None
    new_oid: Oid | None = None
    old_path: str | None = None


@dataclass(frozen=True)
class Totals:
    """How many files and bytes changed, by kind of change."""

    added: int = 0
    deleted: int = 0
    modified: int = 0
    renamed: int = 0
    added_bytes: int = 0
    deleted_bytes: int = 0
    modified_bytes_delta: int = 0


class Listing(list):  # type: ignore[type-arg]
    """Every change of one kind, read again from the spool each time it is iterated: a list to json's encoder
    (which asks only whether it is empty, then iterates), never held whole."""

    def __init__(self, changes: Callable[[], Iterator[FileChange]], count: int) -> None:
        super().__init__()
        self._changes = changes
        self._count = count

    def __iter__(self) -> Iterator[FileChange]:
        return self._changes()

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0


class SpoolFile:
    """One anonymous temp file (gone from the folder as soon as it is made, so a kill leaves nothing) that
    holds every spool's sorted runs of one diff."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._end = 0

    def write(self, data: bytes) -> tuple[int, int]:
        """Append one run; return where it starts and ends."""
        if self._fd is None:
            handle = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), through its descriptor)
            self._fd = os.dup(handle.fileno())
            handle.close()
        start = self._end
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._end)
            self._end += written
            view = view[written:]
        return start, self._end

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        """Yield the lines of one run, a chunk read at a time."""
        assert self._fd is not None
        rest = b""
        while start < end:
            chunk = os.pread(self._fd, min(READ_CHUNK, end - start), start)
            start += len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            yield from lines

    def close(self) -> None:
        """Close the file (its space is freed with it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Spool:
    """Lines kept in sorted runs on a SpoolFile, read back merged in order (bytes order: the paths' order)."""

    def __init__(self, file: SpoolFile) -> None:
        self._file = file
        self._lines: list[bytes] = []
        self._runs: list[tuple[int, int]] = []

    def add(self, line: bytes) -> None:
        """Keep one line; a full run is sorted and written out."""
        self._lines.append(line)
        if len(self._lines) >= SPOOL_RUN:
            self.spill()

    def spill(self) -> None:
        """Write the lines held as one sorted run."""
        if self._lines:
            self._lines.sort()
            self._runs.append(self._file.write(b"\n".join(self._lines) + b"\n"))
            self._lines = []

    def __iter__(self) -> Iterator[bytes]:
        self._lines.sort()
        return heapq.merge(self._lines, *(self._file.lines(*run) for run in self._runs))


def _line(c: FileChange) -> bytes:
    """Encode a change on one line; names hold no control character, so a tab sorts before anything in them."""
    return "\t".join((c.path, _text(c.old_size), _text(c.new_size), c.old_oid or "", c.new_oid or "")).encode()


def _text(size: int | None) -> str:
    return "" if size is None else str(size)


def _change(line: bytes) -> FileChange:
    path, old_size, new_size, old_oid, new_oid = line.decode().split("\t", FIELDS - 1)
    return FileChange(path, int(old_size) if old_size else None, int(new_size) if new_size else None,
                      old_oid or None, new_oid or None)


@dataclass
class Counted:
    """The changes of one dataset as they are emitted (a manifest.Emit), counted and spooled by kind; after
    pair(), deleted and added files of equal oid are renames, as `vtool diff` reports them."""

    dataset: str
    file: SpoolFile
    added: Spool = field(init=False)
    deleted: Spool = field(init=False)
    modified: Spool = field(init=False)
    renamed: list[FileChange] = field(default_factory=list)
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    added_bytes: int = 0
    deleted_bytes: int = 0
    modified_delta: int = 0
    gone: DigestSet = field(default_factory=DigestSet)  # the deleted files' oids, 16 bytes each
    moved: set[str] = field(default_factory=set)  # both paths of every rename

    def __post_init__(self) -> None:
        self.added, self.deleted, self.modified = Spool(self.file), Spool(self.file), Spool(self.file)

    def emit(self, rel: str, old: Entry | None, new: Entry | None) -> None:
        """Count and spool one difference; folders count only through their files."""
        if (old is not None and old.is_dir and new is None) or (new is not None and new.is_dir):
            return
        path = f"{self.dataset}/{rel}" if rel else self.dataset
        if old is None and new is not None:
            self.counts[0] += 1
            self.added_bytes += new.size
            self.added.add(_line(FileChange(path, None, new.size, None, new.oid)))
        elif new is None and old is not None:
            self.counts[1] += 1
            self.deleted_bytes += old.size
            self.gone.add(old.oid)
            self.deleted.add(_line(FileChange(path, old.size, None, old.oid, None)))
        elif old is not None and new is not None:
            self.counts[2] += 1
            self.modified_delta += new.size - old.size
            self.modified.add(_line(FileChange(path, old.size, new.size, old.oid, new.oid)))

    def pair(self) -> None:
        """Pair each added file, in path order, with the first deleted file of equal oid not yet paired.

        Only the paths of files whose oid is both deleted and added are held: the renames, and the deleted
        copies of an added file's bytes.
        """
        if not self.counts[0] or not self.gone:
            return
        both = DigestSet()
        both.update(c.new_oid for c in self._changes(self.added) if c.new_oid in self.gone)
        if not both:
            return
        sources: dict[Oid, list[FileChange]] = {}
        for c in self._changes(self.deleted):
            if c.old_oid in both:
                sources.setdefault(c.old_oid, []).append(c)  # type: ignore[arg-type]
        for c in self._changes(self.added):
            olds = sources.get(c.new_oid) if c.new_oid is not None else None
            if olds:
                src = olds.pop(0)
                self.renamed.append(FileChange(c.path, src.old_size, src.old_size, src.old_oid, src.old_oid, src.path))
                self.moved.update((c.path, src.path))
                self._unpair(src.old_size or 0)

    def _unpair(self, size: int) -> None:
        """Take a rename's two files out of the added and deleted counts."""
        self.counts[0] -= 1
        self.counts[1] -= 1
        self.added_bytes -= size
        self.deleted_bytes -= size

    def totals(self) -> Totals:
        """Return the counts and bytes of every kind."""
        added, deleted, modified = self.counts
        return Totals(added, deleted, modified, len(self.renamed), self.added_bytes, self.deleted_bytes,
                      self.modified_delta)

    def _changes(self, spool: Spool) -> Iterator[FileChange]:
        return (_change(line) for line in spool)

    def _kept(self, spool: Spool) -> Iterator[FileChange]:
        """Yield the spooled changes of one kind in path order, leaving out renamed files."""
        return (c for c in self._changes(spool) if c.path not in self.moved)

    def first(self, keep: int = SHOWN_CHANGES) -> tuple[list[FileChange], ...]:
        """Return the first `keep` changes of each kind (added, deleted, modified, renamed) in path order."""
        return tuple(list(islice(self._kept(s), keep)) for s in (self.added, self.deleted, self.modified)) + (
            self.renamed[:keep],)

    def listings(self) -> tuple[list[FileChange], ...]:
        """Return every change of each kind as Listings, read from the spools as they are iterated."""
        self.added.spill()  # what is still held goes to the file: the next dataset's changes may follow
        self.deleted.spill()
        self.modified.spill()
        (added, deleted, modified), renamed = self.counts, self.renamed
        return (Listing(lambda: self._kept(self.added), added), Listing(lambda: self._kept(self.deleted), deleted),
                Listing(lambda: self._kept(self.modified), modified), renamed)


