"""`vtool validate`: run the checks of vtool.yaml against the workspace or a revision, reading each file once."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vtool import gitrepo, manifest, transfer
from vtool.checks import readers, report, rules, spec, table
from vtool.checks.results import ResultsCache
from vtool.checks.rules import ERROR, OK, Outcome
from vtool.checks.spec import Check
from vtool.errors import CorruptObjectError, MissingObjectsError, TransferError, UsageError, VtoolError
from vtool.fsutil import atomic_write, check_real_folder
from vtool.hashing import Oid, new_hasher, oid_of
from vtool.ops.objects import Tracked, collect, revision_pointers, workspace_pointers
from vtool.ops.project import STATE_DIR, Dataset, Project, open_project, repo_relative
from vtool.ops.sync import connected, fetch_manifests
from vtool.pipeline.stages import TOP_KEYS
from vtool.pointer import POINTER_SUFFIX, Pointer
from vtool.progress import NULL_PROGRESS, Progress
from vtool.remote.base import Remote
from vtool.transfer import Obj
from vtool.workspace import Tree

MAX_CONFIG_BYTES = 1 << 20
GLOB_CHARS = "*?["


class ChecksFailedError(VtoolError):
    """Data failed the checks covering it, so it was not recorded (repro)."""

    def __init__(self, what: str, failed: list[RuleResult]) -> None:
        first = failed[0]
        column = f" {first.column}" if first.column else ""
        super().__init__(f"{what}: {len(failed)} check(s) failed; first: {first.path}: {first.rule}{column}: "
                         f"{first.message}", "see: vtool validate")
        self.failed = failed


@dataclass(frozen=True)
class ValidateOptions:
    """Which checks to run (those covering paths; all if empty), at which revision, and where to write JUnit."""

    paths: list[str] = field(default_factory=list)
    rev: str | None = None
    junit: Path | None = None


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on one file: ok, fail or error, with the first offending lines and a count."""

    path: str
    check: str
    rule: str
    status: str
    message: str
    column: str | None = None
    lines: list[int] = field(default_factory=list)
    count: int = 0
    cached: bool = False


@dataclass(frozen=True)
class ValidateResult:
    """Every verdict, and how much data had to be read (none when every result came from the cache)."""

    rev: str | None
    checks: int
    files: int
    results: list[RuleResult]
    rows_read: int
    bytes_read: int
    cache_hits: int
    cache_misses: int
    failed: bool


@dataclass(frozen=True)
class _Target:
    """A file (or dataset folder) a check applies to, and where its bytes are."""

    path: str
    tracked: Tracked
    kind: str
    oid: Oid
    size: int
    local: Path | None


@dataclass
class _Counters:
    rows: int = 0
    nbytes: int = 0
    hits: int = 0
    misses: int = 0


def validate(options: ValidateOptions, progress: Progress = NULL_PROGRESS) -> ValidateResult:
    """Check every declared check (or those covering options.paths), reading data only the cache lacks results for."""
    with open_project(progress) as project:
        result = _run(project, options)
    if options.junit is not None:
        cases = [(r.path, " ".join(filter(None, [r.check, r.rule, r.column])), r.status, r.message)
                 for r in result.results]
        atomic_write(options.junit, report.junit(cases, options.rev or "workspace"), durable=False)
    return result


def run_for_paths(project: Project, paths: list[str], rev: str | None = None,
                  now: float | None = None) -> list[RuleResult]:
    """Run the checks covering paths (repo-relative) in the workspace or at rev, for repro and lineage.

    Returns no results when no check covers them; cached results are reused, so asking again is cheap.
    """
    return _run(project, ValidateOptions(rev=rev), now, only=paths).results


def _run(project: Project, options: ValidateOptions, now: float | None = None,
         only: list[str] | None = None) -> ValidateResult:
    sha = gitrepo.resolve(project.root, options.rev) if options.rev is not None else None
    checks = spec.parse(_config_text(project, sha), TOP_KEYS)
    wanted = only if only is not None else [_relative(project, p) for p in options.paths]
    with _Source(project, sha, untracked=only if sha is None else None) as source:
        pairs = [(c, t) for c in checks for t in source.targets(c)]
        unmatched = [c for c in checks if not any(p[0] is c for p in pairs)]
        if wanted:
            pairs = [(c, t) for c, t in pairs if any(_covers(w, t.path) or w == c.key for w in wanted)]
            unmatched = [c for c in unmatched if c.key in wanted]
            if only is None:
                _require_covered(wanted, checks, pairs)
        source.prefetch([t for c, t in pairs if c.needs_table])
        counters = _Counters()
        results = [RuleResult(c.key, c.key, "path", rules.FAIL, "no tracked file matches this check", count=1)
                   for c in unmatched]
        project.progress.start("validating", total=len(pairs))
        moment = time.time() if now is None else now
        for check, target in pairs:
            results += _judge(project, source, check, target, moment, counters)
            project.progress.advance(1, target.size)
        project.progress.done()
    return ValidateResult(options.rev, len(checks), len({t.path for _, t in pairs}), results, counters.rows,
                          counters.nbytes, counters.hits, counters.misses,
                          failed=any(r.status != OK for r in results))


def _relative(project: Project, user_path: str) -> str:
    rel = repo_relative(project.root, user_path.rstrip("/") or user_path)
    return rel[: -len(POINTER_SUFFIX)] if rel.endswith(POINTER_SUFFIX) else rel


def _covers(folder: str, path: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def _require_covered(wanted: list[str], checks: list[Check], pairs: list[tuple[Check, _Target]]) -> None:
    for w in wanted:
        if not any(_covers(w, t.path) for _, t in pairs) and not any(c.key == w for c in checks):
            raise UsageError(f"{w}: no check in {spec.CONFIG_FILE} covers it", "see: docs/quality-gates.md")


def _config_text(project: Project, sha: str | None) -> str:
    """Read vtool.yaml from the work tree, or as committed at sha."""
    if sha is not None:
        data = gitrepo.file_at(project.root, sha, spec.CONFIG_FILE)
    else:
        path = project.root / spec.CONFIG_FILE
        check_real_folder(project.root, path)
        data = path.read_bytes() if path.is_file() else None
    if data is None:
        return ""
    if len(data) > MAX_CONFIG_BYTES:
        raise spec.CheckSpecError(f"{spec.CONFIG_FILE} is over the {MAX_CONFIG_BYTES} byte limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise spec.CheckSpecError(f"{spec.CONFIG_FILE} is not UTF-8 text") from None


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


class _Source:
    """The tracked data of the workspace or of one commit: lists files and opens them, fetching on demand."""

    def __init__(self, project: Project, sha: str | None, untracked: list[str] | None = None) -> None:
        self.project = project
        self.sha = sha
        self.tracked = revision_pointers(project, sha, []) if sha else workspace_pointers(project, [])
        self.tracked += self._not_yet_tracked(untracked or [])
        self._listings: dict[str, list[_Target]] = {}
        self._commit_times: dict[str, float | None] = {}
        self._remote: Remote | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _not_yet_tracked(self, paths: list[str]) -> list[Tracked]:
        """Treat workspace paths no pointer covers yet (a stage's first outputs) as datasets of their own."""
        known = [t.ds.data_rel for t in self.tracked]
        out = []
        for rel in paths:
            if any(_covers(k, rel) for k in known) or not os.path.lexists(self.project.root / rel):
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

    def targets(self, check: Check) -> list[_Target]:
        """List the files (or the dataset itself) the check's key names."""
        found = []
        for t in self.tracked:
            if check.key == t.ds.data_rel:
                found.append(self._dataset_target(t))
            elif _may_hold(check.key, t.ds.data_rel):
                found += [x for x in self._files(t) if matches(check.key, x.path)]
        return found

    def _dataset_target(self, t: Tracked) -> _Target:
        if t.pointer.kind == "file":
            return next(iter(self._files(t)))
        local = self.project.root / t.ds.data_rel if self.sha is None else None
        if local is not None and not os.path.lexists(local):
            return _Target(t.ds.data_rel, t, "absent", t.pointer.oid, t.pointer.size, None)
        oid = t.pointer.oid if local is None else self._scan(t).oid
        return _Target(t.ds.data_rel, t, "dir", oid, t.pointer.size, local)

    def _scan(self, t: Tracked) -> Tree:
        return self.project.scan(t.ds.data_rel)

    def _files(self, t: Tracked) -> list[_Target]:
        """List a dataset's files once: scanned in the workspace, from manifests at a revision."""
        if t.ds.data_rel not in self._listings:
            self._listings[t.ds.data_rel] = self._list(t)
        return self._listings[t.ds.data_rel]

    def _list(self, t: Tracked) -> list[_Target]:
        rel = t.ds.data_rel
        if self.sha is None:
            if not os.path.lexists(self.project.root / rel):
                return [_Target(rel, t, "absent", t.pointer.oid, t.pointer.size, None)]
            tree = self._scan(t)
            return [_Target(f"{rel}/{name}" if name else rel, t, "file", e.oid, e.size,
                            self.project.root / rel / name if name else self.project.root / rel)
                    for name, e in tree.file_oids.items()]
        if t.pointer.kind == "file":
            return [_Target(rel, t, "file", t.pointer.oid, t.pointer.size, None)]
        if collect(self.project, [t]).unreadable:
            got = fetch_manifests(self.project, self.remote(), self.project.config.jobs, [t.pointer.oid])
            if got.failed:
                raise TransferError(got.failed, "fetch manifests", self.remote().name)
        entries = manifest.files(lambda oid: self.project.read_manifest(oid)[0], t.pointer.oid)
        return [_Target(f"{rel}/{name}", t, "file", e.oid, e.size, None) for name, e in entries.items()]

    def prefetch(self, targets: list[_Target]) -> None:
        """Fetch, in one transfer, the objects of a revision's files that the cache lacks."""
        cache = self.project.cache
        wanted = {t.oid: Obj(t.oid, t.size) for t in targets if t.local is None and t.kind == "file"
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
    def open(self, target: _Target) -> Iterator[IO[bytes]]:
        """Open a file's bytes from the workspace or the cache."""
        path = target.local if target.local is not None else self.project.cache.path(target.oid)
        with open(path, "rb") as handle:
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


def _judge(project: Project, source: _Source, check: Check, target: _Target, now: float,
           counters: _Counters) -> list[RuleResult]:
    """Run every rule of a check on one target."""
    if target.kind == "absent":
        return [RuleResult(target.path, check.key, "read", ERROR,
                           "not in the workspace (run: vtool checkout, or validate --rev HEAD)", count=1)]
    outcomes: list[Outcome] = []
    if check.hash is not None:
        outcomes.append(rules.hash_rule(check, target.oid))
    if check.license is not None:
        outcomes.append(rules.license_rule(check, target.tracked.pointer.meta.get("license"),
                                           target.tracked.ds.pointer_rel))
    if check.freshness is not None and check.freshness.column is None:
        outcomes.append(rules.commit_freshness(check.freshness, source.commit_time(target.tracked), now))
    cached = False
    if check.needs_table:
        facts, cached = _facts(project, source, check, target, counters)
        outcomes += rules.table_rules(check, facts, now) if isinstance(facts, table.Facts) else [facts]
    return [RuleResult(target.path, check.key, o.rule, o.status, o.message, o.column, o.lines, o.count, cached)
            for o in outcomes]


def _facts(project: Project, source: _Source, check: Check, target: _Target,
           counters: _Counters) -> tuple[table.Facts | Outcome, bool]:
    """Return the table facts for a target from the results cache, or by reading it once."""
    if target.kind == "dir":
        return Outcome("read", ERROR, "is a folder; schema, rows, pii and freshness columns apply to files "
                       f"(key a file or a glob such as {target.path}/*.csv)", count=1), False
    fmt = check.format or readers.format_of(target.path)
    if fmt is None:
        return Outcome("read", ERROR, "unknown table format: only hash, freshness by commit and license apply "
                       f"(set format: {'|'.join(spec.FORMATS)} if it is a table)", count=1), False
    results = ResultsCache(project.vtool_dir / STATE_DIR)
    key = check.data_key()
    found = results.get(key, target.oid)
    if found is not None:
        counters.hits += 1
        return found, True
    counters.misses += 1
    try:
        facts, verified = _read(source, check, target, fmt, counters)
    except readers.ExtraMissing as exc:
        return Outcome("read", ERROR, str(exc), count=1), False
    if verified:
        results.put(key, target.oid, facts)
    return facts, False


def _read(source: _Source, check: Check, target: _Target, fmt: str,
          counters: _Counters) -> tuple[table.Facts, bool]:
    """Scan the table, hashing text formats as they stream so the cached facts belong to exactly this oid."""
    hasher = new_hasher()
    update: Callable[[bytes], object] | None = None
    if fmt != "parquet":
        def update(chunk: bytes) -> None:
            hasher.update(chunk)
            counters.nbytes += len(chunk)
    with source.open(target) as handle:
        facts = table.scan(handle, fmt, check, update)
        if fmt == "parquet":
            counters.nbytes += target.size
            counters.rows += facts.rows
            return facts, True
        while chunk := handle.read(readers.CHUNK):  # an early error still hashes the rest
            hasher.update(chunk)
    counters.rows += facts.rows
    if oid_of(hasher) == target.oid:
        return facts, True
    if target.local is None:
        raise CorruptObjectError(f"cache object {target.oid} ({target.path}) is corrupt", "run: vtool fetch")
    return facts, False  # the file changed while it was read: report it, but do not remember it
