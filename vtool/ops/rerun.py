"""`check-repro --rerun`: rebuild outputs in a temporary worktree at a revision and compare them bit for bit."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vtool import config as cfg
from vtool.errors import FormatError
from vtool.fsutil import make_dirs_inside
from vtool.gitrepo import add_worktree, remove_worktree
from vtool.hashing import Oid
from vtool.ops.pipesource import PipelineAt
from vtool.pipeline import lockfile

TMP_DIR = "tmp"
RECORDED, RERUN = "recorded", "rerun"


@dataclass(frozen=True)
class Rerun:
    """Whether re-running gave bitwise identical outputs, per output, or why it could not run."""

    identical: bool
    outputs: dict[str, dict[str, Oid | None]] = field(default_factory=dict)
    error: str | None = None

    def only(self, output: str) -> Rerun:
        """Narrow the comparison to one output."""
        mine = {output: self.outputs[output]} if output in self.outputs else {}
        same = self.error is None and all(v[RECORDED] == v[RERUN] for v in mine.values())
        return Rerun(same, mine, self.error)


class _Failed(Exception):
    pass


def rerun_at(root: Path, pipe: PipelineAt, stages: list[str], outputs: list[str]) -> Rerun:
    """Check REV out in a worktree sharing this cache, restore its data, run the stages forced, compare, clean up."""
    recorded = {o: e.produced[o] for e in pipe.lock.values() for o in outputs if o in e.produced}
    tmp = root / cfg.VTOOL_DIR / TMP_DIR
    make_dirs_inside(root, tmp)
    folder = tmp / f"rerun-{secrets.token_hex(4)}"
    add_worktree(root, folder, pipe.commit or "HEAD")
    try:
        _share_cache(root, folder)
        _vtool(folder, "pull" if cfg.load(root).remotes else "checkout")
        _vtool(folder, "repro", "--force", "--no-run-cache", *stages)
        again = {o: oid for e in lockfile.read(folder).values() for o, oid in e.produced.items()}
    except (_Failed, FormatError) as exc:
        return Rerun(False, {o: {RECORDED: oid, RERUN: None} for o, oid in recorded.items()}, str(exc))
    finally:
        remove_worktree(root, folder)
    compared = {o: {RECORDED: oid, RERUN: again.get(o)} for o, oid in recorded.items()}
    return Rerun(all(v[RECORDED] == v[RERUN] for v in compared.values()), compared)


def _share_cache(root: Path, folder: Path) -> None:
    """Point the worktree at this project's cache (and remote secrets) through its ignored local config."""
    _, local = cfg.config_paths(root)
    doc = cfg.read_doc(local)
    doc["cache"] = {**(doc.get("cache") or {}), "dir": str(cfg.load(root).cache_dir)}
    make_dirs_inside(folder, folder / cfg.VTOOL_DIR)
    cfg.write_doc(cfg.config_paths(folder)[1], doc)


def _vtool(folder: Path, *args: str) -> None:
    """Run vtool in the worktree; its last error line becomes the reason when it fails."""
    proc = subprocess.run([sys.executable, "-m", "vtool", *args, "-q"], cwd=folder, capture_output=True, text=True,
                          check=False, env=os.environ.copy())
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")] or [f"exit {proc.returncode}"]
        raise _Failed(f"vtool {args[0]} in the worktree failed: {lines[-1].removeprefix('error: ')}")
