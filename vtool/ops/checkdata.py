"""The data checks read: the files a check's key names, in the workspace or at a commit, fetched on demand."""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vtool import gitrepo, manifest, transfer
from vtool.checks.spec import Check
from vtool.errors import MissingObjectsError, TransferError
from vtool.hashing import Oid
from vtool.ops.objects import Tracked, collect, revision_pointers, workspace_pointers
from vtool.ops.project import Dataset, Project
from vtool.ops.sync import connected, fetch_manifests
from vtool.pointer import POINTER_SUFFIX, Kind, Pointer
from vtool.remote.base import Remote
from vtool.transfer import Obj
from vtool.workspace import Tree

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Target:
    """A file (or dataset folder) a check applies to, and where its bytes are."""

    path: str
    tracked: Tracked
    kind: str
    oid: Oid
    size: int
    local: Path | None


def covers(folder: str, path: str) -> bool:
    """Tell whether path is folder itself or lies below it."""
    return path == folder or path.startswith(folder + "/")


def _parts_match(parts: list[str], pattern: list[str]) -> bool:
    """Match path components against glob components; `**` spans any number of folders."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_parts_match(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _parts_match(parts[1:], pattern[1:])


def matches(key: str, path: str) -> bool:
    """Tell whether a check key (a path or a glob) names path."""
    if not any(ch in key for ch in GLOB_CHARS):
        return key == path
    return _parts_match(path.split("/"), key.split("/"))


def _may_hold(key: str, data_rel: str) -> bool:
    """Tell whether a dataset could hold a file the key names, without listing it."""
    pattern = key.split("/")
    for i, part in enumerate(data_rel.split("/")):
        if i >= len(pattern):
            return False
        if pattern[i] == "**":
            return True
        if not fnmatch.fnmatchcase(part, pattern[i]):
            return False
    return True


class Source:
    """The tracked data of the workspace or of one commit: lists files and opens them, fetching on demand."""

    def __init__(self, project: Project, sha: str | None, untracked: list[str] | None = None) -> None:
        self.project = project
        self.sha = sha
        self.tracked = revision_pointers(project, sha, []) if sha else workspace_pointers(project, [])
        self.tracked += self._not_yet_tracked(untracked or [])
        self._listings: dict[str, list[Target]] = {}
        self._commit_times: dict[str, float | None] = {}
        self._remote: Remote | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _not_yet_tracked(self, paths: list[str]) -> list[Tracked]:
        """Treat workspace paths no pointer covers yet (a stage's first outputs) as datasets of their own."""
        known = [t.ds.data_rel for t in self.tracked]
        out = []
        for rel in paths:
            if any(covers(k, rel) for k in known) or not os.path.lexists(self.project.root / rel):
                continue
            tree = self.project.scan(rel)
            name = rel.rsplit("/", 1)[-1]
            out.append(Tracked(Dataset(rel + POINTER_SUFFIX, rel), Pointer(name, tree.kind, tree.oid, tree.size,
                                                                           tree.files)))
        return out

    def remote(self) -> Remote:
        """Open the default remote the first time something is missing from the cache."""
        if self._remote is None:
            self._remote = self._stack.enter_context(connected(self.project, None, None))[0]
        return self._remote

    def targets(self, check: Check) -> list[Target]:
        """List the files (or the dataset itself) the check's key names."""
        found = []
        for t in self.tracked:
            if check.key == t.ds.data_rel:
                found.append(self._dataset_target(t))
            elif _may_hold(check.key, t.ds.data_rel):
                found += [x for x in self._files(t) if matches(check.key, x.path)]
        return found

    def _dataset_target(self, t: Tracked) -> Target:
        if t.pointer.kind == Kind.FILE:
            return next(iter(self._files(t)))
        local = self.project.root / t.ds.data_rel if self.sha is None else None
        if local is not None and not os.path.lexists(local):
            return Target(t.ds.data_rel, t, "absent", t.pointer.oid, t.pointer.size, None)
        oid = t.pointer.oid if local is None else self._scan(t).oid
        return Target(t.ds.data_rel, t, Kind.DIR, oid, t.pointer.size, local)

    def _scan(self, t: Tracked) -> Tree:
        return self.project.scan(t.ds.data_rel)

    def _files(self, t: Tracked) -> list[Target]:
        """List a dataset's files once: scanned in the workspace, from manifests at a revision."""
        if t.ds.data_rel not in self._listings:
            self._listings[t.ds.data_rel] = self._list(t)
        return self._listings[t.ds.data_rel]

    def _list(self, t: Tracked) -> list[Target]:
        rel = t.ds.data_rel
        if self.sha is None:
            if not os.path.lexists(self.project.root / rel):
                return [Target(rel, t, "absent", t.pointer.oid, t.pointer.size, None)]
            tree = self._scan(t)
            return [Target(f"{rel}/{name}" if name else rel, t, Kind.FILE, e.oid, e.size,
                            self.project.root / rel / name if name else self.project.root / rel)
                    for name, e in tree.file_oids.items()]
        if t.pointer.kind == Kind.FILE:
            return [Target(rel, t, Kind.FILE, t.pointer.oid, t.pointer.size, None)]
        if collect(self.project, [t]).unreadable:
            got = fetch_manifests(self.project, self.remote(), self.project.config.jobs, [t.pointer.oid])
            if got.failed:
                raise TransferError(got.failed, "fetch manifests", self.remote().name)
        entries = manifest.files(lambda oid: self.project.read_manifest(oid)[0], t.pointer.oid)
        return [Target(f"{rel}/{name}", t, Kind.FILE, e.oid, e.size, None) for name, e in entries.items()]

    def prefetch(self, targets: list[Target]) -> None:
        """Fetch, in one transfer, the objects of a revision's files that the cache lacks."""
        cache = self.project.cache
        wanted = {t.oid: Obj(t.oid, t.size) for t in targets if t.local is None and t.kind == Kind.FILE
                  and not cache.has(t.oid, t.size)}
        if not wanted:
            return
        if not self.project.config.remotes:
            raise MissingObjectsError(sorted(wanted), "the cache, and no remote is configured")
        got = transfer.fetch(cache, self.remote(), list(wanted.values()), self.project.config.jobs,
                             self.project.progress, "fetch")
        if got.failed:
            raise TransferError(got.failed, "fetch", self.remote().name)

    @contextlib.contextmanager
    def open(self, target: Target) -> Iterator[IO[bytes]]:
        """Open a file's bytes from the workspace or the cache."""
        if target.local is None:  # loose or packed, the cache hands out hash-checked bytes either way
            with self.project.cache.open_object(target.oid) as handle:
                yield handle
            return
        with open(target.local, "rb") as handle:
            yield handle

    def commit_time(self, t: Tracked) -> float | None:
        """When the pointer last changed in a commit; None for a change not committed yet."""
        rel = t.ds.pointer_rel
        if rel not in self._commit_times:
            root = self.project.root
            if self.sha is None and gitrepo.has_uncommitted_change(root, rel):
                self._commit_times[rel] = None
            else:
                found = gitrepo.last_commit_time(root, rel, self.sha or "HEAD")
                self._commit_times[rel] = None if found is None else float(found)
        return self._commit_times[rel]
