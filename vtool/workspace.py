"""The files the user sees: scan a tracked path into a tree (hashing only what changed) and link files out."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from vtool import manifest
from vtool.errors import CorruptObjectError, VtoolError, WorkspaceError
from vtool.fsutil import (
    EXEC_BITS,
    MODE_EXEC,
    MODE_FILE,
    is_temp_name,
    open_regular,
    remove_file,
    temp_path_for,
    try_reflink,
)
from vtool.hashing import Oid, hash_bytes, hash_file, hash_stream
from vtool.manifest import KIND_DIR, KIND_EXEC, KIND_FILE, Entry
from vtool.pointer import Kind
from vtool.progress import NULL_PROGRESS, Progress
from vtool.statcache import COARSE_WINDOW_NS, FolderMemo, Stamp, StatCache, changed_ns, is_settled, settle

# Hashes (and, for add, stores) an open file, returning its oid and the number of bytes read.
Hasher = Callable[[BinaryIO], tuple[Oid, int]]
# A file that changes while it is read is read again this many times in all, then refused.
READ_ATTEMPTS = 3


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


@dataclass(slots=True)
class _Folder:
    """A listed folder: its raw stat results, its signature and, once known, its manifest entry."""

    name: str
    rel: str
    listed: list[tuple[str, str, os.stat_result, bool, bool]] = field(default_factory=list)
    folders: list[_Folder] = field(default_factory=list)
    signature: str = ""
    settled: bool = True  # every stamp below was older than the racy window when the walk began
    files: list[_File] = field(default_factory=list)  # built only for a folder that is not reused
    entry: Entry | None = None
    reused: bool = False


@dataclass(frozen=True)
class Baseline:
    """The tree a scan is compared with (a pointer's): a folder unchanged since it was remembered with the
    same oid as here is reused as it is, so comparing the two later needs no manifest of it."""

    oid: Oid
    load: manifest.Loader


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


def _walk(path: str, rel: str, name: str, cache_root: Path | None, since_ns: int, depth: int = 0) -> _Folder:
    """List a folder recursively with one scandir pass and one lstat per file; paths stay strings.

    Names are checked later, and only in folders that changed: a reused folder's names are the ones
    checked when it was remembered (its signature covers them).
    """
    if depth > manifest.MAX_DEPTH:
        raise WorkspaceError(f"{rel}: folders nest deeper than {manifest.MAX_DEPTH} levels")
    folder = _Folder(name, rel)
    listed = folder.listed
    with os.scandir(path) as it:
        for entry in it:
            ename = entry.name
            if is_temp_name(ename):
                continue
            if entry.is_dir(follow_symlinks=False):
                folder.folders.append(_walk(entry.path, f"{rel}/{ename}", ename, cache_root, since_ns, depth + 1))
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
    _sign(folder, since_ns)
    return folder


def _sign(folder: _Folder, since_ns: int) -> None:
    """Hash what the folder holds (names, stamps, exec bits, subfolder signatures) into its signature.

    An equal signature proves an unchanged folder only if every stamp in it was settled (older than the
    racy window) when it was remembered, the stat cache's own rule; so an unsettled folder is never remembered.
    """
    listed = folder.listed
    parts = [f"{name}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{executable:d}"
             for name, _, st, executable, _ in listed]
    if listed:
        newest = max(max(st.st_mtime_ns for _, _, st, _, _ in listed),
                     max(st.st_ctime_ns for _, _, st, _, _ in listed))
        # Older than the widest window: settled whatever the clock's resolution, without a test per file.
        folder.settled = since_ns - newest >= COARSE_WINDOW_NS or all(
            is_settled(st.st_mtime_ns, st.st_ctime_ns, since_ns) for _, _, st, _, _ in listed)
    for sub in folder.folders:
        parts.append(f"{sub.name}/\0{sub.signature}")
        folder.settled = folder.settled and sub.settled
    parts.sort()
    folder.signature = hash_bytes("\n".join([SIGNATURE_VERSION, *parts]).encode("utf-8", "surrogateescape"))


def _check_names(folder: _Folder) -> None:
    """Refuse a name that is unsafe or would break the manifest format, before anything is hashed."""
    for name in [name for name, _, _, _, _ in folder.listed] + [sub.name for sub in folder.folders]:
        if not manifest.is_plain_name(name):
            manifest.check_name(name, f"{folder.rel}/{name}")


def _pending(folder: _Folder, remembered: dict[str, FolderMemo], expected: Oid | None,
             baseline: Baseline | None) -> list[_File]:
    """Reuse each folder the stat cache remembers unchanged with the oid the baseline has there; list the files
    of all the others. Only baseline manifests on the way to a change are loaded."""
    memo = remembered.get(folder.rel)
    if memo is not None and memo.signature == folder.signature and memo.oid == expected:
        folder.entry = Entry(folder.name, KIND_DIR, memo.oid, memo.size, memo.files)
        folder.reused = True
        return []
    _check_names(folder)
    folder.files = [_File(name, path, f"{folder.rel}/{name}", Stamp.of(st), executable, st.st_dev, linked)
                    for name, path, st, executable, linked in folder.listed]
    below = _baseline_folders(baseline, expected)
    out = list(folder.files)
    for sub in folder.folders:
        out.extend(_pending(sub, remembered, below.get(sub.name), baseline))
    return out


def _baseline_folders(baseline: Baseline | None, oid: Oid | None) -> dict[str, Oid]:
    """Return the subfolder oids of one baseline folder by name; none when it is unknown or unreadable."""
    if baseline is None or oid is None:
        return {}
    try:
        return {e.name: e.oid for e in baseline.load(oid) if e.is_dir}
    except VtoolError:  # a manifest the cache lacks: nothing below it is reused, status finds out why
        return {}


def _fill_oids(files: list[_File], stats: StatCache, hasher: Hasher, jobs: int, progress: Progress,
               trust_stats: bool) -> int:
    """Take oids from the stat cache (if trusted), hash the rest in a thread pool; return how many were hashed."""
    misses = []
    for f in files:
        f.oid = stats.lookup(f.rel, f.stamp) if trust_stats else None
        if f.oid is None:
            misses.append(f)
    if not misses:
        return 0
    # git's racy rule: an edit in the same clock tick as our read would keep the stamp, so read only
    # once every file is older than the window (one short sleep after a fresh write), and say when.
    settle(max(changed_ns(f.stamp) for f in misses))
    read_ns = time.time_ns()
    progress.start("hashing", total=len(misses), total_bytes=sum(f.stamp.size for f in misses))

    def one(f: _File) -> None:
        oid, stamp = read_consistently(f, hasher)
        if stamp == f.stamp:
            stats.record(f.rel, stamp, oid, read_ns)
        else:  # changed since the scan (and read whole since): right, but not provably settled
            f.vouched = False
            f.stamp = stamp
        f.oid = oid
        progress.advance(1, stamp.size)

    if jobs > 1 and len(misses) > 1:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, misses))
    else:
        for f in misses:
            one(f)
    progress.done()
    return len(misses)


def read_consistently(f: _File, hasher: Hasher) -> tuple[Oid, Stamp]:
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


def _build(folder: _Folder, prefix: str, manifests: dict[Oid, bytes], flat: dict[str, Entry],
           stats: StatCache) -> Entry:
    """Return the folder's entry, building the manifest of every folder not reused, and remember it."""
    if folder.entry is not None:
        return folder.entry
    entries: list[Entry] = []
    for f in folder.files:
        assert f.oid is not None
        e = Entry(f.name, KIND_EXEC if f.executable else KIND_FILE, f.oid, f.stamp.size, 1)
        entries.append(e)
        flat[prefix + f.name] = e
    for sub in folder.folders:
        entries.append(_build(sub, f"{prefix}{sub.name}/", manifests, flat, stats))
    oid, data = manifest.build(entries)
    manifests[oid] = data
    folder.entry = Entry(folder.name, KIND_DIR, oid, sum(e.size for e in entries), sum(e.files for e in entries))
    # Remembered only if every oid in it is vouched for by a settled stamp, here and in every subfolder.
    folder.settled = (folder.settled and all(f.vouched for f in folder.files)
                      and all(sub.settled for sub in folder.folders))
    if folder.settled:
        stats.remember_folder(folder.rel, FolderMemo(folder.signature, oid, folder.entry.size, folder.entry.files))
    return folder.entry


def _all_folders(folder: _Folder) -> Iterator[_Folder]:
    yield folder
    for sub in folder.folders:
        yield from _all_folders(sub)


def scan(root: Path, rel: str, stats: StatCache, hasher: Hasher, jobs: int = 1,
         progress: Progress = NULL_PROGRESS, cache_root: Path | None = None, baseline: Baseline | None = None, *,
         trust_stats: bool = True) -> Tree:
    """Describe the tracked path rel (file or folder) as a Tree, hashing only files the stat cache cannot vouch for.

    With a baseline, folders equal to the baseline's and unchanged since remembered are taken as they are,
    without a look at their files: the root oid is exact, but the Tree is not complete (status needs no more).
    With trust_stats False every file is hashed (verify); fresh hashes still refresh the stat cache.
    """
    path = root / rel
    st = _cache_link(str(path), cache_root) if path.is_symlink() else None
    st = st or _stat_file(path, rel)
    if stat.S_ISREG(st.st_mode):
        f = _File(path.name, str(path), rel, Stamp.of(st), bool(st.st_mode & EXEC_BITS), st.st_dev,
                  path.is_symlink())
        hashed = _fill_oids([f], stats, hasher, 1, progress, trust_stats)
        assert f.oid is not None
        entry = Entry(f.name, KIND_EXEC if f.executable else KIND_FILE, f.oid, f.stamp.size, 1)
        return Tree(Kind.FILE, f.oid, f.stamp.size, 1, {}, {"": entry}, hashed)
    top = _walk(str(path), rel, path.name, cache_root, time.time_ns())
    pending = _pending(top, stats.folders() if baseline else {}, baseline and baseline.oid, baseline)
    hashed = _fill_oids(pending, stats, hasher, jobs, progress, trust_stats)
    manifests: dict[Oid, bytes] = {}
    flat: dict[str, Entry] = {}
    root_entry = _build(top, "", manifests, flat, stats)
    folders = list(_all_folders(top))
    if manifests:  # something was rebuilt: forget the remembered folders under rel that are gone
        stats.forget_folders(rel, {f.rel for f in folders})
    return Tree(Kind.DIR, root_entry.oid, root_entry.size, root_entry.files, manifests, flat, hashed,
                complete=not any(f.reused for f in folders))


def link_out(src: Path, dest: Path, entry: Entry, link: str, check_shared: bool) -> bool:
    """Place an object at dest via a temp file and rename; return whether its bytes were hashed on the way.

    A copy is hashed as it is made; a link or clone shares the cache's bytes, so with check_shared they
    are hashed before the rename, and corrupt bytes never appear under the final name.
    """
    executable = entry.kind == KIND_EXEC
    tmp = temp_path_for(dest)
    try:
        verified = _materialise(src, tmp, entry, link, executable) is not None
        if not verified and check_shared:
            verify_object(src, entry)
            verified = True
        os.replace(tmp, dest)
    except BaseException:
        remove_file(tmp)
        raise
    return verified


def write_out(data: bytes, dest: Path, entry: Entry) -> None:
    """Place a packed object's (already verified) bytes at dest via a temp file and rename."""
    tmp = temp_path_for(dest)
    try:
        with open(tmp, "xb", buffering=0) as out:
            out.write(data)
        os.chmod(tmp, MODE_EXEC if entry.kind == KIND_EXEC else MODE_FILE)
        os.replace(tmp, dest)
    except BaseException:
        remove_file(tmp)
        raise


def _materialise(src: Path, tmp: Path, entry: Entry, link: str, executable: bool) -> Oid | None:
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
    return _copy_verified(src, tmp, entry, MODE_EXEC if executable else MODE_FILE)


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
