"""The files the user sees: scan a tracked path into a tree (hashing only what changed) and link files out."""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from vtool import manifest
from vtool.errors import CorruptObjectError, VtoolError, WorkspaceError
from vtool.fsutil import (
    EXEC_BITS,
    MODE_EXEC,
    MODE_FILE,
    READ_REGULAR_FLAGS,
    is_temp_name,
    kernel_copy,
    open_regular,
    staged,
    try_reflink,
)
from vtool.hashing import Oid, hash_bytes, hash_file, hash_stream
from vtool.manifest import KIND_DIR, KIND_EXEC, KIND_FILE, Entry
from vtool.pointer import Kind, Version
from vtool.progress import NULL_PROGRESS, Progress
from vtool.statcache import COARSE_WINDOW_NS, FolderMemo, Stamp, StatCache, changed_ns, is_settled, settle

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# Hashes (and, for add, stores) an open file, returning its oid and the number of bytes read.
StreamHasher = Callable[[BinaryIO], tuple[Oid, int]]
# Hashes (and, for add, stores) a small file's whole bytes, read at its path (which orders packed objects).
WholeHasher = Callable[[bytes, str], Oid]
# Files up to this size are read whole in one read (the pack threshold's largest object): four syscalls a
# file instead of ten, and no file object.
WHOLE_READ_MAX = (1 << 20) - 1
# Files up to this size are read and hashed on the scan's own thread while the pool takes the larger ones: a
# small file costs less than the GIL hand-offs a pool thread pays for it (20,000 files of 1-16 KiB: 2.6 s of
# CPU inline against 4.2 s on 8 threads, docs/performance.md).
INLINE_MAX = 64 << 10
# A file that changes while it is read is read again this many times in all, then refused.
READ_ATTEMPTS = 3
# Checkout swaps a file this big in (fsutil.Staged.swap) rather than renaming it over the old one, whose
# flush costs little below this.
SWAP_BYTES = 8 << 20


# Part of every folder signature: bump it when what a signature covers or the manifest format changes,
# so remembered folders from an older vtool never match.
SIGNATURE_VERSION = "vtool-folder-1"


@dataclass(slots=True)
class _File:
    name: str
    path: str
    rel: str
    stamp: Stamp
    executable: bool
    dev: int
    linked: bool  # a symlink into the cache (cache.link=symlink): the object behind it is read
    oid: Oid | None = None
    vouched: bool = True  # False when the file changed between the scan and its hashing


@dataclass(frozen=True, slots=True)
class _Done:
    """A folder resolved: its manifest entry, its signature and whether it was taken as remembered (its entry
    then the stat cache's memo, to be held to the baseline's oid by the folder above)."""

    entry: Entry
    signature: str
    settled: bool
    reused: bool


# One listed file: name, path, stat result, executable, a symlink into the cache.
_Listed = tuple[str, str, os.stat_result, bool, bool]


def _hash_whole(data: bytes, _path: str) -> Oid:
    return hash_bytes(data)


@dataclass(frozen=True)
class Hasher:
    """How a scan turns a file into an oid: small files whole, larger ones as a stream; add also stores them."""

    stream: StreamHasher = hash_stream
    whole: WholeHasher = _hash_whole

    @classmethod
    def of(cls, hasher: Hasher | StreamHasher) -> Hasher:
        """Take a stream hasher for whole files too (a caller that must see every file go through it)."""
        if isinstance(hasher, Hasher):
            return hasher

        def whole(data: bytes, path: str) -> Oid:
            buf = io.BytesIO(data)
            buf.name = path  # type: ignore[misc]
            return hasher(buf)[0]
        return cls(hasher, whole)


HASH_ONLY = Hasher()
# Receives each folder a scan rebuilt, bottom-up: its dataset-relative prefix, manifest oid and bytes, and files.
FolderSink = Callable[[str, Oid, bytes, list[tuple[str, Entry]]], None]
# Receives each folder a scan against a baseline rebuilt: its dataset-relative prefix, the baseline's entries
# for it (empty when the baseline has no such folder, None when its manifest cannot be read) and the new ones.
FolderVisit = Callable[[str, "list[Entry] | None", list[Entry]], None]


@dataclass(frozen=True)
class Baseline:
    """The tree a scan is compared with (a pointer's): a folder unchanged since it was remembered with the
    same oid as here is reused as it is, so comparing the two needs no manifest of it.

    visit, when given, sees each rebuilt folder beside the baseline's, so the two are compared as the scan
    goes (manifest.compare_folder) instead of holding the rebuilt tree for a diff afterwards.
    """

    oid: Oid
    load: manifest.Loader
    visit: FolderVisit | None = None


@dataclass(frozen=True)
class Tree:
    """A scanned dataset: its root oid and, for folders, the manifests and files of every folder it rebuilt.

    complete is False when unchanged folders were taken as the stat cache remembers them (a scan against a
    baseline): their manifests and files are then not listed.
    """

    kind: str
    oid: Oid
    size: int
    files: int
    manifests: dict[Oid, bytes]
    file_oids: dict[str, Entry]
    hashed: int
    complete: bool = True

    @property
    def version(self) -> Version:
        """Return what a pointer to this tree would record."""
        return Version(Kind(self.kind), self.oid, self.size, self.files)

    def load(self, oid: Oid) -> list[Entry]:
        """Read one of this tree's manifests (a manifest.Loader)."""
        return manifest.decode(self.manifests[oid], oid)


def _stat_file(path: Path, rel: str) -> os.stat_result:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise WorkspaceError(f"{rel} is a symlink; vtool does not track symlinks", "replace it with the file")
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        raise WorkspaceError(f"{rel} is not a regular file or folder")
    return st


def _cache_link(path: str, cache_root: Path | None) -> os.stat_result | None:
    """Stat the object behind a symlink that checkout made into the cache (cache.link=symlink)."""
    if cache_root is None:
        return None
    target = os.path.realpath(path)
    if os.path.dirname(os.path.dirname(target)) != os.path.realpath(cache_root):
        return None
    return os.stat(target)


def _list(path: str, rel: str, cache_root: Path | None) -> tuple[list[_Listed], list[tuple[str, str]]]:
    """List one folder with one scandir pass and one lstat per file: its files, and its subfolders (name, path)."""
    listed: list[_Listed] = []
    subdirs: list[tuple[str, str]] = []
    with os.scandir(path) as it:
        for entry in it:
            ename = entry.name
            if is_temp_name(ename):
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirs.append((ename, entry.path))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                listed.append((ename, entry.path, st, st.st_mode & EXEC_BITS != 0, False))
            elif entry.is_symlink():
                linked = _cache_link(entry.path, cache_root)
                if linked is None:
                    raise WorkspaceError(f"{rel}/{ename} is a symlink; vtool does not track symlinks", "replace it")
                listed.append((ename, entry.path, linked, False, True))
            else:
                raise WorkspaceError(f"{rel}/{ename} is not a regular file or folder")
    return listed, subdirs


def _check_depth(rel: str, depth: int) -> None:
    if depth > manifest.MAX_DEPTH:
        raise WorkspaceError(f"{rel}: folders nest deeper than {manifest.MAX_DEPTH} levels")


def _sign(listed: list[_Listed], subs: list[tuple[str, str, bool]], since_ns: int) -> tuple[str, bool]:
    """Hash what a folder holds (names, stamps, exec bits, subfolder signatures) into its signature; say if settled.

    An equal signature proves an unchanged folder only if every stamp in it was settled (older than the
    racy window) when it was remembered, the stat cache's own rule; so an unsettled folder is never remembered.
    """
    parts = [f"{name}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{executable:d}"
             for name, _, st, executable, _ in listed]
    settled = True
    if listed:
        newest = max(max(st.st_mtime_ns for _, _, st, _, _ in listed),
                     max(st.st_ctime_ns for _, _, st, _, _ in listed))
        # Older than the widest window: settled whatever the clock's resolution, without a test per file.
        settled = since_ns - newest >= COARSE_WINDOW_NS or all(
            is_settled(st.st_mtime_ns, st.st_ctime_ns, since_ns) for _, _, st, _, _ in listed)
    for name, signature, sub_settled in subs:
        parts.append(f"{name}/\0{signature}")
        settled = settled and sub_settled
    parts.sort()
    return hash_bytes("\n".join([SIGNATURE_VERSION, *parts]).encode("utf-8", "surrogateescape")), settled


def _check_names(rel: str, names: Iterable[str]) -> None:
    """Refuse a name that is unsafe or would break the manifest format, before anything is hashed."""
    for name in names:
        if not manifest.is_plain_name(name):
            manifest.check_name(name, f"{rel}/{name}")


def _baseline_entries(baseline: Baseline | None, oid: Oid | None) -> list[Entry] | None:
    """Return one baseline folder's entries: none when it has no such folder, None when it is unreadable."""
    if baseline is None or oid is None:
        return []
    try:
        return baseline.load(oid)
    except VtoolError:  # a manifest the cache lacks: nothing below it is reused, status finds out why
        return None


@dataclass
class _Scan:
    """What every folder of one scan shares, and what it counts."""

    stats: StatCache
    hasher: Hasher
    jobs: int
    progress: Progress
    trust_stats: bool
    cache_root: Path | None
    baseline: Baseline | None
    remembered: dict[str, FolderMemo]
    since_ns: int
    sink: FolderSink
    pool: ThreadPoolExecutor | None = None
    hashed: int = 0
    reused: int = 0
    seen: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Listing:
    """Where one folder is and what its one listing found."""

    path: str
    rel: str
    prefix: str
    files: list[_Listed]
    folders: dict[str, str]  # name -> path
    depth: int


class _Below:
    """One folder's entries in the baseline, read on first need: a folder taken as remembered needs none, and
    a folder below it that is rebuilt asks for its own oid here (which reads this one's, and so on up)."""

    def __init__(self, scan: _Scan, expected: _Expected) -> None:
        self._scan = scan
        self.expected = expected
        self._entries: list[Entry] | None = None
        self.read = False
        self._subs: dict[str, Oid] = {}

    def entries(self) -> list[Entry] | None:
        """Return the baseline's entries for this folder (none: no such folder; None: unreadable)."""
        if not self.read:
            self.read = True
            self._entries = _baseline_entries(self._scan.baseline, self.expected())
            self._subs = {e.name: e.oid for e in self._entries or () if e.is_dir}
        return self._entries

    def sub_oid(self, name: str) -> Oid | None:
        """Return the baseline's oid of the subfolder name (None: it has none)."""
        self.entries()
        return self._subs.get(name)


class _Expected:
    """The baseline's oid of one folder: the root's is given, any other's learnt from the folder above."""

    def __init__(self, above: _Below | None, name: str = "", oid: Oid | None = None) -> None:
        self._above = above
        self._name = name
        self._oid = oid

    @property
    def known(self) -> bool:
        """Tell whether the oid is at hand without reading a manifest."""
        return self._above is None or self._above.read

    def __call__(self) -> Oid | None:
        return self._oid if self._above is None else self._above.sub_oid(self._name)


def _resolve(scan: _Scan, path: str, rel: str, prefix: str, expected: _Expected, depth: int, *,
             reuse: bool = True) -> _Done:
    """List one folder (once: its listing serves both its signature and its build), resolve its subfolders,
    then take it as the stat cache remembers it, when a scan against a baseline finds its signature
    unchanged, or build it. A folder taken so is held to the baseline's oid by the folder above."""
    _check_depth(rel, depth)
    listed, subdirs = _list(path, rel, scan.cache_root)
    scan.seen.add(rel)
    if scan.baseline is None:  # every folder is built: its names are checked before anything below is hashed
        _check_names(rel, [name for name, _, _, _, _ in listed] + [name for name, _ in subdirs])
    memo = scan.remembered.get(rel) if scan.baseline is not None else None
    below = _Below(scan, expected)
    if memo is not None and expected.known and memo.oid != expected():
        reuse = False  # remembered otherwise than the baseline has it (a status again after a change)
    if not reuse and scan.baseline is not None:
        below.entries()  # it is built: read its baseline now, so each folder below learns its oid without a read
    subs: dict[str, _Done] = {}
    for sname, spath in sorted(subdirs):  # a loop, not a comprehension: one stack frame per level of nesting
        subs[sname] = _resolve(scan, spath, f"{rel}/{sname}", f"{prefix}{sname}/", _Expected(below, sname),
                               depth + 1)
    signature, settled = _sign(listed, [(n, d.signature, d.settled) for n, d in subs.items()], scan.since_ns)
    if reuse and memo is not None and memo.signature == signature:
        name = path.rsplit(os.sep, 1)[-1]
        return _Done(Entry(name, KIND_DIR, memo.oid, memo.size, memo.files), signature, settled, True)
    return _build(scan, _Listing(path, rel, prefix, listed, dict(subdirs), depth), below, subs, signature, settled)


def _build(scan: _Scan, at: _Listing, below: _Below, subs: dict[str, _Done], signature: str, settled: bool) -> _Done:
    """Hash one listed folder's files, hand its manifest to the sink and the baseline's visit, remember it.

    A subfolder taken as remembered whose oid is not the baseline's is built after all (listed again).
    Only this folder's files and its ancestors' partial state are held: memory follows the largest folder.
    """
    path, rel, prefix, listed = at.path, at.rel, at.prefix, at.files
    if scan.baseline is not None:  # names are checked only in folders that changed (see _resolve)
        _check_names(rel, [name for name, _, _, _, _ in listed] + list(at.folders))
    old = below.entries()
    rebuilt = False
    for sname, done in subs.items():
        if not done.reused:
            continue
        if done.entry.oid == below.sub_oid(sname):
            scan.reused += 1
        else:  # remembered otherwise than the baseline has it, and not known to be before it was listed
            subs[sname] = _resolve(scan, at.folders[sname], f"{rel}/{sname}", f"{prefix}{sname}/",
                                   _Expected(below, sname), at.depth + 1, reuse=False)
            rebuilt = True
    if rebuilt:  # listed again below: sign what was built
        signature, settled = _sign(listed, [(n, d.signature, d.settled) for n, d in subs.items()], scan.since_ns)
    expected = below.expected()
    files = [_File(name, fpath, f"{rel}/{name}", Stamp.of(st), executable, st.st_dev, linked)
             for name, fpath, st, executable, linked in listed]
    scan.hashed += _fill_oids(files, scan)
    flat = [(prefix + f.name, _file_entry(f)) for f in files]
    entries = [e for _, e in flat] + [d.entry for d in subs.values()]
    oid, data = manifest.build(entries)
    scan.sink(prefix, oid, data, flat)
    if scan.baseline is not None and scan.baseline.visit is not None and oid != expected:
        scan.baseline.visit(prefix, old, entries)
    entry = Entry(path.rsplit(os.sep, 1)[-1], KIND_DIR, oid, sum(e.size for e in entries),
                  sum(e.files for e in entries))
    # Remembered only if every oid in it is vouched for by a settled stamp, here and in every subfolder.
    settled = settled and all(f.vouched for f in files)
    if settled:
        scan.stats.remember_folder(rel, FolderMemo(signature, oid, entry.size, entry.files))
    return _Done(entry, signature, settled, False)


def _file_entry(f: _File) -> Entry:
    assert f.oid is not None
    return Entry(f.name, KIND_EXEC if f.executable else KIND_FILE, f.oid, f.stamp.size, 1)


def _pool(scan: _Scan) -> ThreadPoolExecutor:
    """Start the hashing threads on first need: a scan that hashes nothing (status, no change) never imports them."""
    if scan.pool is None:
        from concurrent.futures import ThreadPoolExecutor

        scan.pool = ThreadPoolExecutor(scan.jobs)
    return scan.pool


def _fill_oids(files: list[_File], scan: _Scan) -> int:
    """Take oids from the stat cache (if trusted), hash the rest (large files on threads); return the count hashed."""
    stats, progress = scan.stats, scan.progress
    misses = []
    for f in files:
        f.oid = stats.lookup(f.rel, f.stamp) if scan.trust_stats else None
        if f.oid is None:
            misses.append(f)
    if not misses:
        return 0
    # git's racy rule: an edit in the same clock tick as our read would keep the stamp, so read only
    # once every file is older than the window (one short sleep after a fresh write), and say when.
    settle(max(changed_ns(f.stamp) for f in misses))
    read_ns = time.time_ns()
    if not scan.hashed:
        progress.start("hashing")

    def one(f: _File) -> None:
        data = read_whole(f) if f.stamp.size <= WHOLE_READ_MAX and not f.linked else None
        if data is None:
            oid, stamp = read_consistently(f, scan.hasher.stream)
        else:
            oid, stamp = scan.hasher.whole(data, f.path), f.stamp
        if stamp == f.stamp:
            stats.record(f.rel, stamp, oid, read_ns)
        else:  # changed since the scan (and read whole since): right, but not provably settled
            f.vouched = False
            f.stamp = stamp
        f.oid = oid
        progress.advance(1, stamp.size)

    pooled = [f for f in misses if f.stamp.size > INLINE_MAX] if scan.jobs > 1 else []
    done = _pool(scan).map(one, pooled) if len(pooled) > 1 else map(one, pooled)
    for f in misses:
        if f.stamp.size <= INLINE_MAX or scan.jobs <= 1:
            one(f)
    list(done)
    stats.flush_if_full()
    return len(misses)


def read_whole(f: _File) -> bytes | None:
    """Read a small scanned file with one read, and return its bytes only if they provably are the file scanned,
    unchanged since: same device, inode and stamp after the read as at the scan (the scan's stat stands in for
    a stat before the read; settle() made any later change move the ctime), and as many bytes as it holds.

    None sends the file to read_consistently, which refuses or re-reads it (a swap, a change, a FIFO).
    """
    try:
        fd = os.open(f.path, READ_REGULAR_FLAGS)
    except OSError:
        return None
    try:
        data = os.read(fd, f.stamp.size + 1)
        after = os.fstat(fd)
    except OSError:  # a folder or FIFO swapped in: the general path says what it is
        return None
    finally:
        os.close(fd)
    if (stat.S_ISREG(after.st_mode) and after.st_dev == f.dev and len(data) == after.st_size
            and Stamp.of(after) == f.stamp):
        return data
    return None


def read_consistently(f: _File, hasher: StreamHasher) -> tuple[Oid, Stamp]:
    """Hash one scanned file so that its oid, size and stamp describe the same bytes, like git's racy-file rule.

    The file is opened without following a symlink and must be the very file scanned (same device and
    inode): a path swapped for a link to somewhere else, or a parent folder swapped for one, is refused.
    Its size is counted while it is hashed, and its stamp taken before and after on the open descriptor;
    a file that changed meanwhile (appended, truncated, rewritten) is read again, then refused.
    """
    path = os.path.realpath(f.path) if f.linked else f.path
    for _ in range(READ_ATTEMPTS):
        with open_regular(path, f.rel) as handle:
            before = os.fstat(handle.fileno())
            if (before.st_dev, before.st_ino) != (f.dev, f.stamp.ino):
                raise WorkspaceError(f"{f.rel} was replaced while vtool read it: it is not the file scanned",
                                     "run the command again")
            oid, size = hasher(handle)
            after = os.fstat(handle.fileno())
        stamp = Stamp.of(after)
        if size == after.st_size and stamp == Stamp.of(before):
            return oid, stamp
    raise WorkspaceError(f"{f.rel} changed each of the {READ_ATTEMPTS} times vtool read it",
                         "wait until whatever writes it has finished, then run the command again")


def scan(root: Path, rel: str, stats: StatCache, hasher: Hasher | StreamHasher = HASH_ONLY, jobs: int = 1,
         progress: Progress = NULL_PROGRESS, cache_root: Path | None = None, baseline: Baseline | None = None, *,
         trust_stats: bool = True, sink: FolderSink | None = None) -> Tree:
    """Describe the tracked path rel (file or folder) as a Tree, hashing only files the stat cache cannot vouch for.

    With a baseline, folders equal to the baseline's and unchanged since remembered are taken as they are,
    without a look at their files: the root oid is exact, but the Tree is not complete (status needs no more).
    With trust_stats False every file is hashed (verify); fresh hashes still refresh the stat cache.
    With a sink, each rebuilt folder goes to it as it is built and the Tree lists none (memory per folder).
    """
    hasher = Hasher.of(hasher)
    path = root / rel
    st = _cache_link(str(path), cache_root) if path.is_symlink() else None
    st = st or _stat_file(path, rel)
    if stat.S_ISREG(st.st_mode):
        return _scan_file(path, rel, st, stats, hasher, progress, trust_stats)
    manifests: dict[Oid, bytes] = {}
    flat: dict[str, Entry] = {}

    def keep(prefix: str, oid: Oid, data: bytes, files: list[tuple[str, Entry]]) -> None:
        manifests[oid] = data
        flat.update(files)

    since_ns = time.time_ns()
    state = _Scan(stats, hasher, jobs, progress, trust_stats, cache_root, baseline,
                  stats.folders() if baseline else {}, since_ns, sink or keep)
    expected = _Expected(None, oid=baseline.oid if baseline else None)
    try:
        top = _resolve(state, str(path), rel, "", expected, 0)
        if top.reused:
            state.reused += 1
    finally:
        if state.pool is not None:
            state.pool.shutdown()
    if state.hashed:
        progress.done()
    if not top.reused:  # something was rebuilt: forget the remembered folders under rel that are gone
        stats.forget_folders(rel, state.seen)
    return Tree(Kind.DIR, top.entry.oid, top.entry.size, top.entry.files, manifests, flat, state.hashed,
                complete=not state.reused and sink is None)


def _scan_file(path: Path, rel: str, st: os.stat_result, stats: StatCache, hasher: Hasher, progress: Progress,
               trust_stats: bool) -> Tree:
    """Describe a tracked single file."""
    f = _File(path.name, str(path), rel, Stamp.of(st), bool(st.st_mode & EXEC_BITS), st.st_dev, path.is_symlink())
    state = _Scan(stats, hasher, 1, progress, trust_stats, None, None, {}, 0, lambda *_: None)
    hashed = _fill_oids([f], state)
    if hashed:
        progress.done()
    entry = _file_entry(f)
    return Tree(Kind.FILE, entry.oid, entry.size, 1, {}, {"": entry}, hashed)


def link_out(src: Path, dest: Path, entry: Entry, link: str, known_good: bool) -> bool:
    """Place an object at dest via a temp file and rename; return whether its bytes were hashed on the way.

    An object known good (hashed before, its stat stamp unchanged since) is linked or kernel-copied as it
    is; any other is hashed first: a copy as it is made, a link or clone (which shares the cache's bytes)
    before the rename. Either way corrupt bytes never appear under the final name.
    """
    executable = entry.kind == KIND_EXEC
    with staged(dest) as stage:
        verified = _materialise(src, stage.tmp, entry, link, executable, known_good) is not None
        if not verified and not known_good:
            verify_object(src, entry)
            verified = True
        stage.swap = entry.size >= SWAP_BYTES
    return verified


def write_out(data: bytes, dest: Path, entry: Entry) -> None:
    """Place a packed object's (already verified) bytes at dest via a temp file and rename."""
    with staged(dest) as stage:
        with open(stage.tmp, "xb", buffering=0) as out:
            out.write(data)
        os.chmod(stage.tmp, MODE_EXEC if entry.kind == KIND_EXEC else MODE_FILE)


def _materialise(src: Path, tmp: Path, entry: Entry, link: str, executable: bool, known_good: bool) -> Oid | None:
    if link == "hardlink" and not executable:
        os.link(src, tmp)
        return None
    if link == "symlink" and not executable:
        os.symlink(src, tmp)
        return None
    if link in ("reflink", "auto") and try_reflink(src, tmp):
        os.chmod(tmp, MODE_EXEC if executable else MODE_FILE)
        return None
    if link == "reflink":
        raise WorkspaceError("cache.link is 'reflink' but this filesystem cannot clone files",
                             "use: vtool config cache.link auto")
    mode = MODE_EXEC if executable else MODE_FILE
    if known_good:  # hashed before, unchanged since: the kernel copies it without a pass through Python
        kernel_copy(src, tmp, mode)
        return None
    return _copy_verified(src, tmp, entry, mode)


def _copy_verified(src: Path, tmp: Path, entry: Entry, mode: int) -> Oid:
    """Copy an object while hashing it, refusing bytes that do not match its name."""
    with open(src, "rb", buffering=0) as fin, open(tmp, "xb", buffering=0) as out:
        oid, _ = hash_stream(fin, out.write)
    if oid != entry.oid:
        raise CorruptObjectError(f"cache object {entry.oid} is corrupt", "run: vtool fetch to repair it")
    os.chmod(tmp, mode)
    return oid


def verify_object(path: Path, entry: Entry) -> None:
    """Hash an object before a link mode shares it, so corrupt bytes never reach the workspace."""
    if hash_file(path)[0] != entry.oid:
        raise CorruptObjectError(f"cache object {entry.oid} is corrupt", "run: vtool fetch to repair it")
