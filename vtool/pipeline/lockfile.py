"""`vtool.lock`: what each stage last ran with, in canonical bytes (sorted, no times or hosts) so it merges cleanly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtool.hashing import Oid, hash_bytes, parse_oid
from vtool.pipeline.stages import PipelineError

LOCK_FILE = "vtool.lock"
LOCK_VERSION = 1
MAX_LOCK_BYTES = 16 * 1024 * 1024
ENTRY_KEYS = ("cmd", "deps", "env", "metrics", "outs", "params", "wdir")
HASHED_KEYS = ("deps", "metrics", "outs")


@dataclass(frozen=True)
class LockEntry:
    """One stage's last successful run: its definition, the hash of every dep and output, params and environment."""

    cmd: str
    wdir: str
    deps: dict[str, Oid] = field(default_factory=dict)
    outs: dict[str, Oid] = field(default_factory=dict)
    metrics: dict[str, Oid] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def doc(self) -> dict[str, Any]:
        """Return the entry as the JSON mapping the lock stores."""
        return {"cmd": self.cmd, "deps": self.deps, "env": self.env, "metrics": self.metrics,
                "outs": self.outs, "params": self.params, "wdir": self.wdir}

    def key(self, outs: list[str] | None = None, metrics: list[str] | None = None) -> Oid:
        """Hash what decides a run's outputs (definition, dep hashes, params, environment): the run-cache key.

        The output paths declared, not their hashes, take part: pass them when some are not on disk.
        """
        inputs = {"cmd": self.cmd, "deps": self.deps, "env": self.env, "wdir": self.wdir, "params": self.params,
                  "outs": sorted(self.outs if outs is None else outs),
                  "metrics": sorted(self.metrics if metrics is None else metrics)}
        return hash_bytes(canonical_json(inputs))

    @property
    def produced(self) -> dict[str, Oid]:
        """Return outputs and metrics together, by path."""
        return {**self.outs, **self.metrics}


def canonical_json(doc: Any) -> bytes:
    """Encode JSON one way only: sorted keys, two-space indent, UTF-8, a final newline."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, separators=(",", ": ")) + "\n").encode()


def dumps(entries: dict[str, LockEntry]) -> bytes:
    """Encode the lock canonically: one entry per stage, sorted, so runs of different stages merge."""
    return canonical_json({"stages": {name: entries[name].doc() for name in sorted(entries)},
                           "version": LOCK_VERSION})


def loads(data: bytes, where: str = LOCK_FILE) -> dict[str, LockEntry]:
    """Decode and validate a lock; a conflict-marked or hand-broken lock is refused with what to do."""
    if len(data) > MAX_LOCK_BYTES:
        raise PipelineError(f"{where}: over the {MAX_LOCK_BYTES} byte limit")
    if data.startswith(b"<<<<<<<") or b"\n<<<<<<< " in data:
        raise PipelineError(f"{where}: has git merge conflict markers",
                            "resolve them, or check out one side and run: vtool repro")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PipelineError(f"{where}: not valid JSON ({type(exc).__name__})", "run: vtool repro to rewrite it") \
            from None
    if not isinstance(doc, dict) or doc.get("version") != LOCK_VERSION or not isinstance(doc.get("stages"), dict):
        raise PipelineError(f"{where}: not a version {LOCK_VERSION} vtool lock")
    return {str(name): _entry(body, f"{where}: stage {name}") for name, body in doc["stages"].items()}


def _entry(body: Any, where: str) -> LockEntry:
    if not isinstance(body, dict) or sorted(body) != sorted(ENTRY_KEYS):
        raise PipelineError(f"{where}: expected exactly the keys {', '.join(ENTRY_KEYS)}")
    for key in HASHED_KEYS:
        if not isinstance(body[key], dict):
            raise PipelineError(f"{where}: {key} must map paths to oids")
        for path, oid in body[key].items():
            parse_oid(oid, f"{where}: {key} {path}")
    if not isinstance(body["cmd"], str) or not isinstance(body["wdir"], str):
        raise PipelineError(f"{where}: cmd and wdir must be strings")
    if not isinstance(body["params"], dict) or not all(isinstance(v, dict) for v in body["params"].values()):
        raise PipelineError(f"{where}: params must map files to key/value mappings")
    if not isinstance(body["env"], dict) or not all(isinstance(v, str) for v in body["env"].values()):
        raise PipelineError(f"{where}: env must map components to strings")
    return LockEntry(body["cmd"], body["wdir"], body["deps"], body["outs"], body["metrics"], body["params"],
                     body["env"])


def read(root: Path) -> dict[str, LockEntry]:
    """Load vtool.lock at the repo root; absent means no stage has run."""
    try:
        data = (root / LOCK_FILE).read_bytes()
    except FileNotFoundError:
        return {}
    return loads(data)
