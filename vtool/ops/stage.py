"""`vtool stage add` and `vtool stage list`: declare stages in vtool.yaml and see whether each is up to date."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vtool.errors import UsageError
from vtool.fsutil import atomic_write, check_real_folder
from vtool.ops.project import open_project, project_root
from vtool.ops.stagestate import state_of, tracked_data
from vtool.pipeline import dag, lockfile
from vtool.pipeline import env as envmod
from vtool.pipeline import stages as stagefile
from vtool.pipeline.stages import DEFAULT_ENV, DEFAULT_WDIR, STAGES_KEY, PipelineError, Stage
from vtool.progress import NULL_PROGRESS, Progress

SPEC_PREFIX = re.compile(r"^stage( line [0-9]+)?: ")


@dataclass(frozen=True)
class StageSpec:
    """A stage as given on the command line."""

    name: str
    cmd: str
    deps: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    wdir: str = DEFAULT_WDIR


@dataclass(frozen=True)
class StageAdded:
    """The stage as written, and whether it replaced one of the same name."""

    stage: str
    replaced: bool
    file: str


@dataclass(frozen=True)
class StageInfo:
    """One stage, its declared paths, and whether it is up to date (with the reasons when not)."""

    name: str
    cmd: str
    deps: list[str]
    outs: list[str]
    metrics: list[str]
    up_to_date: bool
    reasons: list[str]


@dataclass(frozen=True)
class StageListResult:
    """Every stage in dependency order."""

    stages: list[StageInfo]


def stage_add(spec: StageSpec) -> StageAdded:
    """Add or replace a stage, refusing bad paths, cycles and outputs another stage writes."""
    root = project_root()
    with open_project(start=root):
        current = stagefile.read(root)
        body: dict[str, object] = {"cmd": spec.cmd, "deps": spec.deps, "outs": spec.outs, "metrics": spec.metrics,
                                   "params": spec.params, "env": spec.env or list(DEFAULT_ENV), "wdir": spec.wdir}
        raw = {**(current.doc.get(STAGES_KEY) or {}), spec.name: body}
        try:
            candidate = stagefile.parse(stagefile.dumps(stagefile.StageFile({}, {**current.doc, STAGES_KEY: raw})),
                                        "stage")
        except PipelineError as exc:
            raise UsageError(SPEC_PREFIX.sub("", exc.message), exc.hint) from None
        stage: Stage = candidate.stages[spec.name]
        dag.check(candidate.stages, UsageError)
        updated = stagefile.with_stage(current, stage)
        path = root / stagefile.STAGE_FILE
        check_real_folder(root, path)
        atomic_write(path, stagefile.dumps(updated))
    return StageAdded(spec.name, spec.name in current.stages, stagefile.STAGE_FILE)


def stage_list(progress: Progress = NULL_PROGRESS) -> StageListResult:
    """List the stages parents first, each with whether it would run and why."""
    root = project_root()
    defined = stagefile.read(root).stages
    dag.check(defined)
    env = envmod.fingerprint(root)
    entries = lockfile.read(root)
    out = []
    with open_project(progress, start=root) as project:
        tracked = tracked_data(project)
        for name in dag.order(defined):
            stage = defined[name]
            state = state_of(project, stage, entries.get(name), env, tracked)
            out.append(StageInfo(name, stage.cmd, list(stage.deps), list(stage.outs), list(stage.metrics),
                                 not state.stale, state.reasons))
    return StageListResult(out)
