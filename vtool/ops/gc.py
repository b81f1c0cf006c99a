"""`vtool gc`: remove the objects nothing kept reaches, from the cache or from one remote (dry run unless told)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vtool import gitrepo
from vtool.cache import Cache
from vtool.config import VTOOL_DIR
from vtool.errors import CacheError, UsageError, VtoolError
from vtool.fsutil import is_hex, remove_file, stale_temp_files
from vtool.hashing import Oid
from vtool.manifest import HEADER
from vtool.ops.objects import collect, reach_set, versions
from vtool.ops.project import Project, open_project
from vtool.ops.targets import RevsOnRemote, Tracked, revision_pointers, workspace_pointers, worktree_pointers
from vtool.pointer import Kind
from vtool.progress import NULL_PROGRESS, Progress
from vtool.store.layout import OUTGOING_DIR, PACKS_DIR, is_fanout, key_oid, object_key
from vtool.store.oidindex import DigestSet

if TYPE_CHECKING:
    from vtool.transfer import Target

CACHE_TARGET = "cache"
SHOWN = 3


@dataclass(frozen=True)
class GcOptions(RevsOnRemote):
    """What to keep (workspace, tips, history, revisions), where to clean (no remote: the cache), whether to delete."""

    workspace_only: bool = False
    delete: bool = False


@dataclass(frozen=True)
class GcResult:
    """Objects removed (or that would be, on a dry run) and kept; `unsized` removed objects had no known size."""

    target: str
    removed: int
    bytes: int
    kept: int
    dry_run: bool
    oids: list[Oid]
    unsized: int = 0
    temp_files: int = 0
    marked: int = 0
    deleted: int = 0


def gc(options: GcOptions, progress: Progress = NULL_PROGRESS) -> GcResult:
    """Compute what the kept pointers reach, then remove everything else from the cache or the remote."""
    if options.workspace_only and options.all_commits:
        raise UsageError("--workspace and --all-commits contradict each other", "pass one of them")
    # Exclusive: no add or fetch may insert an object between our listing and our deletions.
    with open_project(progress, exclusive_cache=True) as project:
        tracked = kept_pointers(project, options)
        if options.remote is None:
            return _gc_cache(project, tracked, options.delete)
        # The remote layers (transfer, store.remote, boto3 for S3, thread pools): only for a gc of a remote.
        from vtool.ops.sync import connected

        with connected(project, options.remote, options.jobs) as (target, jobs):
            return _gc_remote(project, target, jobs, tracked, options.delete)


def kept_pointers(project: Project, options: GcOptions) -> list[Tracked]:
    """The workspace's pointers plus those of every kept revision; every worktree of the repo counts (one cache)."""
    revs = list(options.revs)
    if options.all_commits:
        revs += gitrepo.all_commits(project.root)
    elif not options.workspace_only:
        revs += _tips(project.root)
    found = workspace_pointers(project, [])
    for tree_root, head in gitrepo.worktrees(project.root):
        found += worktree_pointers(tree_root)
        if head is not None and not options.workspace_only:
            revs.append(head)
    for rev in dict.fromkeys(revs):
        found.extend(revision_pointers(project, rev, []))
    return found


def _tips(root: Path) -> list[str]:
    """Branch and tag tips, plus remote-tracking branches (a teammate's pushed work), the stash and a detached HEAD."""
    head = gitrepo.head_commit(root)
    return gitrepo.branch_and_tag_tips(root) + gitrepo.other_tips(root) + ([head] if head else [])


def _reachable(project: Project, tracked: list[Tracked], remote: str | None = None) -> DigestSet:
    """Every object the pointers reach, manifests included; refuse when a manifest cannot be read."""
    unreadable: dict[Oid, str] = {}
    keep = reach_set(project.read_manifest_once, versions(project, tracked, unreadable), unreadable)
    if unreadable:
        raise _unknown_reach(project, tracked, unreadable, remote)
    return keep


def _unknown_reach(project: Project, tracked: list[Tracked], unreadable: dict[Oid, str],
                   remote: str | None) -> CacheError:
    """Name the unreadable manifests and the revisions that reach them (slow, but only on this error path)."""
    roots: dict[Oid, Tracked] = {}
    for t in tracked:
        if t.pointer.kind == Kind.DIR:
            roots.setdefault(t.pointer.oid, t)
    culprits = [t for t in roots.values() if collect(project, [t]).unreadable]
    missing = sorted(unreadable)
    shown = ", ".join(missing[:SHOWN]) + (f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else "")
    reached = ", ".join(f"{t.ds.data_rel} at {_short(t.rev)}" if t.rev else f"{t.ds.data_rel} in the workspace"
                        for t in culprits[:SHOWN])
    if remote is None:
        where = "missing from the cache or corrupt"
        revs = dict.fromkeys(_short(t.rev) for t in culprits if t.rev is not None)
        hint = "run: vtool fetch" + "".join(f" --rev {r}" for r in list(revs)[:SHOWN])
    else:
        where = f"in neither the cache nor remote {remote!r}"
        hint = "push them from a clone whose cache holds them"
    if all(t.rev is not None for t in culprits):
        hint += ", or keep less (--workspace, fewer --rev)"
    return CacheError(f"{len(missing)} kept manifest(s) {where}: {shown} (needed by {reached}); "
                      "gc cannot tell what they reach, so nothing was removed", hint)


def _short(rev: str) -> str:
    return rev[:12] if len(rev) == 40 and is_hex(rev) else rev


def _repository_cache(project: Project) -> bool:
    """Tell whether the cache belongs to this repository: its own, or the one its linked worktrees share."""
    common = gitrepo.linked_common_dir(project.root)
    homes = [project.vtool_dir] + ([common, common.parent / VTOOL_DIR] if common is not None else [])
    return any(_is_inside(project.cache.root, home) for home in homes)


def _gc_cache(project: Project, tracked: list[Tracked], delete: bool) -> GcResult:
    cache = project.cache
    if not _repository_cache(project):
        project.progress.message(f"warning: the cache {cache.root} is outside this project and may be shared; "
                                 "gc keeps only what this project's pointers reach")
    keep = _reachable(project, tracked)
    keep.update(_linked_objects(project, tracked))
    present = 0
    doomed: list[Oid] = []
    for oid in cache.iter_oids():  # counted as they stream by: only the doomed are listed
        present += 1
        if oid not in keep:
            doomed.append(oid)
    doomed.sort()
    nbytes = sum(cache.size(oid) or 0 for oid in doomed)
    stale = _stale_temp_files(cache.root)
    if delete:
        project.progress.start("gc cache", total=len(doomed))
        cache.drop(doomed)
        project.progress.done()
        for path in stale:
            remove_file(path)
    return GcResult(CACHE_TARGET, len(doomed), nbytes, present - len(doomed), not delete, doomed,
                    temp_files=len(stale))


def _gc_remote(project: Project, target: Target, jobs: int, tracked: list[Tracked], delete: bool) -> GcResult:
    from vtool.ops.sync import fetch_manifests
    from vtool.store import remote as store

    # Manifests the cache lacks are fetched from this remote first; what neither holds cannot be walked.
    fetch_manifests(project, target, jobs, [t.pointer.oid for t in tracked if t.pointer.kind == Kind.DIR])
    keep = _reachable(project, tracked, target.name)
    if target.view.packed:
        return _gc_packed_remote(project, target, jobs, keep, delete)
    project.progress.start(f"listing {target.name}")
    listed = [oid for oid, _ in store.loose_objects(target.remote)]
    project.progress.done()
    doomed = sorted(oid for oid in listed if oid not in keep)
    _refuse_emptying(target, doomed, keep)
    sizes = {oid: project.cache.size(oid) for oid in doomed}
    if delete:
        _remove_remote(target, doomed, project.cache, jobs, project.progress)
    return GcResult(target.name, len(doomed), sum(s or 0 for s in sizes.values()), len(listed) - len(doomed),
                    not delete, doomed, unsized=sum(1 for s in sizes.values() if s is None))


def _refuse_emptying(target: Target, doomed: Iterable[Oid], keep: DigestSet) -> None:
    """Refuse a gc that keeps nothing; the objects are only counted then, never listed."""
    count = 0 if keep else sum(1 for _ in doomed)
    if count:
        raise VtoolError(f"nothing is kept, so gc would empty remote {target.name!r} ({count} objects)",
                         "run gc in a clone whose workspace or history points at data")


def _gc_packed_remote(project: Project, target: Target, jobs: int, keep: DigestSet, delete: bool) -> GcResult:
    """Two phases: execute marks older than gc.grace, then mark sparse packs and dead loose objects."""
    from vtool.store import remote as store

    stored = itertools.chain((oid for oid, _ in store.loose_objects(target.remote)), target.view.oids())
    _refuse_emptying(target, stored, keep)
    from vtool.ops import gc_remote  # the remote's two-phase gc: not imported by a gc of the cache

    p = gc_remote.collect(project, target, jobs, keep, delete)
    return GcResult(target.name, len(p.doomed), p.doomed_bytes, p.kept, not delete, p.doomed,
                    marked=len(p.sparse) + len(p.dead_loose), deleted=len(p.due_packs) + len(p.due_loose))


def _remove_remote(target: Target, doomed: list[Oid], cache: Cache, jobs: int, progress: Progress) -> None:
    """Delete manifests before other objects, so a crash never leaves a manifest whose files are gone."""
    from vtool.workers import pooled

    manifests = [oid for oid in doomed if _looks_like_manifest(cache, oid)]
    rest = sorted(set(doomed) - set(manifests))
    progress.start(f"gc {target.name}", total=len(doomed))
    for batch in (manifests, rest):
        for _ in pooled(lambda oid: target.remote.remove(object_key(oid)), batch, jobs):
            progress.advance()
    progress.done()


def _looks_like_manifest(cache: Cache, oid: Oid) -> bool:
    """Tell from the local copy, when there is one, whether an object is a manifest."""
    try:
        with cache.open_object(oid) as f:
            return f.read(len(HEADER)) == HEADER
    except (OSError, CacheError):
        return False


def _is_inside(path: Path, folder: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real == base or real.startswith(base + os.sep)


def _linked_objects(project: Project, tracked: list[Tracked]) -> set[Oid]:
    """Objects workspace symlinks point at (cache.link=symlink): deleting them would destroy workspace data."""
    real_cache = os.path.realpath(project.cache.root)
    found: set[Oid] = set()
    for t in tracked:
        if t.rev is None:
            for link in _symlinks(project.root / t.ds.data_rel):
                target = os.path.realpath(link)
                folder, name = os.path.split(target)
                parent, fan = os.path.split(folder)
                oid = key_oid(f"{fan}/{name}")
                if parent == real_cache and oid is not None:
                    found.add(oid)
    return found


def _symlinks(path: Path) -> Iterable[str]:
    if path.is_symlink():
        yield str(path)
    elif path.is_dir():
        yield from _symlinks_below(str(path))


def _symlinks_below(folder: str) -> Iterable[str]:
    """Yield the symlinks under folder from the listings' file types alone (no stat per folder)."""
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_symlink():
                yield entry.path
            elif entry.is_dir(follow_symlinks=False):
                yield from _symlinks_below(entry.path)


def _stale_temp_files(root: Path) -> list[Path]:
    """Our temp files left by killed writers, in the cache root, its fan-out folders and packs/, and packs a
    killed push built in outgoing/ (every file there is the push's own scratch)."""
    if not root.is_dir():
        return []
    folders = [root] + [Path(e.path) for e in os.scandir(root) if is_fanout(e.name) and e.is_dir(follow_symlinks=False)]
    found = [path for folder in (*folders, root / PACKS_DIR) for path in stale_temp_files(folder)]
    return found + stale_temp_files(root / OUTGOING_DIR, scratch=True)
