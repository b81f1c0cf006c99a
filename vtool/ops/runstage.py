"""Running one stage: execute its command, add its outputs like `vtool add`, write the lock and the run record."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from vtool import __version__
from vtool import pointer as ptr
from vtool.errors import CacheError, MissingObjectsError, RemoteError, TransferError, VtoolError
from vtool.fsutil import atomic_write, check_inside, check_real_folder, make_dirs_inside
from vtool.gitrepo import GITIGNORE, ensure_ignored, head_commit, uncommitted_files
from vtool.hashing import Oid, hash_file
from vtool.ops.add import add
from vtool.ops.checkout import update_workspace
from vtool.ops.objects import Tracked
from vtool.ops.project import Dataset, Project, open_project
from vtool.ops.stagestate import StageState
from vtool.ops.sync import ensure_local
from vtool.ops.validate import OK, ChecksFailedError, run_for_paths
from vtool.pipeline import lockfile, runs
from vtool.pipeline.env import Environment
from vtool.pipeline.lockfile import LockEntry
from vtool.pipeline.runs import Output, RunRecord
from vtool.pipeline.stages import PipelineError, Stage
from vtool.pointer import POINTER_SUFFIX, Pointer
from vtool.progress import Progress

STAGE_ENV = "VTOOL_STAGE"
STDERR_FD = 2
# Written by repro itself while a pipeline runs: their changes are not part of what a run saw.
OWN_FILES = (lockfile.LOCK_FILE,)
OWN_PREFIX = runs.RUNS_DIR + "/"


class StageFailedError(VtoolError):
    """A stage's command exited non-zero; its lock entry and outputs were left as they were."""

    def __init__(self, stage: str, code: int) -> None:
        super().__init__(f"stage {stage} failed: its command exited with code {code}; vtool.lock and its recorded "
                         "outputs were left as they were", "fix the command, then run: vtool repro")
        self.stage = stage
        self.code = code


@dataclass(frozen=True)
class Started:
    """When a command ran, and what git state it saw."""

    started: str
    ended: str
    commit: str | None
    uncommitted: dict[str, Oid | None]


def now() -> str:
    """Return the UTC time in ISO 8601, to the microsecond."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def pipeline_files(stages: list[Stage]) -> set[str]:
    """Name the files repro itself writes: outputs' pointers and ignore files, and metrics (judged as data)."""
    found = set(OWN_FILES)
    for stage in stages:
        found.update(stage.metrics)
        for out in stage.outs:
            folder = out.rsplit("/", 1)[0] + "/" if "/" in out else ""
            found.update([out + POINTER_SUFFIX, folder + GITIGNORE])
    return found


def seen_uncommitted(root: Path, written: set[str]) -> dict[str, Oid | None]:
    """Hash every git-tracked file that differs from HEAD (None if deleted), except what repro itself writes."""
    found: dict[str, Oid | None] = {}
    for rel in uncommitted_files(root):
        if rel in written or rel.startswith(OWN_PREFIX):
            continue
        path = root / rel
        found[rel] = hash_file(path)[0] if path.is_file() and not path.is_symlink() else None
    return found


def run_command(root: Path, stage: Stage, state: StageState, written: set[str]) -> Started:
    """Run the stage's command in its working folder, its output streamed to stderr; a failure raises."""
    missing = [dep for dep in stage.deps if dep not in state.entry.deps]
    if missing:
        raise PipelineError(f"stage {stage.name}: dep {missing[0]} does not exist",
                            "run the stage that makes it, or vtool pull / vtool checkout it")
    cwd = root / stage.wdir
    check_inside(root, cwd)
    if not cwd.is_dir():
        raise PipelineError(f"stage {stage.name}: wdir {stage.wdir} is not a folder")
    commit, uncommitted = head_commit(root), seen_uncommitted(root, written)
    started = now()
    proc = subprocess.run(stage.cmd, shell=True, cwd=cwd, stdout=STDERR_FD, check=False,
                          env={**os.environ, STAGE_ENV: stage.name})
    if proc.returncode != 0:
        raise StageFailedError(stage.name, proc.returncode)
    return Started(started, now(), commit, uncommitted)


def record_run(root: Path, stage: Stage, state: StageState, env: Environment, started: Started,
               progress: Progress) -> RunRecord:
    """Check the outputs, add them like `vtool add`, then write the lock entry and the run record."""
    absent = [p for p in stage.produced if not os.path.lexists(root / p)]
    if absent:
        raise PipelineError(f"stage {stage.name}: the command succeeded but did not write {absent[0]}",
                            "vtool.lock was left as it was; fix the command or the stage's outs")
    with open_project(progress, start=root) as project:  # outputs that fail their checks are never recorded
        verdicts = run_for_paths(project, list(stage.produced))
    failed = [r for r in verdicts if r.status != OK]
    if failed:
        raise ChecksFailedError(f"stage {stage.name}: outputs not recorded, vtool.lock left as it was", failed)
    added = add([str(root / out) for out in stage.outs], progress).added if stage.outs else []
    outs = {a.path: Output(a.kind, a.oid, a.size, a.files) for a in added}
    with open_project(progress, start=root) as project:
        metrics = {m: project.cache.put_bytes((root / m).read_bytes()) for m in stage.metrics}
        entry = replace(state.entry, outs={p: o.oid for p, o in outs.items()}, metrics=metrics)
        record = RunRecord(
            stage=stage.name, key=state.key, cmd=stage.cmd, wdir=stage.wdir, started=started.started,
            ended=started.ended, exit_code=0, commit=started.commit, uncommitted=started.uncommitted,
            user=_user(), host=socket.gethostname(), vtool=__version__,
            deps={p: {"kind": state.kinds[p], "oid": oid} for p, oid in entry.deps.items()},
            outs=outs, metrics=metrics, params=entry.params, env=env.doc(),
            checks=[{"path": v.path, "check": v.check, "rule": v.rule, "status": v.status, "message": v.message}
                    for v in verdicts],
        )
        write_record(project, record)
        write_lock_entry(project, stage.name, entry)
    return record


def _user() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"


def write_record(project: Project, record: RunRecord) -> None:
    """Write a run record under .vtool/runs/, never through a symlinked folder."""
    path = project.root / runs.relative_path(record.stage, record.key)
    make_dirs_inside(project.root, path.parent)
    atomic_write(path, runs.dumps(record))


def write_lock_entry(project: Project, name: str, entry: LockEntry) -> None:
    """Replace one stage's entry in vtool.lock (under the repo lock, so concurrent runs never drop one)."""
    entries = lockfile.read(project.root)
    entries[name] = entry
    data = lockfile.dumps(entries)
    path = project.root / lockfile.LOCK_FILE
    check_real_folder(project.root, path)
    if not path.exists() or path.read_bytes() != data:
        atomic_write(path, data)


def restore(root: Path, stage: Stage, state: StageState, earlier: RunRecord, progress: Progress) -> bool:
    """Restore an earlier run's outputs from the cache (or the remote) instead of running; False if not possible."""
    with open_project(progress, start=root) as project:
        cache = project.cache
        if not all(cache.has(oid) for oid in earlier.metrics.values()):
            return False
        if set(earlier.outs) != set(stage.outs) or set(earlier.metrics) != set(stage.metrics):
            return False
        for path, out in earlier.outs.items():
            current = state.entry.outs.get(path)
            if current not in (None, out.oid) and not cache.has(current):
                return False  # the workspace holds an output the cache does not: running is the safe choice
        tracked = [Tracked(Dataset(p + POINTER_SUFFIX, p), _pointer(p, o)) for p, o in earlier.outs.items()]
        try:
            ensure_local(project, tracked)
        except (MissingObjectsError, TransferError, RemoteError, CacheError):
            return False
        for item in tracked:
            _write_pointer(project, item)
        update_workspace(project, tracked)
        for path, oid in earlier.metrics.items():
            atomic_write(root / path, cache.read_bytes(oid))
        outs = {p: o.oid for p, o in earlier.outs.items()}
        write_lock_entry(project, stage.name, replace(state.entry, outs=outs, metrics=dict(earlier.metrics)))
    return True


def _pointer(path: str, out: Output) -> Pointer:
    return Pointer(path.rsplit("/", 1)[-1], out.kind, out.oid, out.size, out.files)


def _write_pointer(project: Project, item: Tracked) -> None:
    """Write a restored output's pointer (keeping the notes of the one it replaces) and its ignore rule."""
    path = project.root / item.ds.pointer_rel
    check_real_folder(project.root, path)
    pointer = item.pointer
    if path.is_file():
        old = ptr.loads(path.read_bytes(), path.name)
        pointer = replace(pointer, meta=old.meta, extra=old.extra)
    make_dirs_inside(project.root, path.parent)
    atomic_write(path, ptr.dumps(pointer))
    ensure_ignored(path.parent, item.ds.name)
