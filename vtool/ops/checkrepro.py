"""`vtool check-repro`: R(m) = data · code · environment for each output at a revision, each factor with its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from vtool import pointer as ptr
from vtool import transfer
from vtool.errors import FormatError, UsageError
from vtool.gitrepo import files_at, tags
from vtool.hashing import Oid, hash_bytes
from vtool.ops.lineage import output_path, pointer_problems
from vtool.ops.objects import Tracked
from vtool.ops.pipesource import PipelineAt, pipeline_at
from vtool.ops.project import Dataset, Project, open_project, project_root
from vtool.ops.rerun import Rerun, rerun_at
from vtool.ops.stagestate import folder_oid, lookup, parse_params
from vtool.ops.sync import connected, fetch_manifests, tally
from vtool.pipeline import env as envmod
from vtool.pipeline.dag import overlaps
from vtool.pipeline.graph import DATA, ancestor_stages, short
from vtool.pipeline.lockfile import LockEntry
from vtool.pointer import POINTER_SUFFIX, Kind
from vtool.progress import NULL_PROGRESS, Progress
from vtool.transfer import Obj

SHOWN_PACKAGES = 3


@dataclass(frozen=True)
class CheckReproOptions:
    """Which outputs, at which revisions (default HEAD; or every tag), and whether to re-run them."""

    targets: list[str] = field(default_factory=list)
    revs: list[str] = field(default_factory=list)
    all_tags: bool = False
    rerun: bool = False


@dataclass(frozen=True)
class Factor:
    """One factor of R(m): holds or not, and why not."""

    ok: bool
    reasons: list[str]


@dataclass(frozen=True)
class Verdict:
    """R(m) for one output at one revision, with each factor, and the re-run's bitwise comparison when asked."""

    rev: str
    commit: str
    output: str
    stage: str
    oid: Oid | None
    data: Factor
    code: Factor
    env: Factor
    reproducible: bool
    rerun: Rerun | None = None


@dataclass(frozen=True)
class CheckReproResult:
    """Every verdict, revision by revision."""

    verdicts: list[Verdict]
    reproducible: bool


def check_repro(options: CheckReproOptions, progress: Progress = NULL_PROGRESS) -> CheckReproResult:
    """Judge R(m) for the selected outputs at each revision; --rerun also rebuilds them in a temporary worktree."""
    root = project_root()
    revs = [name for name, _ in tags(root)] if options.all_tags else list(options.revs) or ["HEAD"]
    if not revs:
        raise UsageError("the repository has no tags", "tag a release (git tag v1) or name revisions with --rev")
    env = envmod.fingerprint(root)
    verdicts: list[Verdict] = []
    for rev in revs:
        pipe = pipeline_at(root, rev)
        outputs = _outputs(root, pipe, options.targets)
        with open_project(progress, start=root) as project:
            judged = [_judge(project, pipe, out, stage, env) for out, stage in outputs]
        if options.rerun and judged:
            stages = sorted({v.stage for v in judged if v.stage in pipe.lock})
            rerun = rerun_at(root, pipe, stages, [v.output for v in judged])
            judged = [replace(v, rerun=rerun.only(v.output)) for v in judged]
        verdicts += judged
    return CheckReproResult(verdicts, all(v.reproducible for v in verdicts))


def _outputs(root: Path, pipe: PipelineAt, targets: list[str]) -> list[tuple[str, str]]:
    """Pair each output to judge with its stage: the named ones, or every declared output."""
    declared = {p: s.name for s in pipe.stages.values() for p in s.produced}
    declared.update({p: name for name, e in pipe.lock.items() for p in e.produced if p not in declared})
    if not targets:
        return sorted(declared.items())
    chosen = []
    for target in targets:
        path = output_path(root, target)
        if path not in declared:
            raise UsageError(f"{path}: not an output of any stage at {pipe.rev}", "see: vtool stage list")
        chosen.append((path, declared[path]))
    return chosen


def _judge(project: Project, pipe: PipelineAt, output: str, stage: str, env: envmod.Environment) -> Verdict:
    names = ancestor_stages(pipe.stages, pipe.lock, stage) or [stage]
    entries = {n: pipe.lock[n] for n in names if n in pipe.lock}
    data = [f"stage {n} has no entry in vtool.lock at {pipe.rev}" for n in names if n not in entries]
    data += _consistent(pipe, entries) + _retrievable(project, pipe, entries)
    code = [r for n, e in entries.items() for r in _code(pipe, n, e)]
    envs = [r for n, e in entries.items() for r in _environment(pipe, n, e, env)]
    oid = entries[stage].produced.get(output) if stage in entries else None
    return Verdict(pipe.rev or "HEAD", pipe.commit or "", output, stage, oid, Factor(not data, data),
                   Factor(not code, code), Factor(not envs, envs), not (data or code or envs))


def _producers(entries: dict[str, LockEntry]) -> dict[str, tuple[str, Oid]]:
    return {path: (name, oid) for name, e in entries.items() for path, oid in e.produced.items()}


def _source_pointer(pipe: PipelineAt, path: str) -> ptr.Pointer | None:
    data = pipe.read(path + POINTER_SUFFIX)
    if data is None:
        return None
    try:
        return ptr.loads(data, path.rsplit("/", 1)[-1] + POINTER_SUFFIX)
    except FormatError:
        return None


def _consistent(pipe: PipelineAt, entries: dict[str, LockEntry]) -> list[str]:
    """Every input version a stage used is what its producer recorded, or what REV's pointer names."""
    made = _producers(entries)
    reasons = []
    for name, entry in entries.items():
        for dep, oid in entry.deps.items():
            if dep not in made and any(overlaps(dep, p) for p in made):
                continue  # a file inside another stage's output: that output's own version is judged
            if dep in made:
                if made[dep][1] != oid:
                    reasons.append(f"{name} used {dep} {short(oid)}, but {made[dep][0]} recorded {short(made[dep][1])}")
                continue
            pointer = _source_pointer(pipe, dep)
            if pointer is not None and pointer.oid != oid:
                reasons.append(f"{dep} is {short(pointer.oid)} at {pipe.rev}, but {name} used {short(oid)}")
        reasons += pointer_problems(pipe, entry)
    return reasons


def _retrievable(project: Project, pipe: PipelineAt, entries: dict[str, LockEntry]) -> list[str]:
    """Every object of every data version used or made is in the cache or on the default remote."""
    paths = sorted({p for e in entries.values() for p in [*e.deps, *e.outs]})
    tracked = [Tracked(Dataset(p + POINTER_SUFFIX, p), pointer, pipe.rev)
               for p in paths if (pointer := _source_pointer(pipe, p)) is not None]
    counted = tally(project, tracked)
    lacking = counted.missing + len(counted.unreadable)
    if not lacking:
        return []
    if not project.config.remotes:
        return [f"{lacking} object(s) missing from the cache, and no remote is configured"]
    with connected(project, None, None) as (remote, jobs):
        if counted.unreadable:  # learn the trees from the remote's own manifests, then judge the files
            fetch_manifests(project, remote, jobs, [t.pointer.oid for t in tracked if t.pointer.kind == Kind.DIR])
        counted = tally(project, tracked, remote, jobs)
        unknown = [Obj(oid, None) for oid in counted.unreadable]  # still unreadable: the remote may hold them
        absent = counted.missing + len(unknown) - (len(transfer.remote_has(remote, unknown, jobs)) if unknown else 0)
        name = remote.name
    return [f"{absent} object(s) missing on {name}"] if absent else []


def _content_oid(pipe: PipelineAt, path: str) -> Oid | None:
    """Hash a code path as committed at REV: a file's bytes, or a folder's listing."""
    data = pipe.read(path)
    if data is not None:
        return hash_bytes(data)
    files = files_at(pipe.root, pipe.commit or "HEAD", path)
    if not files:
        return None
    return folder_oid({p[len(path) + 1:]: hash_bytes(b) for p, b in files.items()})


def _code(pipe: PipelineAt, name: str, entry: LockEntry) -> list[str]:
    """The recorded code, command and params equal REV's, and so does every uncommitted file the run saw."""
    reasons = []
    stage = pipe.stages.get(name)
    if stage is None:
        reasons.append(f"{name}: the stage is not in vtool.yaml at {pipe.rev}")
    elif (stage.cmd, stage.wdir) != (entry.cmd, entry.wdir):
        reasons.append(f"{name}: the command at {pipe.rev} is not the one that ran")
    record = pipe.record(name)
    made = _producers(pipe.lock)
    for dep, oid in entry.deps.items():
        kind = record.deps.get(dep, {}).get("kind") if record else None
        if kind == DATA or any(overlaps(dep, p) for p in made) or _source_pointer(pipe, dep) is not None:
            continue
        now = _content_oid(pipe, dep)
        if now != oid:
            reasons.append(f"{name}: {dep} {'is not committed' if now is None else 'changed'} at {pipe.rev}")
    reasons += _params(pipe, name, entry)
    if record is None:
        reasons.append(f"{name}: no run record at {pipe.rev}, so what the run saw uncommitted is unknown")
        return reasons
    for path, oid in sorted(record.uncommitted.items()):
        if _content_oid(pipe, path) != oid:
            reasons.append(f"{name}: the run saw uncommitted {path}, which differs at {pipe.rev}")
    return reasons


def _params(pipe: PipelineAt, name: str, entry: LockEntry) -> list[str]:
    reasons = []
    for file, keys in entry.params.items():
        data = pipe.read(file)
        if data is None:
            reasons.append(f"{name}: params file {file} is not committed at {pipe.rev}")
            continue
        doc = parse_params(data, file)
        for key, value in keys.items():
            try:
                now = lookup(doc, key, file)
            except FormatError:
                now = None
            if now != value:
                reasons.append(f"{name}: param {file}:{key} is {now!r} at {pipe.rev}, the run used {value!r}")
    return reasons


def _environment(pipe: PipelineAt, name: str, entry: LockEntry, env: envmod.Environment) -> list[str]:
    """The recorded fingerprint equals the current one on the stage's tracked components."""
    current = env.components()
    reasons = []
    for component, value in sorted(entry.env.items()):
        if current.get(component) == value:
            continue
        if component == "packages":
            record = pipe.record(name)
            before = record.env.get("packages", []) if record else []
            reasons.append(f"{name}: packages " + (package_changes(before, list(env.packages)) or "changed"))
        elif component in ("python", "platform", "image"):
            reasons.append(f"{name}: {component} {value} -> {current.get(component)}")
        else:
            reasons.append(f"{name}: {component} changed")
    return reasons


def package_changes(before: list[str], after: list[str]) -> str:
    """Describe how two `name==version` lists differ: `numpy 1.26.4 -> 2.0.0, +torch 2.3.0, -six 1.16.0`."""
    old = dict(p.split("==", 1) for p in before if "==" in p)
    new = dict(p.split("==", 1) for p in after if "==" in p)
    changes = [f"{n} {old[n]} -> {new[n]}" for n in sorted(old) if n in new and old[n] != new[n]]
    changes += [f"+{n} {new[n]}" for n in sorted(set(new) - set(old))]
    changes += [f"-{n} {old[n]}" for n in sorted(set(old) - set(new))]
    shown = ", ".join(changes[:SHOWN_PACKAGES])
    return shown + (f" and {len(changes) - SHOWN_PACKAGES} more" if len(changes) > SHOWN_PACKAGES else "")
