"""What `vtool.api` reads: one tracked file at any revision, found through pointers and manifests, verified.

It takes only the shared cache lock (never the repo lock), so notebooks read while vtool commands run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vtool import config as cfg
from vtool import manifest, transfer
from vtool import pointer as ptr
from vtool.cache import Cache
from vtool.errors import CacheError, ConfigError, CorruptObjectError, PathNotTrackedError, UsageError
from vtool.gitrepo import ls_tree, read_blobs, resolve
from vtool.hashing import Oid, hash_stream
from vtool.lock import locked
from vtool.manifest import Entry
from vtool.ops.project import (
    CACHE_LOCK_NAME,
    Dataset,
    file_entry,
    load_settings,
    lock_timeout,
    project_root,
    read_pointer,
    repo_relative,
)
from vtool.pointer import POINTER_SUFFIX, Kind, Pointer
from vtool.remote import Remote, open_remote


def open_tracked(path: Path, rev: str | None, repo: Path) -> IO[bytes]:
    """Open a tracked file as it is at rev (None: the work tree's pointers), its bytes verified through the handle."""
    with _located(path, rev, repo) as (cache, entry):
        return _open_verified(cache, entry)


@contextlib.contextmanager
def _located(path: Path, rev: str | None, repo: Path) -> Iterator[tuple[Cache, Entry]]:
    """Find the file's entry and make sure its object is in the cache, under the shared cache lock."""
    root = project_root(repo)
    settings = load_settings(root)
    rel = _relative(root, repo, path)
    # The shared lock keeps `vtool gc` from removing objects while we fetch or open them.
    with locked(settings.cache_dir / CACHE_LOCK_NAME, shared=True, timeout=lock_timeout()):
        reader = _Reader(root, settings, rev)
        try:
            yield reader.cache, reader.find(rel)
        finally:
            reader.close()


def _relative(root: Path, repo: Path, path: Path) -> str:
    """Turn path (relative to repo, or absolute) into a repo-relative posix path, refusing escapes."""
    rel = repo_relative(root, str(path if path.is_absolute() else repo / path))
    return rel[: -len(POINTER_SUFFIX)] if rel.endswith(POINTER_SUFFIX) else rel


class _Reader:
    """Looks a path up through pointers and manifests at one revision, fetching missing objects on demand."""

    def __init__(self, root: Path, settings: cfg.Config, rev: str | None) -> None:
        self.root = root
        self.settings = settings
        self.cache = Cache(settings.cache_dir, settings.packs)
        self.sha = resolve(root, rev) if rev is not None else None
        self.label = f"revision {rev}" if rev is not None else "the workspace"
        self._remote: Remote | None = None
        self._target: transfer.Target | None = None

    def find(self, rel: str) -> Entry:
        """Return the file entry rel names, with its object present in the cache."""
        ds, pointer = self._pointer_on(rel)
        if ds.data_rel == rel:
            if pointer.kind != Kind.FILE:
                raise UsageError(f"{rel} is a tracked folder at {self.label}, not a file",
                                 f"open a file inside it, e.g. {rel}/NAME")
            entry = file_entry(pointer)
        else:
            entry = self._descend(ds, pointer, rel[len(ds.data_rel) + 1:].split("/"))
        self._ensure(entry.oid, entry.size, rel)
        return entry

    def _pointer_on(self, rel: str) -> tuple[Dataset, Pointer]:
        """Find the dataset on rel's path; the shortest wins, as datasets cannot nest."""
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if self.sha is None:
            for prefix in prefixes:
                ds = Dataset(prefix + POINTER_SUFFIX, prefix)
                if (self.root / ds.pointer_rel).is_file():
                    return ds, read_pointer(self.root, ds)
        else:
            found = dict(ls_tree(self.root, self.sha, [p + POINTER_SUFFIX for p in prefixes]))
            for prefix in prefixes:
                blob = found.get(prefix + POINTER_SUFFIX)
                if blob is not None:
                    data = read_blobs(self.root, [blob])[blob]
                    name = prefix.rsplit("/", 1)[-1] + POINTER_SUFFIX
                    return Dataset(prefix + POINTER_SUFFIX, prefix), ptr.loads(data, name)
        raise PathNotTrackedError(f"{rel} is not tracked by vtool at {self.label}",
                                  "see: vtool ls" + (f" {self.sha[:12]}" if self.sha else ""))

    def _descend(self, ds: Dataset, pointer: Pointer, names: list[str]) -> Entry:
        """Descend the manifests from the dataset's root to the file, loading only those on the path."""
        rel = "/".join([ds.data_rel, *names])
        if pointer.kind != Kind.DIR:
            raise PathNotTrackedError(f"{rel} is not tracked by vtool at {self.label}: {ds.data_rel} is a file")
        oid = pointer.oid
        for depth, name in enumerate(names):
            self._ensure(oid, None, rel)
            entries = {e.name: e for e in manifest.decode(self.cache.read_bytes(oid), oid)}
            entry = entries.get(name)
            last = depth == len(names) - 1
            if entry is None or (not last and not entry.is_dir):
                raise PathNotTrackedError(f"{rel} is not in dataset {ds.data_rel} at {self.label}",
                                          f"see: vtool ls {ds.data_rel}")
            if last:
                if entry.is_dir:
                    raise UsageError(f"{rel} is a folder at {self.label}, not a file",
                                     f"open a file inside it, e.g. {rel}/NAME")
                return entry
            oid = entry.oid
        raise AssertionError("unreachable: names is never empty")

    def _ensure(self, oid: Oid, size: int | None, rel: str) -> None:
        """Fetch one object from the default remote unless the cache holds it (at the right size)."""
        if self.cache.has(oid, size):
            return
        remote = self._open_remote(oid, rel)
        got = transfer.fetch(self.cache, remote, [transfer.Obj(oid, size)], 1)
        if got.failed:
            raise CacheError(f"cannot fetch {rel} at {self.label} from remote {remote.name}: {got.failed[oid]}")

    def _open_remote(self, oid: Oid, rel: str) -> transfer.Target:
        if self._target is None:
            try:
                config = self.settings.remote(None)
            except ConfigError as exc:
                raise CacheError(f"{rel} at {self.label} needs object {oid}, which is not in the cache, "
                                 f"and there is no remote to fetch it from ({exc.message})", exc.hint) from None
            self._remote = open_remote(config, self.settings.jobs)
            self._target = transfer.open_target(self.cache, self._remote, self.settings.jobs)
        return self._target

    def close(self) -> None:
        """Release the remote's connections, if one was opened, and the cache's open packs."""
        self.cache.close()
        if self._remote is not None:
            self._remote.close()


def _corrupt(entry: Entry) -> CorruptObjectError:
    return CorruptObjectError(f"cache object {entry.oid} is corrupt", "run: vtool fetch to repair it")


def _open_object(cache: Cache, entry: Entry) -> IO[bytes]:
    try:
        return cache.open_object(entry.oid)
    except (FileNotFoundError, CacheError):
        raise CacheError(f"object {entry.oid} vanished from the cache", "run the call again") from None


def _open_verified(cache: Cache, entry: Entry) -> IO[bytes]:
    """Open the object and hash it through the same handle, so the bytes checked are the bytes returned."""
    handle = _open_object(cache, entry)
    try:
        oid, size = hash_stream(handle)
        if oid != entry.oid or size != entry.size:
            raise _corrupt(entry)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle
