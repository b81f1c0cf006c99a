"""A stage's inputs and outputs as they are now (hashes the way status computes them) and why it is stale."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vtool import safeyaml
from vtool.errors import WorkspaceError
from vtool.gitrepo import list_pointer_files
from vtool.hashing import Oid, hash_bytes, hash_file
from vtool.ops.project import Dataset, Project, read_pointer, read_small_file
from vtool.pipeline.dag import overlaps
from vtool.pipeline.env import Environment
from vtool.pipeline.graph import short
from vtool.pipeline.lockfile import LockEntry, canonical_json
from vtool.pipeline.stages import ParamRef, PipelineError, Stage
from vtool.pointer import POINTER_SUFFIX

DATA, CODE = "data", "code"
MAX_PARAMS_BYTES = 4 * 1024 * 1024
MISSING = "missing"


class StaleLockError(WorkspaceError):
    """The staged vtool.lock records other versions of outputs than the workspace holds (the pre-commit hook)."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(f"commit refused: vtool.lock records other data for {', '.join(paths)} than the workspace "
                         "holds (changed after vtool repro?)",
                         "run: vtool repro, then git add vtool.lock and the outputs' pointers; or, to put the "
                         f"recorded outputs back: vtool checkout {' '.join(paths)}; or commit with git commit "
                         "--no-verify")
        self.paths = paths


@dataclass(frozen=True)
class StageState:
    """A stage now: the lock entry it would get (hashes of the workspace), the kind of each dep, and staleness."""

    name: str
    entry: LockEntry
    kinds: dict[str, str]
    reasons: list[str]
    key: Oid

    @property
    def stale(self) -> bool:
        """Tell whether the stage must run (or be restored from the run cache)."""
        return bool(self.reasons)


def tracked_data(project: Project) -> set[str]:
    """Return the repo paths vtool tracks (one git call)."""
    return {p[: -len(POINTER_SUFFIX)] for p in list_pointer_files(project.root)}


def state_of(project: Project, stage: Stage, old: LockEntry | None, env: Environment,
             tracked: set[str]) -> StageState:
    """Hash the stage's deps, outputs, metrics and params now, and compare them with its lock entry."""
    kinds = {dep: DATA if any(overlaps(dep, t) for t in tracked) else CODE for dep in stage.deps}
    components = env.components()
    entry = LockEntry(
        cmd=stage.cmd,
        wdir=stage.wdir,
        deps={dep: oid for dep in stage.deps if (oid := path_oid(project, dep, kinds[dep] == DATA)) is not None},
        outs={out: oid for out in stage.outs if (oid := path_oid(project, out, True, False)) is not None},
        metrics={m: oid for m in stage.metrics if (oid := path_oid(project, m, False)) is not None},
        params=read_params(project.root, stage.params),
        env={c: components[c] for c in stage.env},
    )
    key = entry.key(list(stage.outs), list(stage.metrics))
    return StageState(stage.name, entry, kinds, staleness(stage, old, entry), key)


def path_oid(project: Project, rel: str, data: bool, pointer_if_absent: bool = True) -> Oid | None:
    """Hash a path: a tracked dataset as status does (its pointer's oid if not in the workspace), else its bytes."""
    path = project.root / rel
    if not os.path.lexists(path):
        pointer = project.root / (rel + POINTER_SUFFIX)
        if data and pointer_if_absent and pointer.is_file():
            return read_pointer(project.root, Dataset(rel + POINTER_SUFFIX, rel)).oid
        return None
    if data:
        return project.scan(rel).oid
    return code_oid(path)


def code_oid(path: Path) -> Oid:
    """Hash a code file's bytes; a folder of code as the canonical listing of its files' hashes."""
    if not path.is_dir():
        return hash_file(path)[0]
    listing = {}
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in names:
            full = Path(folder, name)
            listing[full.relative_to(path).as_posix()] = hash_file(full)[0]
    return folder_oid(listing)


def folder_oid(listing: dict[str, Oid]) -> Oid:
    """Hash a folder of code files by their relative paths and hashes."""
    return hash_bytes(canonical_json(listing))


def read_params(root: Path, refs: tuple[ParamRef, ...]) -> dict[str, dict[str, Any]]:
    """Read each declared key from its YAML/JSON params file; a missing file or key is an error."""
    found: dict[str, dict[str, Any]] = {}
    docs: dict[str, Any] = {}
    for ref in refs:
        if ref.file not in docs:
            docs[ref.file] = load_params_file(root / ref.file, ref.file)
        found.setdefault(ref.file, {})
        for key in ref.keys:
            found[ref.file][key] = lookup(docs[ref.file], key, ref.file)
    return found


def load_params_file(path: Path, shown: str) -> Any:
    """Parse a params file strictly (JSON is read as the YAML it also is)."""
    try:
        data = read_small_file(path, MAX_PARAMS_BYTES, shown)
    except FileNotFoundError:
        raise PipelineError(f"params file {shown} does not exist") from None
    return parse_params(data, shown)


def parse_params(data: bytes, shown: str) -> Any:
    """Decode params bytes (from the workspace or a revision)."""
    try:
        return safeyaml.load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PipelineError(f"{shown}: not valid YAML or JSON ({safeyaml.describe(exc)})") from None


def lookup(doc: Any, key: str, shown: str) -> Any:
    """Follow a dotted key into a params document, returning a JSON-safe copy of the value."""
    value = doc
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"{shown} has no key {key}", "fix the stage's params, or add the key")
        value = value[part]
    return jsonable(value)


def jsonable(value: Any) -> Any:
    """Make a YAML value JSON-safe (dates and other scalars become their text)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def staleness(stage: Stage, old: LockEntry | None, new: LockEntry) -> list[str]:
    """Say every reason the stage must run, in the order a user would check them."""
    if old is None:
        return ["never ran"]
    reasons = _definition(stage, old)
    for path in stage.deps:
        before, now = old.deps.get(path), new.deps.get(path)
        if path in old.deps and before != now:
            reasons.append(f"dep {path} {'is missing' if now is None else 'changed'}: {short(before)} -> {short(now)}")
    for path, value in _flat(new.params).items():
        before = _flat(old.params).get(path, value)
        if before != value:
            reasons.append(f"param {path} changed: {json_text(before)} -> {json_text(value)}")
    for path in (*stage.outs, *stage.metrics):
        before, now = old.produced.get(path), new.produced.get(path)
        if path in old.produced and before != now:
            reasons.append(f"out {path} is missing" if now is None else f"out {path} changed: {short(before)} -> "
                           f"{short(now)}")
    for component, value in new.env.items():
        before = old.env.get(component, value)
        if before != value:
            shown = f"{before} -> {value}" if component in ("python", "platform", "image") else "changed"
            reasons.append(f"{component} {shown}")
    return reasons


def _definition(stage: Stage, old: LockEntry) -> list[str]:
    """Compare what vtool.yaml declares with what the lock recorded."""
    reasons = []
    if old.cmd != stage.cmd:
        reasons.append("command changed")
    if old.wdir != stage.wdir:
        reasons.append(f"wdir changed: {old.wdir} -> {stage.wdir}")
    declared_params = [f"{ref.file}:{key}" for ref in stage.params for key in ref.keys]
    for what, before, now in (("deps", old.deps, stage.deps), ("outs", old.outs, stage.outs),
                              ("metrics", old.metrics, stage.metrics), ("params", _flat(old.params), declared_params),
                              ("tracked environment", old.env, stage.env)):
        added, removed = sorted(set(now) - set(before)), sorted(set(before) - set(now))
        if added or removed:
            reasons.append(f"{what} changed: " + " ".join([f"+{p}" for p in added] + [f"-{p}" for p in removed]))
    return reasons


def _flat(params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{file}:{key}": value for file, keys in params.items() for key, value in keys.items()}


def json_text(value: Any) -> str:
    """Show a param value compactly."""
    return canonical_json(value).decode().strip() if isinstance(value, (dict, list)) else repr(value)


def lock_mismatches(project: Project, entries: dict[str, LockEntry]) -> list[str]:
    """List the outputs and metrics whose workspace content is not what the lock records (absent ones are fine)."""
    found = []
    for entry in entries.values():
        for path, oid in entry.outs.items():
            if os.path.lexists(project.root / path) and project.scan(path).oid != oid:
                found.append(path)
        for path, oid in entry.metrics.items():
            if (project.root / path).is_file() and code_oid(project.root / path) != oid:
                found.append(path)
    return sorted(found)
