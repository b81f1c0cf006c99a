"""The stage file `vtool.yaml`: strict parsing with line numbers, validation, and the bytes `stage add` writes."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vtool import safeyaml
from vtool.errors import FormatError

STAGE_FILE = "vtool.yaml"
STAGES_KEY = "stages"
CHECKS_KEY = "checks"
TOP_KEYS = (STAGES_KEY, CHECKS_KEY)
STAGE_KEYS = ("cmd", "deps", "outs", "metrics", "params", "env", "wdir")
LIST_KEYS = ("deps", "outs", "metrics", "params", "env")
ENV_COMPONENTS = ("python", "platform", "packages", "lockfile", "image")
DEFAULT_ENV = ("python", "packages")
DEFAULT_PARAMS_FILE = "params.yaml"
DEFAULT_WDIR = "."
MAX_STAGE_FILE_BYTES = 1024 * 1024
STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PARAM_KEY = re.compile(r"^[^\s,:]+$")
RESERVED_TOP = (".git", ".vtool")


class PipelineError(FormatError):
    """vtool.yaml is malformed, or describes a pipeline that cannot run (a cycle, one output written twice)."""


@dataclass(frozen=True)
class ParamRef:
    """Keys (dotted paths) read from one YAML/JSON params file."""

    file: str
    keys: tuple[str, ...]

    @property
    def text(self) -> str:
        """Return the `FILE:KEY,KEY` form used in vtool.yaml and on the command line."""
        return f"{self.file}:{','.join(self.keys)}"


@dataclass(frozen=True)
class Stage:
    """One stage as declared: command, dependencies, outputs, params, tracked environment, working folder."""

    name: str
    cmd: str
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    params: tuple[ParamRef, ...] = ()
    env: tuple[str, ...] = DEFAULT_ENV
    wdir: str = DEFAULT_WDIR

    @property
    def produced(self) -> tuple[str, ...]:
        """Return every path the stage writes: cached outputs and git-kept metrics."""
        return self.outs + self.metrics


@dataclass(frozen=True)
class StageFile:
    """The parsed vtool.yaml: its stages in file order, and the whole document (checks included) for rewriting."""

    stages: dict[str, Stage]
    doc: dict[str, Any] = field(default_factory=dict)


def read(root: Path) -> StageFile:
    """Load `vtool.yaml` at the repo root; an absent file declares no stages."""
    path = root / STAGE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return StageFile({})
    return parse(data)


def parse(data: bytes, where: str = STAGE_FILE) -> StageFile:
    """Decode vtool.yaml, refusing unknown keys and bad values with the line they are on."""
    if len(data) > MAX_STAGE_FILE_BYTES:
        raise PipelineError(f"{where}: over the {MAX_STAGE_FILE_BYTES} byte limit")
    try:
        doc, lines = safeyaml.load_with_lines(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PipelineError(f"{where}: not valid YAML ({safeyaml.describe(exc)})") from None
    doc = {} if doc is None else doc
    fail = _Failer(where, lines)
    if not isinstance(doc, dict):
        fail((), "expected a mapping with the keys stages: and checks:")
    for key in doc:
        if key not in TOP_KEYS:
            fail((key,), f"unknown top-level key {key!r}", f"vtool.yaml knows only {' and '.join(TOP_KEYS)}")
    raw = doc.get(STAGES_KEY) or {}
    if not isinstance(raw, dict):
        fail((STAGES_KEY,), "stages must be a mapping of stage names to stages")
    stages = {str(name): _stage(name, body, fail) for name, body in raw.items()}
    return StageFile(stages, doc)


class _Failer:
    """Raise PipelineError naming the file and the line of a key path."""

    def __init__(self, where: str, lines: safeyaml.Lines) -> None:
        self.where = where
        self.lines = lines

    def __call__(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        at = f" line {safeyaml.line_of(self.lines, path)}" if self.lines else ""
        raise PipelineError(f"{self.where}{at}: {message}", hint)


def _stage(name: Any, body: Any, fail: _Failer) -> Stage:
    here = (STAGES_KEY, name)
    if not isinstance(name, str) or not STAGE_NAME.match(name):
        fail(here, f"invalid stage name {str(name)[:40]!r}", "use letters, digits, '_', '-' and '.'")
    if not isinstance(body, dict):
        fail(here, f"stage {name}: expected a mapping with cmd:, deps:, outs:...")
    for key in body:
        if key not in STAGE_KEYS:
            fail((*here, key), f"stage {name}: unknown key {key!r}", f"known keys: {', '.join(STAGE_KEYS)}")
    cmd = body.get("cmd")
    if not isinstance(cmd, str) or not cmd.strip():
        fail((*here, "cmd"), f"stage {name}: cmd must be a non-empty command line")
    lists = {key: _strings(body.get(key), (*here, key), f"stage {name}: {key}", fail) for key in LIST_KEYS}
    deps = tuple(clean_path(p, f"stage {name}: dep", fail, (*here, "deps")) for p in lists["deps"])
    outs = tuple(clean_path(p, f"stage {name}: out", fail, (*here, "outs")) for p in lists["outs"])
    metrics = tuple(clean_path(p, f"stage {name}: metric", fail, (*here, "metrics")) for p in lists["metrics"])
    params = tuple(parse_param(p, f"stage {name}: param", fail, (*here, "params")) for p in lists["params"])
    env = tuple(lists["env"]) if "env" in body else DEFAULT_ENV
    for component in env:
        if component not in ENV_COMPONENTS:
            fail((*here, "env"), f"stage {name}: unknown environment component {component!r}",
                 f"use any of {', '.join(ENV_COMPONENTS)}")
    wdir = body.get("wdir", DEFAULT_WDIR)
    if not isinstance(wdir, str):
        fail((*here, "wdir"), f"stage {name}: wdir must be a folder path")
    wdir = DEFAULT_WDIR if wdir in ("", DEFAULT_WDIR) else clean_path(wdir, f"stage {name}: wdir", fail,
                                                                      (*here, "wdir"))
    _no_repeats(name, deps + outs + metrics, fail, here)
    return Stage(name, cmd.strip(), deps, outs, metrics, params, tuple(dict.fromkeys(env)), wdir)


def _strings(value: Any, path: tuple[Any, ...], what: str, fail: _Failer) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(path, f"{what} must be a list of strings")
    return list(value)


def _no_repeats(name: str, paths: tuple[str, ...], fail: _Failer, here: tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for p in paths:
        if p in seen:
            fail(here, f"stage {name}: {p} is listed twice among its deps, outs and metrics")
        seen.add(p)


def clean_path(text: str, what: str, fail: _Failer | None = None, where: tuple[Any, ...] = ()) -> str:
    """Normalise a repo-relative path, refusing absolute ones, `..` and anything in .git/ or .vtool/."""
    fail = fail or _Failer(STAGE_FILE, {})
    norm = posixpath.normpath(text.strip().replace("\\", "/")) if text.strip() else ""
    if not norm or norm == ".":
        fail(where, f"{what}: empty path")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        fail(where, f"{what}: {text!r} must be relative to the repository root")
    if norm == ".." or norm.startswith("../"):
        fail(where, f"{what}: {text!r} is outside the repository")
    if norm.split("/", 1)[0].lower() in RESERVED_TOP:
        fail(where, f"{what}: {text!r} is inside {norm.split('/', 1)[0]}/, which vtool never touches")
    return norm


def parse_param(text: str, what: str, fail: _Failer | None = None, where: tuple[Any, ...] = ()) -> ParamRef:
    """Read `FILE:KEY,KEY` (or just `KEY,KEY` from params.yaml) into a ParamRef."""
    fail = fail or _Failer(STAGE_FILE, {})
    file, sep, keys = text.rpartition(":")
    if not sep:
        file, keys = DEFAULT_PARAMS_FILE, text
    names = tuple(k.strip() for k in keys.split(","))
    if not all(PARAM_KEY.match(k) for k in names):
        fail(where, f"{what}: {text!r} is not FILE:KEY[,KEY...]", "e.g. params.yaml:train.lr,train.epochs")
    return ParamRef(clean_path(file, what, fail, where), names)


def stage_doc(stage: Stage) -> dict[str, Any]:
    """Return the mapping vtool.yaml holds for a stage, leaving out what is at its default."""
    doc: dict[str, Any] = {"cmd": stage.cmd}
    for key, values in (("deps", stage.deps), ("outs", stage.outs), ("metrics", stage.metrics),
                        ("params", tuple(p.text for p in stage.params))):
        if values:
            doc[key] = list(values)
    if stage.env != DEFAULT_ENV:
        doc["env"] = list(stage.env)
    if stage.wdir != DEFAULT_WDIR:
        doc["wdir"] = stage.wdir
    return doc


def with_stage(current: StageFile, stage: Stage) -> StageFile:
    """Return the stage file with a stage added or replaced in place, every other key (checks:) kept."""
    stages = {**current.stages, stage.name: stage}
    raw = dict(current.doc.get(STAGES_KEY) or {})
    raw[stage.name] = stage_doc(stage)
    return StageFile(stages, {**current.doc, STAGES_KEY: raw})


def dumps(stage_file: StageFile) -> bytes:
    """Encode vtool.yaml: stages first, then checks, in block style."""
    ordered = {key: stage_file.doc[key] for key in TOP_KEYS if key in stage_file.doc}
    text = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)
    return text.encode("utf-8")
