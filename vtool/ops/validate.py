"""`vtool validate`: run the checks of vtool.yaml against the workspace or a revision, reading each file once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from vtool import gitrepo
from vtool.checks import readers, report, rules, spec, table
from vtool.checks.results import ResultsCache
from vtool.checks.rules import ERROR, OK, Outcome
from vtool.checks.spec import Check
from vtool.errors import CorruptObjectError, UsageError, VtoolError
from vtool.fsutil import atomic_write, check_real_folder
from vtool.hashing import HashingSink
from vtool.ops.checkdata import Source, Target, covers
from vtool.ops.project import STATE_DIR, Project, open_project, repo_relative
from vtool.pipeline.stages import TOP_KEYS
from vtool.pointer import POINTER_SUFFIX, Kind
from vtool.progress import NULL_PROGRESS, Progress

MAX_CONFIG_BYTES = 1 << 20


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


@dataclass(frozen=True, kw_only=True)
class RuleResult(Outcome):
    """A rule's outcome, named by the file and check it judged, and whether it came from the results cache."""

    path: str
    check: str
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
    with Source(project, sha, untracked=only if sha is None else None) as source:
        pairs = [(c, t) for c in checks for t in source.targets(c)]
        unmatched = [c for c in checks if not any(p[0] is c for p in pairs)]
        if wanted:
            pairs = [(c, t) for c, t in pairs if any(covers(w, t.path) or w == c.key for w in wanted)]
            unmatched = [c for c in unmatched if c.key in wanted]
            if only is None:
                _require_covered(wanted, checks, pairs)
        source.prefetch([t for c, t in pairs if c.needs_table])
        counters = _Counters()
        results = [RuleResult("path", rules.FAIL, "no tracked file matches this check", count=1,
                              path=c.key, check=c.key) for c in unmatched]
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


def _require_covered(wanted: list[str], checks: list[Check], pairs: list[tuple[Check, Target]]) -> None:
    for w in wanted:
        if not any(covers(w, t.path) for _, t in pairs) and not any(c.key == w for c in checks):
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


def _judge(project: Project, source: Source, check: Check, target: Target, now: float,
           counters: _Counters) -> list[RuleResult]:
    """Run every rule of a check on one target."""
    if target.kind == "absent":
        return [RuleResult("read", ERROR, "not in the workspace (run: vtool checkout, or validate --rev HEAD)",
                           count=1, path=target.path, check=check.key)]
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
    return [RuleResult(**vars(o), path=target.path, check=check.key, cached=cached) for o in outcomes]


def _facts(project: Project, source: Source, check: Check, target: Target,
           counters: _Counters) -> tuple[table.Facts | Outcome, bool]:
    """Return the table facts for a target from the results cache, or by reading it once."""
    if target.kind == Kind.DIR:
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


def _read(source: Source, check: Check, target: Target, fmt: str,
          counters: _Counters) -> tuple[table.Facts, bool]:
    """Scan the table, hashing text formats as they stream so the cached facts belong to exactly this oid."""
    sink = HashingSink()
    with source.open(target) as handle:
        facts = table.scan(handle, fmt, check, None if fmt == "parquet" else sink.write)
        if fmt == "parquet":
            counters.nbytes += target.size
            counters.rows += facts.rows
            return facts, True
        while chunk := handle.read(readers.CHUNK):  # an early error still hashes the rest
            sink.write(chunk)
    counters.nbytes += sink.size
    counters.rows += facts.rows
    if sink.oid == target.oid:
        return facts, True
    if target.local is None:
        raise CorruptObjectError(f"cache object {target.oid} ({target.path}) is corrupt", "run: vtool fetch")
    return facts, False  # the file changed while it was read: report it, but do not remember it
