"""The pipeline as the workspace or a commit holds it: stages, lock entries and run records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vtool.gitrepo import file_at, head_commit, resolve
from vtool.hashing import Oid
from vtool.pipeline import lockfile, runs
from vtool.pipeline import stages as stagefile
from vtool.pipeline.lockfile import LockEntry
from vtool.pipeline.runs import RunRecord
from vtool.pipeline.stages import Stage


@dataclass
class PipelineAt:
    """vtool.yaml, vtool.lock and run records at one revision (rev None: the workspace)."""

    root: Path
    rev: str | None
    commit: str | None
    stages: dict[str, Stage]
    lock: dict[str, LockEntry]
    _records: dict[tuple[str, Oid], RunRecord | None] = field(default_factory=dict)

    def read(self, rel: str) -> bytes | None:
        """Return a file's bytes at this revision (None if absent)."""
        if self.rev is None:
            path = self.root / rel
            return path.read_bytes() if path.is_file() else None
        return file_at(self.root, self.commit, rel) if self.commit else None

    def record(self, stage: str) -> RunRecord | None:
        """Return the run record behind a stage's lock entry, if this revision holds it."""
        entry = self.lock.get(stage)
        if entry is None:
            return None
        key = entry.key()
        if (stage, key) not in self._records:
            rel = runs.relative_path(stage, key)
            data = self.read(rel)
            self._records[(stage, key)] = None if data is None else runs.loads(data, rel)
        return self._records[(stage, key)]

    def producer(self, path: str) -> str | None:
        """Name the stage whose lock entry records path as an output or metric."""
        return next((name for name, e in self.lock.items() if path in e.produced), None)


def pipeline_at(root: Path, rev: str | None) -> PipelineAt:
    """Load the pipeline from the workspace (rev None) or from a commit, without checking anything out."""
    if rev is None:
        return PipelineAt(root, None, head_commit(root), stagefile.read(root).stages, lockfile.read(root))
    sha = resolve(root, rev)
    text = file_at(root, sha, stagefile.STAGE_FILE)
    lock = file_at(root, sha, lockfile.LOCK_FILE)
    stages = stagefile.parse(text, f"{rev}:{stagefile.STAGE_FILE}").stages if text is not None else {}
    entries = lockfile.loads(lock, f"{rev}:{lockfile.LOCK_FILE}") if lock is not None else {}
    return PipelineAt(root, rev, sha, stages, entries)
