"""`vtool lineage`: Anc(m) of an output at a revision, or (--down) every output in history that used a dataset."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from vtool import pointer as ptr
from vtool.config import VTOOL_DIR
from vtool.errors import FormatError, UsageError
from vtool.fsutil import atomic_write, make_dirs_inside
from vtool.gitrepo import file_history, origin_url, read_blobs, refs_state
from vtool.hashing import Oid, hash_bytes, is_oid
from vtool.ops.pipesource import PipelineAt, pipeline_at
from vtool.ops.project import STATE_DIR, dataset_for, project_root
from vtool.pipeline import lockfile
from vtool.pipeline.dag import overlaps
from vtool.pipeline.graph import Lineage, RunNode, ancestor_stages, consistency, run_node, short
from vtool.pipeline.lockfile import LockEntry
from vtool.pointer import POINTER_SUFFIX

INDEX_FILE = "lineage.json"
INDEX_VERSION = 1


@dataclass(frozen=True)
class Use:
    """An output version that used the dataset (directly or through other stages), and the commits that hold it."""

    stage: str
    output: str
    oid: Oid
    via: list[str]
    commits: list[str]
    first_commit: str
    first_date: str


@dataclass(frozen=True)
class Downstream:
    """Every output version in history that used a dataset version (or any version of a path)."""

    target: str
    oid: Oid | None
    uses: list[Use]
    commits_walked: int
    cached: bool
    problems: list[str] = field(default_factory=list)


def namespace(root: Path) -> str:
    """Name the repository for OpenLineage: its origin URL without credentials, else its folder name."""
    url = origin_url(root)
    if not url:
        return root.name
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts) if parts.scheme else url


def output_path(root: Path, target: str) -> str:
    """Turn a user's TARGET (path or pointer file, relative to cwd) into a repo path."""
    return dataset_for(root, target).data_rel


def lineage(target: str, rev: str | None = None) -> Lineage:
    """Collect every run, data version, code hash, param and environment an output was made from."""
    root = project_root()
    pipe = pipeline_at(root, rev)
    path = output_path(root, target)
    producer = pipe.producer(path) or next((n for n, e in pipe.lock.items()
                                            if any(overlaps(path, p) for p in e.produced)), None)
    if producer is None:
        declared = next((s.name for s in pipe.stages.values() if any(overlaps(path, p) for p in s.produced)), None)
        where = f" at {rev}" if rev else ""
        if declared:
            raise UsageError(f"{path}: stage {declared} has not run{where} (no entry in vtool.lock)",
                             "run: vtool repro")
        raise UsageError(f"{path}: not an output of any stage{where}", "see: vtool stage list")
    runs: list[RunNode] = []
    problems: list[str] = []
    for name in ancestor_stages(pipe.stages, pipe.lock, producer):
        entry = pipe.lock.get(name)
        if entry is None:
            problems.append(f"stage {name} has no entry in vtool.lock")
            continue
        record = pipe.record(name)
        if record is None:
            problems.append(f"stage {name}: no run record {entry.key()[7:19]}… (not committed, or run elsewhere)")
        runs.append(run_node(name, entry, record, pipe.lock))
        problems += pointer_problems(pipe, entry)
    problems += consistency(runs)
    oid = pipe.lock[producer].produced.get(path)
    return Lineage(path, oid, rev, pipe.commit, runs, problems)


def pointer_problems(pipe: PipelineAt, entry: LockEntry) -> list[str]:
    """Say where an output's pointer names another version than the lock recorded."""
    problems = []
    for path, oid in entry.outs.items():
        data = pipe.read(path + POINTER_SUFFIX)
        if data is None:
            problems.append(f"{path}: no pointer {path}{POINTER_SUFFIX}, though vtool.lock records {short(oid)}")
            continue
        try:
            named = ptr.loads(data, path.rsplit("/", 1)[-1] + POINTER_SUFFIX).oid
        except FormatError as exc:
            problems.append(f"{path}: {exc.message}")
            continue
        if named != oid:
            problems.append(f"{path}: the pointer names {short(named)}, but vtool.lock recorded {short(oid)}")
    return problems


def lineage_down(target: str) -> Downstream:
    """Find every output, at every commit that changed vtool.lock, that used this dataset (by path or oid)."""
    root = project_root()
    by_oid = is_oid(target)
    path = None if by_oid else output_path(root, target)
    index, cached = load_index(root)
    found: dict[tuple[str, str, Oid], dict[str, object]] = {}
    for commit, date, blob in index["commits"]:  # newest first
        if blob is None:
            continue
        for stage, out, oid, via in _tainted(index["locks"][blob], path, target if by_oid else None):
            use = found.setdefault((stage, out, oid), {"commits": [], "via": via})
            use["commits"].append(commit)  # type: ignore[attr-defined]
            use["first"] = (commit, date)
    uses = [Use(stage, out, oid, list(u["via"]), list(u["commits"]), u["first"][0], u["first"][1])  # type: ignore
            for (stage, out, oid), u in found.items()]
    uses.sort(key=lambda u: (u.first_date, u.stage, u.output))
    return Downstream(path or target, target if by_oid else None, uses, len(index["commits"]), cached,
                      index.get("problems", []))


def _tainted(entries: dict[str, dict[str, dict[str, Oid]]], path: str | None,
             oid: Oid | None) -> list[tuple[str, str, Oid, list[str]]]:
    """Return (stage, output, oid, via) for every output in one lock that derives from the target."""
    def matches(dep: str, dep_oid: Oid, made: dict[str, Oid]) -> bool:
        if made.get(dep) == dep_oid:
            return True
        return dep_oid == oid if oid is not None else path is not None and overlaps(dep, path)

    made: dict[str, Oid] = {}
    via: dict[str, list[str]] = {}
    changed = True
    while changed:
        changed = False
        for stage, body in entries.items():
            if stage in via:
                continue
            hits = [d for d, o in body["deps"].items() if matches(d, o, made)]
            if hits:
                via[stage] = sorted(hits)
                made.update(body["outs"])
                changed = True
    return [(s, out, o, via[s]) for s in sorted(via) for out, o in sorted(entries[s]["outs"].items())]


def load_index(root: Path) -> tuple[dict, bool]:
    """Return the hash -> (commit, stage) index of vtool.lock's history, rebuilt only when a ref moved."""
    state = hash_bytes(refs_state(root).encode())
    path = root / VTOOL_DIR / STATE_DIR / INDEX_FILE
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("version") == INDEX_VERSION and doc.get("refs") == state:
            return doc, True
    except (OSError, ValueError):
        pass
    doc = build_index(root)
    doc.update(version=INDEX_VERSION, refs=state)
    make_dirs_inside(root, path.parent)
    if os.access(path.parent, os.W_OK):
        atomic_write(path, json.dumps(doc, sort_keys=True).encode(), durable=False)
    return doc, False


def build_index(root: Path) -> dict:
    """Walk `git log --all -- vtool.lock` once and keep, per lock version, each stage's deps and outputs."""
    history = file_history(root, lockfile.LOCK_FILE)
    blobs = read_blobs(root, [b for _, _, b in history if b])
    locks: dict[str, dict[str, dict[str, dict[str, Oid]]]] = {}
    problems = []
    for sha, data in blobs.items():
        try:
            entries = lockfile.loads(data, f"vtool.lock blob {sha[:12]}")
        except FormatError as exc:
            problems.append(exc.message)
            entries = {}
        locks[sha] = {name: {"deps": e.deps, "outs": e.produced} for name, e in entries.items()}
    commits = [[c, d, b if b in locks else None] for c, d, b in history]
    return {"commits": commits, "locks": locks, "problems": problems}
