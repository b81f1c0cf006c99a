"""An open vtool project: root, settings, cache, stat cache and locks, shared by every op."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vtool import config as cfg
from vtool import manifest, workspace
from vtool import pointer as ptr
from vtool.cache import Cache
from vtool.errors import ConfigError, FormatError, NotARepoError, UnsafePathError, UsageError
from vtool.fsutil import check_real_folder, open_regular
from vtool.gitrepo import find_root, is_revision, linked_common_dir, list_pointer_files
from vtool.hashing import Oid
from vtool.lock import LOCK_TIMEOUT_S, locked
from vtool.manifest import Entry
from vtool.ops import journal
from vtool.pointer import POINTER_SUFFIX, Kind, Pointer
from vtool.progress import NULL_PROGRESS, Progress
from vtool.statcache import StatCache
from vtool.workspace import HASH_ONLY, Baseline, FolderSink, Hasher, Tree

STATE_DIR = "state"
STAT_DB = "stat.db"
LOCK_NAME = "lock"
CACHE_LOCK_NAME = "lock"
# Where worktrees of a bare repository (no main work tree) keep their shared cache, inside the git dir.
BARE_CACHE = ("vtool", "cache")
LOCK_TIMEOUT_ENV = "VTOOL_LOCK_TIMEOUT"
# Decoded manifest entries kept for re-reads (a few hundred bytes each): the least recently read manifests
# are dropped past this, so a walk of a million files holds a bounded memo rather than the whole tree.
MANIFEST_MEMO_ENTRIES = 32_768


@dataclass
class Project:
    """What an op needs to work on one repository."""

    root: Path
    config: cfg.Config
    cache: Cache
    stats: StatCache
    progress: Progress
    _manifests: dict[Oid, tuple[list[Entry], int]] = field(default_factory=dict)
    _memo_entries: int = 0
    totals: manifest.TotalsCheck = field(default_factory=manifest.TotalsCheck)

    def read_manifest(self, oid: Oid) -> tuple[list[Entry], int]:
        """Decode a cached manifest, memoised within a bound (they are immutable); return its entries and byte size.

        Every folder's totals are held to what its parent entry or pointer claims (`totals`) as it is read.
        """
        found = self._manifests.pop(oid, None)
        if found is None:
            found = self._decode_manifest(oid)
            self._memo_entries += len(found[0])
        self._manifests[oid] = found  # most recently read last
        while self._memo_entries > MANIFEST_MEMO_ENTRIES and len(self._manifests) > 1:
            self._memo_entries -= len(self._manifests.pop(next(iter(self._manifests)))[0])
        return found

    def read_manifest_once(self, oid: Oid) -> tuple[list[Entry], int]:
        """Decode a cached manifest without memoising it: a walk that meets each manifest once (gc, push) would
        only fill the memo with entries it never reads again."""
        return self._manifests.get(oid) or self._decode_manifest(oid)

    def _decode_manifest(self, oid: Oid) -> tuple[list[Entry], int]:
        data = self.cache.read_bytes(oid)
        entries = manifest.decode(data, oid)
        self.totals.read(oid, entries)
        return entries, len(data)

    def scan(self, data_rel: str, hasher: Hasher = HASH_ONLY, *, baseline: Baseline | None = None,
             trust_stats: bool = True, jobs: int | None = None, sink: FolderSink | None = None) -> Tree:
        """Scan a tracked path with this project's stat cache, jobs and cache folder (links into it are data)."""
        return workspace.scan(self.root, data_rel, self.stats, hasher, jobs or self.config.jobs, self.progress,
                              self.config.cache_dir, baseline, trust_stats=trust_stats, sink=sink)

    def claim_totals(self, pointer: Pointer, where: str) -> None:
        """Hold a folder pointer's root manifest to the size and file count the pointer states."""
        if pointer.kind == ptr.Kind.DIR:
            self.totals.claim(pointer.oid, pointer.size, pointer.files, where)

    def whole_in_cache(self, pointer: Pointer, signature: str | None) -> bool:
        """Tell whether the cache held every object of a folder pointer when its signature was this one,
        i.e. still holds them all (an object leaving the cache changes the signature)."""
        return signature is not None and self.stats.complete_at(pointer.oid) == signature

    def holds_all(self, pointers: Iterable[Pointer]) -> bool:
        """Tell from the stat cache's records alone (no manifest walk, no remote) that the cache holds every
        object of these pointers; False means only that it may not."""
        signature = self.cache.signature()
        return all(self.whole_in_cache(p, signature) if p.kind == ptr.Kind.DIR else self.cache.has(p.oid)
                   for p in pointers)

    def remember_whole(self, oid: Oid, signature: str | None) -> None:
        """Record that the cache held every object of a folder version at this signature (read by whole_in_cache)."""
        if signature is not None:
            self.stats.remember_complete(oid, signature)

    @property
    def vtool_dir(self) -> Path:
        """Return the project's `.vtool` folder."""
        return self.root / cfg.VTOOL_DIR


@dataclass(frozen=True)
class Dataset:
    """A tracked path: its pointer file and the data beside it, both repo-relative."""

    pointer_rel: str
    data_rel: str

    @property
    def name(self) -> str:
        """Return the tracked path's own name (the pointer's `path` field)."""
        return self.data_rel.rsplit("/", 1)[-1]


def file_entry(pointer: Pointer) -> Entry:
    """A file dataset as the manifest entry of its one file, exec bit included."""
    return Entry(pointer.path, manifest.KIND_EXEC if pointer.executable else manifest.KIND_FILE, pointer.oid,
                 pointer.size, 1)


def matches(tree: Tree, pointer: Pointer) -> bool:
    """Tell whether scanned data is what the pointer names (a file dataset's exec bit included)."""
    if (tree.kind, tree.oid) != (pointer.kind, pointer.oid):
        return False
    return pointer.kind != Kind.FILE or tree.file_oids[""].kind == file_entry(pointer).kind


def project_root(start: Path | None = None) -> Path:
    """Find the enclosing git repo and require `vtool init` to have run there."""
    root = find_root(start or Path.cwd())
    if not (root / cfg.VTOOL_DIR).is_dir():
        raise NotARepoError(f"{root} is not a vtool project", "run: vtool init")
    return root


def project_root_or_none(start: Path | None = None) -> Path | None:
    """Return the project root, or None where vtool is not set up (git hooks then do nothing)."""
    try:
        return project_root(start)
    except NotARepoError:
        return None


def load_settings(root: Path) -> cfg.Config:
    """Read the settings; a linked git worktree shares its main worktree's cache unless cache.dir says otherwise."""
    common = linked_common_dir(root)
    if common is None:
        return cfg.load(root)
    main = common.parent
    if common.name == ".git" and (main / cfg.VTOOL_DIR).is_dir():
        shared = cfg.load(main).cache_dir
    else:
        shared = common.joinpath(*BARE_CACHE)
    return cfg.load(root, default_cache=shared)


def lock_timeout() -> float:
    """Return how long to wait for a lock: VTOOL_LOCK_TIMEOUT seconds if set, else LOCK_TIMEOUT_S."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return LOCK_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{LOCK_TIMEOUT_ENV}={text!r} is not a number of seconds", "unset it or use e.g. 30")
    return seconds


@contextlib.contextmanager
def open_project(progress: Progress = NULL_PROGRESS, exclusive_cache: bool = False,
                 start: Path | None = None) -> Iterator[Project]:
    """Open the project with the repo lock held and the cache lock shared (exclusive for gc)."""
    root = project_root(start)
    settings = load_settings(root)
    vdir = root / cfg.VTOOL_DIR
    check_real_folder(root, vdir / STATE_DIR / STAT_DB)  # a committed symlink must not redirect our writes
    timeout = lock_timeout()
    with locked(vdir / LOCK_NAME, timeout=timeout, on_wait=progress.message), \
            locked(settings.cache_dir / CACHE_LOCK_NAME, shared=not exclusive_cache, timeout=timeout,
                   on_wait=progress.message):
        finished = journal.finish_interrupted(root, vdir / STATE_DIR)  # a killed rm or mv is finished first
        if finished is not None:
            progress.message(f"finished the interrupted `{finished}`")
        stats = StatCache(vdir / STATE_DIR / STAT_DB, warn=progress.message)
        cache = Cache(settings.cache_dir, settings.packs)
        try:
            yield Project(root, settings, cache, stats, progress)
        finally:
            try:
                cache.close()
            finally:
                stats.close()


def repo_relative(root: Path, user_path: str) -> str:
    """Turn a user's path (relative to cwd) into a repo-relative posix path, refusing escapes."""
    absolute = Path(os.path.abspath(user_path))
    real_root = os.path.realpath(root)
    if os.path.realpath(absolute) == real_root:
        raise UsageError(f"{user_path}: the repository root itself cannot be tracked", "name a file or folder in it")
    real_parent = os.path.realpath(absolute.parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise UnsafePathError(f"{user_path}: outside the repository {root}")
    lexical = os.path.relpath(absolute, real_root)
    if lexical != os.pardir and not lexical.startswith(os.pardir + os.sep):
        check_real_folder(Path(real_root), absolute)  # `dir/x` with dir -> data must not become data/x
    rel = (Path(real_parent) / absolute.name).relative_to(real_root).as_posix()
    first = rel.split("/", 1)[0]
    if first.lower() in (".git", cfg.VTOOL_DIR):
        raise UnsafePathError(f"{user_path}: refusing to track anything inside {first}/")
    return rel


def dataset_for(root: Path, user_path: str) -> Dataset:
    """Map `data`, `data/` or `data.vtool` to its dataset."""
    rel = repo_relative(root, user_path.rstrip("/") or user_path)
    if rel.endswith(POINTER_SUFFIX):
        rel = rel[: -len(POINTER_SUFFIX)]
    return Dataset(rel + POINTER_SUFFIX, rel)


def is_tracked_path(root: Path, arg: str) -> bool:
    """Tell whether a command-line argument names a tracked dataset, its pointer, or a path inside a dataset.

    A path inside a dataset that is not on disk gives way to a revision of that name (`vtool checkout v1`
    run inside the dataset's folder), but names a deleted file when git knows no such revision.
    """
    found = locate(root, arg)
    if found is None or not found.sub:
        return found is not None
    return os.path.lexists(arg) or not is_revision(root, arg)


def all_datasets(root: Path) -> list[Dataset]:
    """Every pointer file in the work tree, as datasets."""
    return [checked_dataset(p) for p in list_pointer_files(root)]


def checked_dataset(pointer_rel: str, where: str | None = None) -> Dataset:
    """Make a dataset of a pointer found in git, refusing one inside .vtool/ (git itself keeps out of .git/)."""
    first = pointer_rel.split("/", 1)[0]
    if first in (cfg.VTOOL_DIR, ".git"):
        raise UnsafePathError(f"{where or pointer_rel}: a pointer inside {first}/ is refused",
                              "vtool never tracks its own files; delete it")
    return Dataset(pointer_rel, pointer_rel[: -len(POINTER_SUFFIX)])


@dataclass(frozen=True)
class Target:
    """What a command-line target names: a dataset, and the path inside it ("" for all of it)."""

    ds: Dataset
    sub: str = ""

    @property
    def path(self) -> str:
        """Return the repo-relative path the target names."""
        return f"{self.ds.data_rel}/{self.sub}" if self.sub else self.ds.data_rel


def locate(root: Path, user_path: str, pointers: Iterable[str] | None = None) -> Target | None:
    """Find the dataset a path names or lies inside (the one rule for every command's TARGETS), or None.

    pointers are the pointer files to look among (those of a revision); by default, the work tree's.
    """
    ds = dataset_for(root, user_path)
    known = set(pointers) if pointers is not None else None

    def exists(pointer_rel: str) -> bool:
        return (root / pointer_rel).is_file() if known is None else pointer_rel in known

    if exists(ds.pointer_rel):
        return Target(ds)
    parts = ds.data_rel.split("/")
    for cut in range(len(parts) - 1, 0, -1):  # datasets never nest, so at most one encloses the path
        data = "/".join(parts[:cut])
        if exists(data + POINTER_SUFFIX):
            return Target(Dataset(data + POINTER_SUFFIX, data), "/".join(parts[cut:]))
    return None


def outermost(targets: list[Target]) -> list[Target]:
    """Drop repeated targets and those inside another one, so no part of a dataset is handled twice."""
    paths = {t.path for t in targets}
    out: dict[str, Target] = {}
    for t in targets:
        if not any(t.path.startswith(other + "/") for other in paths):
            out.setdefault(t.path, t)
    return list(out.values())


def select(root: Path, targets: list[str]) -> list[Target]:
    """Resolve command-line targets to tracked datasets or paths inside them; none means every dataset."""
    if not targets:
        return [Target(ds) for ds in all_datasets(root)]
    chosen = []
    for t in targets:
        found = locate(root, t)
        if found is None:
            ds = dataset_for(root, t)
            raise UsageError(f"{t}: not tracked by vtool (no {ds.pointer_rel})", f"run: vtool add {t}")
        chosen.append(found)
    return outermost(chosen)


def read_pointer(root: Path, ds: Dataset) -> Pointer:
    """Load a dataset's pointer from the work tree, refusing one that resolves outside the repo."""
    path = root / ds.pointer_rel
    check_real_folder(root, path)
    return ptr.loads(read_small_file(path, ptr.MAX_POINTER_BYTES, ds.pointer_rel), path.name)


def read_small_file(path: Path, limit: int, shown: str) -> bytes:
    """Read a pointer-sized file without following a symlink and without reading past the size cap."""
    with open_regular(path, shown) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FormatError(f"{shown}: pointer is over the {limit} byte limit")
    return data
