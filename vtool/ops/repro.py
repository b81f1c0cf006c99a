"""`vtool repro`: run stale stages in dependency order, add their outputs, write the lock and a run record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vtool.errors import UsageError
from vtool.ops.project import open_project, project_root
from vtool.ops.runstage import StageFailedError, pipeline_files, record_run, restore, run_command
from vtool.ops.stagestate import StageState, state_of, tracked_data
from vtool.pipeline import dag, lockfile, runs
from vtool.pipeline import env as envmod
from vtool.pipeline import stages as stagefile
from vtool.pipeline.stages import Stage
from vtool.progress import NULL_PROGRESS, Progress

RAN, RESTORED, UP_TO_DATE, WOULD_RUN = "ran", "restored", "up to date", "would run"

__all__ = ["ReproOptions", "ReproResult", "StageFailedError", "StageRun", "repro"]


@dataclass(frozen=True)
class ReproOptions:
    """Which stages, and how: dry run, forced, with downstream stages, with or without the run cache."""

    stages: list[str] = field(default_factory=list)
    dry: bool = False
    force: bool = False
    downstream: bool = False
    run_cache: bool = True
    image: str | None = None


@dataclass(frozen=True)
class StageRun:
    """What repro did with one stage and why."""

    stage: str
    action: str
    reasons: list[str]
    outs: dict[str, str] = field(default_factory=dict)
    record: str | None = None
    git_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReproResult:
    """Every selected stage in the order it was considered."""

    stages: list[StageRun]

    @property
    def git_paths(self) -> list[str]:
        """List the files a run changed that belong in git: the lock, run records, output pointers, metrics."""
        paths: set[str] = set()
        for run in self.stages:
            if run.action in (RAN, RESTORED):
                paths.update([lockfile.LOCK_FILE, *([run.record] if run.record else []), *run.git_files])
        return sorted(paths)


def selection(stages: dict[str, Stage], names: list[str], downstream: bool) -> list[str]:
    """Order the stages to consider: all, or the named ones with what they need (or, downstream, what needs them)."""
    unknown = [n for n in names if n not in stages]
    if unknown:
        known = ", ".join(stages) or "none (vtool stage add NAME ... -- CMD)"
        raise UsageError(f"unknown stage {unknown[0]!r}", f"stages: {known}")
    ordered = dag.order(stages)
    if not names:
        return ordered
    chosen = dag.descendants(stages, names) if downstream else dag.ancestors(stages, names)
    return [n for n in ordered if n in chosen]


def repro(options: ReproOptions, progress: Progress = NULL_PROGRESS) -> ReproResult:
    """Bring the selected stages up to date, parents first; the first failing command stops the run."""
    root = project_root()
    defined = stagefile.read(root).stages
    dag.check(defined)
    env = envmod.fingerprint(root, options.image)
    parents = dag.upstream(defined)
    written = pipeline_files(list(defined.values()))
    chosen = selection(defined, options.stages, options.downstream)
    # A dry run changes nothing, so every state comes from one look at the project; a real run looks
    # again before each stage, since the stages before it changed the workspace.
    planned = _states(root, [defined[n] for n in chosen], env, progress) if options.dry else {}
    done: list[StageRun] = []
    pending: set[str] = set()
    for name in chosen:
        stage = defined[name]
        state = planned.get(name) or _states(root, [stage], env, progress)[name]
        reasons = ["forced"] if options.force else state.reasons
        if not reasons and options.dry:
            reasons = [f"after {p} runs" for p in parents[name] if p in pending]
        if not reasons:
            done.append(StageRun(name, UP_TO_DATE, []))
        elif options.dry:
            pending.add(name)
            done.append(StageRun(name, WOULD_RUN, reasons))
        else:
            done.append(_bring_up_to_date(root, stage, state, env, reasons, options, written, progress))
    return ReproResult(done)


def _states(root: Path, stages: list[Stage], env: envmod.Environment, progress: Progress) -> dict[str, StageState]:
    """Hash the stages' inputs and outputs now, with one project, one lock read and one pointer listing."""
    with open_project(progress, start=root) as project:
        entries, tracked = lockfile.read(root), tracked_data(project)
        return {s.name: state_of(project, s, entries.get(s.name), env, tracked) for s in stages}


def _bring_up_to_date(root: Path, stage: Stage, state: StageState, env: envmod.Environment, reasons: list[str],
                      options: ReproOptions, written: set[str], progress: Progress) -> StageRun:
    key = state.key
    earlier = runs.find(root, stage.name, key) if options.run_cache and not options.force else None
    if earlier is not None and restore(root, stage, state, earlier, progress):
        progress.message(f"stage {stage.name}: restored from the run cache ({', '.join(reasons)})")
        return StageRun(stage.name, RESTORED, reasons, {p: o.oid for p, o in earlier.outs.items()},
                        runs.relative_path(stage.name, key), _git_files(stage))
    progress.message(f"stage {stage.name}: running ({', '.join(reasons)}): {stage.cmd}")
    started = run_command(root, stage, state, written)
    record = record_run(root, stage, state, env, started, progress)
    return StageRun(stage.name, RAN, reasons, {p: o.oid for p, o in record.outs.items()},
                    runs.relative_path(stage.name, key), _git_files(stage))


def _git_files(stage: Stage) -> list[str]:
    """Name the pointers, ignore files and metrics a run of the stage writes."""
    return sorted(pipeline_files([stage]) - {lockfile.LOCK_FILE})
