"""The local object store: loose objects for large files, packs for small ones and manifests, all named by hash."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from vtool.errors import CacheError, CorruptObjectError, FormatError
from vtool.fsutil import (
    READ_ONLY,
    atomic_writer,
    fsync_path,
    kernel_copy_rest,
    open_regular,
    remove_file,
    staged,
    sync_filesystem,
)
from vtool.hashing import OID_PREFIX, HashingSink, Oid, hash_bytes, hash_file, hash_stream, new_hasher
from vtool.manifest import MAX_MANIFEST_BYTES
from vtool.statcache import is_settled
from vtool.store.layout import PACK_THRESHOLD, PACKS_DIR, fanout_of, is_fanout, key_oid, object_key

if TYPE_CHECKING:
    from vtool.store.local import LocalPacks

QUARANTINE = "quarantine"
# gc rewrites a pack once less than this fraction of its bytes is still reachable.
REPACK_BELOW = 0.5
SMALL_FILE = PACK_THRESHOLD - 1  # the largest object that goes into a pack
# sync fsyncs each loose object written since the last sync, then their folders, up to this many objects
# (with packs, loose ones are large: the bytes dominate). Past it one filesystem-wide sync is cheaper than
# that many fsyncs (cache.packs false writes every file loose).
SYNC_EACH_MAX = 256


class Cache:
    """Loose objects under `<root>/<2 hex>/<30 hex>`, small ones in `<root>/packs/`; bytes always hash to names."""

    def __init__(self, root: Path, packs: bool = True) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")
        self._made: set[str] = set()
        self._fanouts: frozenset[str] | None = None  # fan-out folders there at first look (then _made)
        self.packing = packs
        self._packs: LocalPacks | None = None  # opened by the packs property
        self._packs_lock = threading.Lock()
        self._unsynced: set[str] | None = set()  # loose objects to fsync at sync; None: too many, sync all
        self._sync_lock = threading.Lock()

    @property
    def packs(self) -> LocalPacks:
        """The packs, opened on first use (by one thread: hashing threads stage into them): a status with nothing
        changed never reads them, nor imports their format (the store modules are ~5 ms of its start-up)."""
        if self._packs is None:
            with self._packs_lock:
                if self._packs is None:
                    from vtool.store.local import LocalPacks

                    self._packs = LocalPacks(self.root / PACKS_DIR)
        return self._packs

    def path(self, oid: Oid) -> Path:
        """Return where an object lives (whether or not it exists)."""
        return Path(self.path_str(oid))

    def path_str(self, oid: Oid) -> str:
        """Return the object's path as a string, for hot loops."""
        return self._prefix + object_key(oid)

    def has(self, oid: Oid, size: int | None = None) -> bool:
        """Tell whether the object exists, and has the expected size when one is given."""
        found = self.size(oid)
        return found is not None and (size is None or found == size)

    def size(self, oid: Oid) -> int | None:
        """Return the stored object's size (a loose copy first), None when absent."""
        found = self._loose_size(oid)
        return self.packs.size(oid) if found is None else found

    def _loose_size(self, oid: Oid) -> int | None:
        try:
            return os.stat(self.path_str(oid)).st_size
        except FileNotFoundError:
            return None

    def is_loose(self, oid: Oid) -> bool:
        """Tell whether the object is a file of its own (which checkout may link) rather than in a pack."""
        return os.path.exists(self.path_str(oid))

    def missing(self, oids: Iterable[Oid]) -> set[Oid]:
        """Return which oids have no object, listing each fan-out folder once instead of a stat per object.

        The packs' index (in memory) is asked first: most objects are packed, and listing a fan-out
        folder that does not exist costs more than the lookup.
        """
        wanted: dict[str, dict[str, Oid]] = {}
        packs = self.packs
        for oid in oids:
            if not packs.holds(oid):
                folder, _, name = object_key(oid).partition("/")
                wanted.setdefault(folder, {})[name] = oid
        absent: set[Oid] = set()
        for folder, names in wanted.items():
            try:
                present = set(os.listdir(self._prefix + folder))
            except FileNotFoundError:
                present = set()
            absent.update(oid for name, oid in names.items() if name not in present)
        return absent

    def signature(self) -> str | None:
        """Sum up the cache's folders (inode, mtime) so a caller can tell that no object went away since.

        Removing or moving an object out changes its folder's mtime, so an equal signature means every
        object seen before is still there. None when a folder changed within the racy window (a removal in
        the same clock tick would keep its mtime) or there is no cache yet.
        """
        now = time.time_ns()
        try:
            top = os.stat(self.root)
            with os.scandir(self.root) as it:
                stats = [(e.name, e.stat(follow_symlinks=False)) for e in it if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return None
        stats.append(("", top))
        if not all(is_settled(st.st_mtime_ns, st.st_mtime_ns, now) for _, st in stats):
            return None
        return hash_bytes("\n".join(sorted(f"{name}\0{st.st_ino}\0{st.st_mtime_ns}" for name, st in stats)).encode(
            "utf-8", "surrogateescape"))

    def _may_be_loose(self, oid: Oid) -> bool:
        """Tell whether a loose copy can exist, without a stat per object: not when its fan-out folder was
        absent at the first look and this process made none since (a cold add's every small file).

        A folder another process makes later is missed: that costs a duplicate copy in a pack, never a loss.
        """
        if self._fanouts is None:
            try:
                self._fanouts = frozenset(n for n in os.listdir(self.root) if is_fanout(n))
            except FileNotFoundError:
                self._fanouts = frozenset()
        folder = fanout_of(oid)
        return folder in self._fanouts or folder in self._made

    def _folder(self, oid: Oid) -> Path:
        folder = self.path(oid).parent
        key = folder.name
        if key not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(key)
        return folder

    def put_bytes(self, data: bytes, key: str = "") -> Oid:
        """Store an in-memory object unless an intact copy exists; small ones are staged for a pack (sorted by key)."""
        oid = hash_bytes(data)
        self.put_checked(oid, data, key)
        return oid

    def put_manifest(self, data: bytes) -> Oid:
        """Store a folder manifest in a tree pack, so a revision's whole tree is a few reads."""
        oid = hash_bytes(data)
        if not self.packing:
            return self.put_bytes(data)
        if not self._may_be_loose(oid) or self._loose_size(oid) != len(data):
            from vtool.store.pack import KIND_TREE  # loaded with the packs, on first use

            self.packs.stage(oid, data, oid, KIND_TREE)  # it skips one already packed or staged
        return oid

    def put_checked(self, oid: Oid, data: bytes, key: str = "") -> None:
        """Store bytes already known to hash to oid (a verified download, or put_bytes)."""
        if self.packing and len(data) < PACK_THRESHOLD:
            # stage() itself skips an object packed or staged already: only a loose copy is looked for here
            # (one lookup of the packs' table per small file, not two).
            if not self._may_be_loose(oid) or self._loose_size(oid) != len(data):
                self.packs.stage(oid, data, key)
            return
        if self.has(oid, len(data)):
            return
        self._folder(oid)
        with atomic_writer(self.path(oid), READ_ONLY) as out:
            out.write(data)
        self._written(oid)

    def _written(self, oid: Oid) -> None:
        """Note a loose object (new, or found already there from a write that may never have been synced)
        for the next sync."""
        with self._sync_lock:
            if self._unsynced is not None:
                self._unsynced.add(self.path_str(oid))
                if len(self._unsynced) > SYNC_EACH_MAX:
                    self._unsynced = None

    def insert_file(self, src: str | Path) -> tuple[Oid, int]:
        """Hash a workspace file and store it in one pass, never through a symlink or from a FIFO."""
        with open_regular(src, str(src)) as fin:
            return self.insert(fin)

    def insert(self, fin: BinaryIO) -> tuple[Oid, int]:
        """Hash an open file and store it in one pass; small files are read once into memory.

        The first read asks for the file's size (plus one byte to see it grew), not SMALL_FILE: a 1 MiB
        read shrunk to a small file's bytes keeps a whole page of the allocation per staged object.
        """
        want = min(os.fstat(fin.fileno()).st_size, SMALL_FILE) + 1
        head = fin.read(want)
        if len(head) == want:  # grew since, or larger than a packed object: read up to the pack threshold
            head += fin.read(SMALL_FILE + 1 - want)
        if len(head) <= SMALL_FILE:
            return self.put_bytes(head, str(fin.name)), len(head)  # the path orders small objects in packs
        return self._insert_stream(fin, head)

    def _insert_stream(self, fin: BinaryIO, head: bytes) -> tuple[Oid, int]:
        """Copy a large file into a temp file, hash the copy, then rename it to its oid.

        The copy is made in the kernel and then hashed where it lies (hot in the page cache): a third less CPU
        than moving every byte through Python, and the oid is by construction that of the bytes stored. Where
        the kernel cannot copy, the file is copied through Python while it is hashed.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with staged(self.root / "incoming") as stage:
            with open(stage.tmp, "xb+", buffering=0) as out:
                hasher = new_hasher()
                hasher.update(head)
                out.write(head)
                if kernel_copy_rest(fin, out):
                    out.seek(len(head))
                    oid, rest = hash_stream(out, None, hasher)
                else:
                    oid, rest = hash_stream(fin, out.write, hasher)
            size = len(head) + rest
            if self.has(oid, size):
                stage.dest = None
            else:
                self._folder(oid)
                os.chmod(stage.tmp, READ_ONLY)
                stage.dest = self.path(oid)
        if self.is_loose(oid):
            self._written(oid)
        return oid, size

    @contextlib.contextmanager
    def receiving(self, oid: Oid) -> Iterator[IO[bytes]]:
        """Yield a sink for a download; it enters the cache only if its bytes hash to `oid`."""
        self._folder(oid)
        with atomic_writer(self.path(oid), READ_ONLY) as out:
            sink = HashingSink(out.write)
            yield sink  # type: ignore[misc]
            got = sink.oid
            if got != oid:
                raise CorruptObjectError(f"download of {oid} is corrupt (its bytes hash to {got})")

    def read_bytes(self, oid: Oid, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """Read a small object (a manifest, a packed file), checking its hash; a corrupt one is set aside so
        fetch can restore it.

        The size is checked before reading: a pointer calling a 1 GiB object a folder costs no memory.
        """
        try:
            with open(self.path_str(oid), "rb") as fin:
                st = os.fstat(fin.fileno())
                if st.st_size > limit:
                    raise FormatError(f"object {oid} is {st.st_size} bytes, more than any manifest ({limit}): "
                                      "a pointer or manifest wrongly calls it a folder", "fix or revert it")
                data = fin.read(limit + 1)
                ino = st.st_ino
        except FileNotFoundError:
            size = self.packs.size(oid)
            if size is not None and size > limit:
                raise FormatError(f"object {oid} is {size} bytes, more than any manifest ({limit}): "
                                  "a pointer or manifest wrongly calls it a folder", "fix or revert it") from None
            return self._read_packed(oid)
        if hash_bytes(data) != oid:
            self.quarantine(oid, ino)
            raise CorruptObjectError(f"cache object {oid} was corrupt and has been moved to {QUARANTINE}/",
                                     "run: vtool fetch to restore it")
        return data

    def _read_packed(self, oid: Oid) -> bytes:
        """Read a packed object; a corrupt copy is listed as damaged (never returned) and the next copy tried."""
        while True:
            got = self.packs.read(oid)
            if got is None:
                raise CacheError(f"object {oid} is not in the cache", "run: vtool fetch")
            data, pack_name = got
            if hash_bytes(data) == oid:
                return data
            if not pack_name:
                raise CorruptObjectError(f"object {oid} was staged with the wrong bytes")
            self.packs.mark_damaged(oid, pack_name)
            if self.packs.locate(oid) is None:
                raise CorruptObjectError(f"cache object {oid} in pack {pack_name} is corrupt and is now ignored",
                                         "run: vtool fetch to restore it")

    @contextlib.contextmanager
    def exported(self, oid: Oid) -> Iterator[Path]:
        """Yield a file holding the object: its own when loose, a verified temp copy when packed."""
        if self.is_loose(oid):
            yield self.path(oid)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with staged(self.root / "export") as stage:
            stage.dest = None  # a scratch copy: it never takes a final name
            stage.tmp.write_bytes(self._read_packed(oid))
            yield stage.tmp

    def open_object(self, oid: Oid) -> IO[bytes]:
        """Open an object for reading: its own file when loose, its verified bytes when packed."""
        try:
            return open(self.path_str(oid), "rb")
        except FileNotFoundError:
            return _PackedReader(self._read_packed(oid))

    def quarantine(self, oid: Oid, ino: int | None = None) -> bool:
        """Move a bad object aside (never delete it: with cache.link=symlink it may hold a user's edit),
        unless a concurrent fetch has already renamed a good copy over it; tell whether it moved.
        A packed object cannot move: its copy is listed as damaged instead."""
        src = self.path_str(oid)
        if ino is None and not os.path.exists(src):
            found = self.packs.locate(oid)
            if found is None:
                return False
            self.packs.mark_damaged(oid, found.pack)
            return True
        try:
            if ino is not None and os.stat(src).st_ino != ino:
                return False
            aside = self.root / QUARANTINE
            aside.mkdir(exist_ok=True)
            os.replace(src, aside / f"{oid[len(OID_PREFIX):]}.{time.time_ns()}")
        except FileNotFoundError:
            return False
        return True

    def verify(self, oid: Oid) -> bool:
        """Re-hash an object and tell whether it is intact."""
        return self.rehash(oid)[0] == oid

    def rehash(self, oid: Oid) -> tuple[Oid | None, int, int | None]:
        """Hash the stored bytes of an object: (their oid or None when absent, bytes read, inode when loose)."""
        try:
            ino = os.stat(self.path_str(oid)).st_ino
            got, size = hash_file(self.path(oid))
            return got, size, ino
        except FileNotFoundError:
            found = self.packs.read(oid)
            if found is None:
                return None, 0, None
            return hash_bytes(found[0]), len(found[0]), None

    def remove(self, oid: Oid) -> None:
        """Delete a loose object (gc, or repair of a corrupt one); packed ones go when gc repacks."""
        remove_file(self.path(oid))

    def drop(self, doomed: Iterable[Oid]) -> None:
        """Delete unreachable objects: loose files at once, packed ones by rewriting packs that became sparse."""
        gone = set(doomed)
        for oid in gone:
            remove_file(self.path(oid))
        self.packs.drop(gone, REPACK_BELOW)

    def iter_oids(self) -> Iterator[Oid]:
        """Yield every object's oid (loose, then packed), skipping temp files and strays."""
        loose = list(self._loose_oids())
        yield from loose
        seen = set(loose)
        yield from (oid for oid in self.packs.oids() if oid not in seen)

    def _loose_oids(self) -> Iterator[Oid]:
        if not self.root.is_dir():
            return
        for folder in os.scandir(self.root):
            if not is_fanout(folder.name) or not folder.is_dir():
                continue
            for entry in os.scandir(folder.path):
                oid = key_oid(f"{folder.name}/{entry.name}")
                if oid is not None:
                    yield oid

    def sync(self) -> None:
        """Make every object written so far durable, and only those: staged ones into fsynced packs, each loose
        one by an fsync of its file, then of the folders that gained names (the cache's own included).

        Never a filesystem-wide flush while the objects are few: that would also write out every dirty page
        of the filesystem, the dataset just copied in among them (2.8 s of a 4.9 s add on 2 GiB).
        """
        packed = self._packs.flush() if self._packs is not None else []
        with self._sync_lock:
            pending, self._unsynced = self._unsynced, set()
        if not self.root.is_dir() or (pending == set() and not packed):  # nothing stored: no new name to flush
            return
        if pending is None:
            sync_filesystem(self.root)
            return
        for path in sorted(pending):
            fsync_path(path)
        # Then the folders: fan-out folders gained objects, the cache's folder may have gained fan-out folders
        # or packs/, and its parent the cache itself (packs/ fsynced itself after each pack's rename).
        for folder in sorted({os.path.dirname(path) for path in pending}) + [str(self.root), str(self.root.parent)]:
            fsync_path(folder)

    def close(self) -> None:
        """Write what is still staged (so nothing fetched is lost) and release open pack files."""
        if self._packs is not None:
            self._packs.flush()
            self._packs.close()


class _PackedReader(io.BytesIO):
    """A packed object's verified bytes, read like a file opened with mode "rb"."""

    mode = "rb"

    def writable(self) -> bool:
        """Refuse writes, like a read-only file."""
        return False

    def write(self, data: object) -> int:
        raise io.UnsupportedOperation("not writable")
