"""Run records `.vtool/runs/<stage>/<key>.json`: who ran a stage, when, at which commit, with what, and where."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtool.config import VTOOL_DIR
from vtool.hashing import OID_PREFIX, Oid, parse_oid
from vtool.pipeline.lockfile import canonical_json
from vtool.pipeline.stages import STAGE_NAME, PipelineError

RUNS_DIR = f"{VTOOL_DIR}/runs"
RUN_VERSION = 1
MAX_RUN_BYTES = 4 * 1024 * 1024
RUN_SUFFIX = ".json"


@dataclass(frozen=True)
class Output:
    """An output as its pointer names it, so the run cache can restore it without running."""

    kind: str
    oid: Oid
    size: int
    files: int = 1


@dataclass(frozen=True)
class RunRecord:
    """One successful run of a stage; the run-cache key names the file, so equal inputs share one record."""

    stage: str
    key: Oid
    cmd: str
    wdir: str
    started: str
    ended: str
    exit_code: int
    commit: str | None
    uncommitted: dict[str, Oid | None]
    user: str
    host: str
    vtool: str
    deps: dict[str, dict[str, str]]
    outs: dict[str, Output]
    metrics: dict[str, Oid]
    params: dict[str, dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)


def relative_path(stage: str, key: Oid) -> str:
    """Return the repo-relative path of the record for a stage key."""
    return f"{RUNS_DIR}/{stage}/{key[len(OID_PREFIX):]}{RUN_SUFFIX}"


def dumps(record: RunRecord) -> bytes:
    """Encode a record as canonical JSON."""
    return canonical_json({**dataclasses.asdict(record), "version": RUN_VERSION})


def loads(data: bytes, where: str) -> RunRecord:
    """Decode and check a run record."""
    if len(data) > MAX_RUN_BYTES:
        raise PipelineError(f"{where}: over the {MAX_RUN_BYTES} byte limit")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PipelineError(f"{where}: not a valid run record ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.pop("version", None) != RUN_VERSION:
        raise PipelineError(f"{where}: not a version {RUN_VERSION} run record")
    names = {f.name for f in dataclasses.fields(RunRecord)}
    if not set(doc) <= names or not isinstance(doc.get("outs"), dict) or not STAGE_NAME.match(str(doc.get("stage"))):
        raise PipelineError(f"{where}: unexpected keys or values in a run record")
    try:
        outs = {path: Output(o["kind"], parse_oid(o["oid"], where), int(o["size"]), int(o["files"]))
                for path, o in doc["outs"].items()}
        return RunRecord(**{**doc, "outs": outs, "key": parse_oid(doc["key"], where)})
    except (KeyError, TypeError, ValueError) as exc:
        raise PipelineError(f"{where}: malformed run record ({type(exc).__name__}: {exc})") from None


def find(root: Path, stage: str, key: Oid) -> RunRecord | None:
    """Load the record of an earlier run with this key from the work tree, if there is one."""
    rel = relative_path(stage, key)
    try:
        data = (root / rel).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return loads(data, rel)
