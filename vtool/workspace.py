"""The files the user sees: scan a tracked path into a tree (hashing only what changed) and link files out."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vtool import manifest
from vtool.errors import CorruptObjectError, WorkspaceError
from vtool.fsutil import (
    EXEC_BITS,
    MODE_EXEC,
    MODE_FILE,
    is_temp_name,
    remove_file,
    temp_path_for,
    try_reflink,
)
from vtool.hashing import CHUNK_SIZE, Oid, hash_file, new_hasher, oid_of
from vtool.manifest import KIND_DIR, KIND_EXEC, KIND_FILE, Entry
from vtool.progress import NULL_PROGRESS, Progress
from vtool.statcache import Stamp, StatCache, changed_ns, settle

Hasher = Callable[[str], tuple[Oid, int]]


@dataclass(slots=True)
class _File:
    name: str
    path: str
    rel: str
    stamp: Stamp
    executable: bool
    oid: Oid | None = None


@dataclass(slots=True)
class _Folder:
    name: str
    files: list[_File] = field(default_factory=list)
    folders: list[_Folder] = field(default_factory=list)


@dataclass(frozen=True)
class Tree:
    """A scanned dataset: its root oid and, for folders, every manifest by oid and every file by path."""

    kind: str
    oid: Oid
    size: int
    files: int
    manifests: dict[Oid, bytes]
    file_oids: dict[str, Entry]
    hashed: int

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


def _walk(path: str, rel: str, name: str, cache_root: Path | None, depth: int = 0) -> _Folder:
    """List a folder recursively with one lstat per file; paths stay strings on this hot path."""
    if depth > manifest.MAX_DEPTH:
        raise WorkspaceError(f"{rel}: folders nest deeper than {manifest.MAX_DEPTH} levels")
    folder = _Folder(name)
    with os.scandir(path) as it:
        for entry in it:
            ename = entry.name
            if is_temp_name(ename):
                continue
            child_rel = f"{rel}/{ename}"
            if not manifest.is_plain_name(ename):
                manifest.check_name(ename, child_rel)
            if entry.is_dir(follow_symlinks=False):
                folder.folders.append(_walk(entry.path, child_rel, ename, cache_root, depth + 1))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                folder.files.append(_File(ename, entry.path, child_rel, Stamp.of(st), bool(st.st_mode & EXEC_BITS)))
            elif entry.is_symlink():
                linked = _cache_link(entry.path, cache_root)
                if linked is None:
                    raise WorkspaceError(f"{child_rel} is a symlink; vtool does not track symlinks", "replace it")
                folder.files.append(_File(ename, entry.path, child_rel, Stamp.of(linked), False))
            else:
                raise WorkspaceError(f"{child_rel} is not a regular file or folder")
    return folder


def _all_files(folder: _Folder) -> list[_File]:
    out = list(folder.files)
    for sub in folder.folders:
        out.extend(_all_files(sub))
    return out


def _fill_oids(files: list[_File], stats: StatCache, hasher: Hasher, jobs: int, progress: Progress) -> int:
    """Take oids from the stat cache, hash the rest in a thread pool; return how many were hashed."""
    misses = []
    for f in files:
        f.oid = stats.lookup(f.rel, f.stamp)
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
        oid, _ = hasher(f.path)
        after = Stamp.of(os.lstat(f.path))
        if after == f.stamp:
            stats.record(f.rel, f.stamp, oid, read_ns)
        f.oid = oid
        progress.advance(1, f.stamp.size)

    if jobs > 1 and len(misses) > 1:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, misses))
    else:
        for f in misses:
            one(f)
    progress.done()
    return len(misses)


def _build(folder: _Folder, prefix: str, manifests: dict[Oid, bytes], flat: dict[str, Entry]) -> Entry:
    entries: list[Entry] = []
    for f in folder.files:
        assert f.oid is not None
        e = Entry(f.name, KIND_EXEC if f.executable else KIND_FILE, f.oid, f.stamp.size, 1)
        entries.append(e)
        flat[prefix + f.name] = e
    for sub in folder.folders:
        entries.append(_build(sub, f"{prefix}{sub.name}/", manifests, flat))
    oid, data = manifest.build(entries)
    manifests[oid] = data
    return Entry(folder.name, KIND_DIR, oid, sum(e.size for e in entries), sum(e.files for e in entries))


def scan(root: Path, rel: str, stats: StatCache, hasher: Hasher, jobs: int = 1,
         progress: Progress = NULL_PROGRESS, cache_root: Path | None = None) -> Tree:
    """Describe the tracked path rel (file or folder) as a Tree, hashing only files the stat cache cannot vouch for."""
    path = root / rel
    st = _cache_link(str(path), cache_root) if path.is_symlink() else None
    st = st or _stat_file(path, rel)
    if stat.S_ISREG(st.st_mode):
        f = _File(path.name, str(path), rel, Stamp.of(st), bool(st.st_mode & EXEC_BITS))
        hashed = _fill_oids([f], stats, hasher, 1, progress)
        assert f.oid is not None
        entry = Entry(f.name, KIND_EXEC if f.executable else KIND_FILE, f.oid, f.stamp.size, 1)
        return Tree("file", f.oid, f.stamp.size, 1, {}, {"": entry}, hashed)
    top = _walk(str(path), rel, path.name, cache_root)
    hashed = _fill_oids(_all_files(top), stats, hasher, jobs, progress)
    manifests: dict[Oid, bytes] = {}
    flat: dict[str, Entry] = {}
    root_entry = _build(top, "", manifests, flat)
    return Tree("dir", root_entry.oid, root_entry.size, root_entry.files, manifests, flat, hashed)


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
    hasher = new_hasher()
    with open(src, "rb", buffering=0) as fin, open(tmp, "xb", buffering=0) as out:
        while chunk := fin.read(CHUNK_SIZE):
            hasher.update(chunk)
            out.write(chunk)
    oid = oid_of(hasher)
    if oid != entry.oid:
        raise CorruptObjectError(f"cache object {entry.oid} is corrupt", "run: vtool fetch to repair it")
    os.chmod(tmp, mode)
    return oid


def verify_object(path: Path, entry: Entry) -> None:
    """Hash an object before a link mode shares it, so corrupt bytes never reach the workspace."""
    if hash_file(path)[0] != entry.oid:
        raise CorruptObjectError(f"cache object {entry.oid} is corrupt", "run: vtool fetch to repair it")
