"""The lineage graph of one output: the runs of its ancestor stages and the artifacts (by hash) they used and made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vtool.hashing import OID_PREFIX, Oid
from vtool.pipeline import dag
from vtool.pipeline.lockfile import LockEntry
from vtool.pipeline.runs import RunRecord
from vtool.pipeline.stages import Stage

DATA, CODE, METRIC = "data", "code", "metric"
SHORT_HEX = 4


@dataclass(frozen=True)
class Artifact:
    """A versioned thing a run used or generated: a dataset, a code file or a metric, by hash."""

    path: str
    oid: Oid
    kind: str
    producer: str | None = None


@dataclass(frozen=True)
class RunNode:
    """One stage's recorded run: what it used and generated, and who ran it where (when its record is known)."""

    stage: str
    key: Oid
    cmd: str
    params: dict[str, dict[str, Any]]
    env: dict[str, str]
    used: list[Artifact]
    generated: list[Artifact]
    commit: str | None = None
    started: str | None = None
    ended: str | None = None
    user: str | None = None
    host: str | None = None
    environment: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Lineage:
    """Anc(m): the runs an output was made from, parents first, and anything that makes the record doubtful."""

    target: str
    oid: Oid | None
    rev: str | None
    commit: str | None
    runs: list[RunNode]
    problems: list[str]


def ancestor_stages(stages: dict[str, Stage], lock: dict[str, LockEntry], producer: str) -> list[str]:
    """Order the producing stage and every stage it needs, parents first (by the lock when vtool.yaml lacks one)."""
    if producer in stages:
        chosen = dag.ancestors(stages, [producer])
        return [name for name in dag.order(stages) if name in chosen]
    return [producer] if producer in lock else []


def run_node(name: str, entry: LockEntry, record: RunRecord | None, lock: dict[str, LockEntry]) -> RunNode:
    """Build a run node from a lock entry, with its run record's who, when and environment when there is one."""
    producers = {path: stage for stage, e in lock.items() for path in e.produced}
    used = []
    for path, oid in sorted(entry.deps.items()):
        recorded = record.deps.get(path, {}).get("kind") if record else None
        kind = recorded or (DATA if path in producers else CODE)
        used.append(Artifact(path, oid, kind, producers.get(path)))
    generated = [Artifact(p, o, DATA, name) for p, o in sorted(entry.outs.items())]
    generated += [Artifact(p, o, METRIC, name) for p, o in sorted(entry.metrics.items())]
    node = RunNode(name, entry.key(), entry.cmd, entry.params, entry.env, used, generated)
    if record is None:
        return node
    return RunNode(name, node.key, node.cmd, node.params, node.env, used, generated, record.commit, record.started,
                   record.ended, record.user, record.host, record.env, record.checks)


def consistency(runs: list[RunNode]) -> list[str]:
    """Say where a stage used another version of a dataset than its producer recorded."""
    made = {a.path: (a.oid, r.stage) for r in runs for a in r.generated}
    problems = []
    for run in runs:
        for a in run.used:
            if a.path in made and made[a.path][0] != a.oid:
                problems.append(f"{run.stage} used {a.path} {short(a.oid)}, but {made[a.path][1]} recorded "
                                f"{short(made[a.path][0])}")
    return problems


def short(oid: Oid | None) -> str:
    """Show an oid as its first hex digits, as in `3f1c… -> 81fe…`."""
    return "missing" if oid is None else oid[len(OID_PREFIX):len(OID_PREFIX) + SHORT_HEX] + "…"
