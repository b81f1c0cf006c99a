"""`vtool push`, `fetch`, `status --remote` and the pre-push hook: move objects between cache and a remote."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vtool import gitrepo, manifest, transfer
from vtool.errors import CacheError, ConfigError, MissingObjectsError, TransferError
from vtool.hashing import Oid
from vtool.ops.objects import files_below, folders, gather, reached_objects, versions
from vtool.ops.project import Project, open_project, project_root_or_none
from vtool.ops.targets import RevsOnRemote, Tracked, narrowed
from vtool.pointer import Kind
from vtool.progress import NULL_PROGRESS, Progress
from vtool.remote import open_remote
from vtool.store.oidindex import DigestSet
from vtool.transfer import Obj, Target

# Objects a push plans at once (files, and the manifests over them): bounds its memory, not the tree's size.
PUSH_BATCH = transfer.FETCH_BATCH
PUSH_LINE_FIELDS = 4  # git's pre-push stdin: <local ref> <local sha> <remote ref> <remote sha>


@dataclass(frozen=True)
class SyncOptions(RevsOnRemote):
    """What to move: the targets (every dataset if empty) of the chosen revisions, over the chosen remote."""

    targets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SyncResult:
    """Objects moved, already present, and failed (oid -> reason) on one remote."""

    remote: str
    transferred: int
    present: int
    nbytes: int
    failed: dict[Oid, str]


Mover = Callable[[Project, Target, int, list[Tracked]], SyncResult]


@contextlib.contextmanager
def connected(project: Project, name: str | None, jobs: int | None) -> Iterator[tuple[Target, int]]:
    """Open the named (or default) remote with a pool sized to the jobs, its store view loaded once."""
    n = jobs or project.config.jobs
    config = project.config.remote(name)
    remote = open_remote(config, n)
    try:
        yield transfer.open_target(project.cache, remote, n, loose_only=config.layout == "loose"), n
    finally:
        remote.close()


def _on_remote(options: SyncOptions, progress: Progress, move: Mover) -> SyncResult:
    """Select the pointers the options name and move their objects over the named remote (push and fetch)."""
    with open_project(progress) as project:
        tracked = gather(project, options.targets, options.revs, options.all_commits)
        with connected(project, options.remote, options.jobs) as (remote, jobs):
            return move(project, remote, jobs, tracked)


def push(options: SyncOptions, progress: Progress = NULL_PROGRESS) -> SyncResult:
    """Upload the objects the selected pointers reach and the remote lacks."""
    return _on_remote(options, progress, push_tracked)


def push_tracked(project: Project, remote: Target, jobs: int, tracked: list[Tracked]) -> SyncResult:
    """Push the objects of already-selected pointers (shared by push and the pre-push hook), folder by folder."""
    walk = _PushWalk(project, remote, jobs)
    result = transfer.push_batches(project.cache, remote, walk.batches(tracked), jobs, project.progress,
                                   blocked=walk.blocked)
    return SyncResult(remote.name, result.transferred, result.present + walk.held, result.nbytes,
                      {**walk.unavailable, **result.failed})


@dataclass
class _PushWalk:
    """The trees a push reaches, walked folder by folder and cut into batches of about PUSH_BATCH objects."""

    project: Project
    remote: Target
    jobs: int
    unreadable: dict[Oid, str] = field(default_factory=dict)
    blocked: set[Oid] = field(default_factory=set)
    unavailable: dict[Oid, str] = field(default_factory=dict)
    held: int = 0

    def batches(self, tracked: list[Tracked]) -> Iterator[transfer.PushBatch]:
        """Yield the files met so far and the manifests over them each time a batch fills (a shared subtree once)."""
        files: dict[Oid, Obj] = {}
        manifests: list[Obj] = []
        seen: set[Oid] = set()
        for v in versions(self.project, tracked, self.unreadable):
            if v.kind == Kind.FILE:
                files.setdefault(v.oid, Obj(v.oid, v.size))
                continue
            for folder in folders(self.project.read_manifest_once, [v.oid], seen, self.unreadable):
                for e in folder.entries:
                    if not e.is_dir and e.oid not in files:
                        files[e.oid] = Obj(e.oid, e.size)
                manifests.append(Obj(folder.oid, folder.size, tuple(e.oid for e in folder.entries)))
                if len(files) + len(manifests) >= PUSH_BATCH:
                    yield self._batch(files, manifests)
                    files, manifests = {}, []
        yield self._batch(files, manifests)

    def _batch(self, files: dict[Oid, Obj], manifests: list[Obj]) -> transfer.PushBatch:
        """Settle the manifests found unreadable so far before any manifest naming them is planned.

        A manifest this clone cannot read is fine if the remote has it (a remote only ever receives a manifest
        after all its members); otherwise nothing that names it may go up.
        """
        pending = dict(self.unreadable)
        self.unreadable.clear()  # the walk keeps recording into this same dict
        held = transfer.remote_has(self.remote, [Obj(oid, None) for oid in pending], self.jobs) if pending else set()
        self.held += len(held)
        for oid, why in pending.items():
            if oid not in held:
                self.unavailable[oid] = f"neither in the cache nor on the remote ({why})"
                self.blocked.add(oid)
        return transfer.PushBatch(list(files.values()), manifests)


def fetch(options: SyncOptions, progress: Progress = NULL_PROGRESS) -> SyncResult:
    """Download into the cache what the selected pointers reach, manifests level by level, then files."""
    return _on_remote(options, progress, fetch_tracked)


def fetch_tracked(project: Project, remote: Target, jobs: int, tracked: list[Tracked]) -> SyncResult:
    """Fetch the objects of already-selected pointers (shared by fetch, pull and checkout REV).

    A target inside a dataset fetches the manifests down to it, then only what lies under it.
    """
    for t in tracked:
        project.claim_totals(t.pointer, f"{t.rev}:{t.ds.pointer_rel}" if t.rev else t.ds.pointer_rel)
    parts, path = fetch_paths(project, remote, jobs, tracked)
    files = [Obj(t.pointer.oid, t.pointer.size) for t in parts if t.pointer.kind == Kind.FILE]
    roots = [t.pointer.oid for t in parts if t.pointer.kind == Kind.DIR]
    first = fetch_manifests(project, remote, jobs, roots)
    # The files stream from the manifests folder by folder: the plan holds a batch, never the whole tree.
    stream = itertools.chain(files, files_below(project.read_manifest, roots))
    got = transfer.fetch(project.cache, remote, stream, jobs, project.progress, "fetch")
    steps = (path, first, got)
    return SyncResult(remote.name, sum(s.transferred for s in steps), sum(s.present for s in steps),
                      sum(s.nbytes for s in steps), {k: v for s in steps for k, v in s.failed.items()})


def fetch_paths(project: Project, remote: Target, jobs: int,
                tracked: list[Tracked]) -> tuple[list[Tracked], transfer.TransferResult]:
    """Fetch the manifests from each dataset root down to the targets inside it, and narrow those targets."""
    parts: list[Tracked] = []
    results: list[transfer.TransferResult] = []
    for t in tracked:
        if t.sub:
            results.append(fetch_path(project, remote, jobs, t.pointer.oid, t.sub))
            if results[-1].failed:
                continue
        parts += narrowed(project, [t])
    failed = {k: v for r in results for k, v in r.failed.items()}
    return parts, transfer.TransferResult(sum(r.transferred for r in results), sum(r.present for r in results),
                                          sum(r.nbytes for r in results), failed)


def fetch_path(project: Project, remote: Target, jobs: int, root: Oid, sub: str) -> transfer.TransferResult:
    """Fetch, one level at a time through the transfer plan, the manifests of root and the folders down to sub."""
    names = sub.split("/")
    oid, moved, present, nbytes = root, 0, 0, 0
    for depth, name in enumerate(names):
        _drop_if_corrupt(project, oid)
        got = transfer.fetch(project.cache, remote, [Obj(oid, None)], jobs, project.progress, "fetch manifests")
        moved, present, nbytes = moved + got.transferred, present + got.present, nbytes + got.nbytes
        if got.failed:
            return transfer.TransferResult(moved, present, nbytes, got.failed)
        entry = next((e for e in project.read_manifest(oid)[0] if e.name == name), None)
        if entry is None or not entry.is_dir or depth == len(names) - 1:
            break  # absent, a file, or the target folder itself (fetched with the tree below it)
        oid = entry.oid
    return transfer.TransferResult(moved, present, nbytes, {})


def fetch_manifests(project: Project, remote: Target, jobs: int, roots: list[Oid]) -> transfer.TransferResult:
    """Fetch the manifest trees under roots level by level (one level's manifests at a time, not their files)."""
    levels: list[transfer.TransferResult] = []

    def visit(level: list[Oid]) -> list[Oid]:
        for oid in level:
            _drop_if_corrupt(project, oid)
        got = transfer.fetch(project.cache, remote, [Obj(o, None) for o in level], jobs, project.progress,
                             "fetch manifests")
        levels.append(got)
        return [e.oid for oid in level if oid not in got.failed for e in project.read_manifest(oid)[0] if e.is_dir]

    manifest.by_level(roots, visit)
    return transfer.TransferResult(sum(g.transferred for g in levels), sum(g.present for g in levels),
                                   sum(g.nbytes for g in levels), {k: v for g in levels for k, v in g.failed.items()})


def _drop_if_corrupt(project: Project, oid: Oid) -> None:
    """Reading a cached manifest moves it aside when its bytes do not match its name, so it is fetched again."""
    if project.cache.has(oid):
        with contextlib.suppress(CacheError):
            project.cache.read_bytes(oid)


@dataclass(frozen=True)
class DatasetRemoteStatus:
    """How much of one dataset's data a remote lacks, judged on every object itself."""

    path: str
    objects: int
    missing: int
    missing_bytes: int
    unknown: list[Oid]


@dataclass(frozen=True)
class RemoteStatusResult:
    """What is not pushed yet, per dataset."""

    remote: str
    datasets: list[DatasetRemoteStatus]

    @property
    def in_sync(self) -> bool:
        """Tell whether the remote holds everything."""
        return all(d.missing == 0 and not d.unknown for d in self.datasets)


def remote_status(options: SyncOptions, progress: Progress = NULL_PROGRESS) -> RemoteStatusResult:
    """Count, per dataset, the objects (files and manifests alike) the remote does not hold."""
    with open_project(progress) as project:
        tracked = gather(project, options.targets, [], False)
        with connected(project, options.remote, options.jobs) as (remote, jobs):
            if tally(project, tracked, in_cache=False).unreadable:  # learn the trees from the remote's manifests
                fetch_manifests(project, remote, jobs, [t.pointer.oid for t in tracked if t.pointer.kind == Kind.DIR])
            counts = {t.path: tally(project, [t], remote, jobs, in_cache=False) for t in tracked}
        datasets = [DatasetRemoteStatus(path, c.objects, c.missing, c.missing_bytes, sorted(c.unreadable))
                    for path, c in counts.items()]
        return RemoteStatusResult(remote.name, datasets)


SHOWN_LACKING = 3  # oids a count of lacking objects keeps to name in its message


@dataclass
class Tally:
    """What a walk of the pointers' objects found: how many (each once), how many lacking, the first few named."""

    objects: int = 0
    missing: int = 0
    missing_bytes: int = 0
    first: list[Oid] = field(default_factory=list)
    unreadable: dict[Oid, str] = field(default_factory=dict)

    def note(self, lacking: list[Obj]) -> None:
        """Count lacking objects, naming the first SHOWN_LACKING."""
        self.missing += len(lacking)
        self.missing_bytes += sum(o.size or 0 for o in lacking)
        self.first += [o.oid for o in lacking[:SHOWN_LACKING - len(self.first)]]


def tally(project: Project, tracked: list[Tracked], remote: Target | None = None, jobs: int = 1,
          in_cache: bool = True) -> Tally:
    """Count the objects the pointers reach that the cache lacks (in_cache) and the remote, if given, lacks too.

    The tree streams folder by folder and is judged FETCH_BATCH objects at a time, so a million files hold a
    batch and 16 bytes an object (counting each once), never an Obj per file.
    """
    result = Tally()
    counted = DigestSet()
    for batch in transfer.in_batches(reached_objects(project, tracked, result.unreadable)):
        lacking = [o for o in batch if counted.add(o.oid)]
        result.objects += len(lacking)
        if in_cache and lacking:
            gone = project.cache.missing(o.oid for o in lacking)
            lacking = [o for o in lacking if o.oid in gone]
        if remote is not None and lacking:
            held = transfer.remote_has(remote, lacking, jobs)
            lacking = [o for o in lacking if o.oid not in held]
        result.note(lacking)
    return result


def ensure_local(project: Project, tracked: list[Tracked], remote_name: str | None = None) -> SyncResult | None:
    """Make sure the cache holds everything tracked reaches, fetching from the (default) remote only if needed.

    Folder pointers the cache was found to hold whole are not walked again while its signature is unchanged.
    """
    signature = project.cache.signature()  # before the listing: an object removed after it changes it
    if project.holds_all(t.pointer for t in tracked):
        return None
    folders = [t.pointer for t in tracked if t.pointer.kind == Kind.DIR]
    counted = tally(project, tracked)  # sizes are checked again before anything is written
    if not counted.missing and not counted.unreadable:
        for p in folders:
            project.remember_whole(p.oid, signature)
        return None
    if not project.config.remotes:
        raise MissingObjectsError(sorted(counted.unreadable) + counted.first, "the cache, and no remote is configured",
                                  len(counted.unreadable) + counted.missing)
    with connected(project, remote_name, None) as (remote, jobs):
        result = fetch_tracked(project, remote, jobs, tracked)
    if result.failed:
        raise TransferError(result.failed, "fetch", result.remote)
    return result


@dataclass(frozen=True)
class PrePushResult:
    """The commits whose data the pre-push hook pushed, and what it moved."""

    commits: int = 0
    remote: str | None = None
    transferred: int = 0
    present: int = 0
    nbytes: int = 0


def parse_push_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Turn pre-push stdin into (local sha, remote sha) pairs, dropping ref deletions."""
    pairs = []
    for line in lines:
        parts = line.split()
        if len(parts) != PUSH_LINE_FIELDS:
            continue
        local, remote = parts[1], parts[3]
        if local.strip("0"):
            pairs.append((local, remote))
    return pairs


def commits_to_push(root: Path, git_remote: str, pairs: list[tuple[str, str]]) -> list[str]:
    """List the pushed tips plus every commit new to the remote that changes a pointer."""
    tips = list(dict.fromkeys(local for local, _ in pairs))
    if not tips:
        return []
    known = [remote for _, remote in pairs if remote.strip("0")]
    return list(dict.fromkeys([*tips, *gitrepo.pointer_commits(root, tips, known, git_remote)]))


def pre_push(git_remote: str, lines: list[str], progress: Progress = NULL_PROGRESS) -> PrePushResult:
    """Push to the default vtool remote the data of the commits a git push sends; any failure fails the push."""
    root = project_root_or_none()
    revs = commits_to_push(root, git_remote, parse_push_lines(lines)) if root else []
    if not revs:
        return PrePushResult()
    with open_project(progress, start=root) as project:
        tracked = gather(project, [], revs, workspace=False)
        if not tracked:
            return PrePushResult(len(revs))
        if not project.config.remotes:
            raise ConfigError("the pushed commits track data, but no vtool remote is configured to push it to",
                              "add one with: vtool remote add NAME URL --default, or skip with git push --no-verify")
        with connected(project, None, None) as (remote, jobs):
            result = push_tracked(project, remote, jobs, tracked)
        if result.failed:
            error = TransferError(result.failed, "pushing the data of the pushed commits", remote.name)
            error.hint = "fix the cause and push again, or skip the data with: git push --no-verify"
            raise error
        return PrePushResult(len(revs), remote.name, result.transferred, result.present, result.nbytes)
