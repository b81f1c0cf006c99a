"""`scripts/bench lineage`: `vtool repro --dry` and `vtool lineage --down` on 500 commits x 20 stages.

Self-contained: builds once under .bench/lineage/ a git repo with a chain of 20 stages (raw -> s00 -> ... -> s19),
a history of synthetic-but-valid vtool.lock versions (each commit re-runs one stage and everything after it),
and a last commit where `vtool repro` really ran, so the workspace is up to date. Then times each command in a
fresh process: cold (lineage index removed) and warm (the median of the following runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".bench" / "lineage"
COMMITS = 500
STAGES = 20
WARM_RUNS = 5
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _run(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(args, cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def _vtool(root: Path, *args: str) -> float:
    start = time.perf_counter()
    _run(root, sys.executable, "-m", "vtool", *args)
    return time.perf_counter() - start


def _stage_name(i: int) -> str:
    return f"s{i:02d}"


def _stage_file(stages: int) -> str:
    lines = ["stages:"]
    for i in range(stages):
        src = "data/raw" if i == 0 else f"data/{_stage_name(i - 1)}"
        out = f"data/{_stage_name(i)}"
        lines += [f"  {_stage_name(i)}:", f"    cmd: mkdir -p {out} && cp {src}/x.txt {out}/x.txt",
                  f"    deps: [{src}]", f"    outs: [{out}]"]
    return "\n".join(lines) + "\n"


def _synthetic_lock(commit: int, stages: int) -> bytes:
    """A valid lock in which commit n re-ran stage n % stages and every stage after it."""
    from vtool.hashing import hash_bytes
    from vtool.pipeline.env import fingerprint
    from vtool.pipeline.lockfile import LockEntry, dumps

    env = {k: v for k, v in fingerprint(WORK).components().items() if k in ("python", "packages")}
    entries = {}
    upstream = hash_bytes(f"raw {commit // stages}".encode())
    for i in range(stages):
        version = commit if i >= commit % stages else commit - (commit % stages - i)
        out = hash_bytes(f"{_stage_name(i)} {version}".encode())
        src = "data/raw" if i == 0 else f"data/{_stage_name(i - 1)}"
        entries[_stage_name(i)] = LockEntry(f"run {i}", ".", {src: upstream}, {f"data/{_stage_name(i)}": out},
                                            env=env)
        upstream = out
    return dumps(entries)


def build(root: Path, commits: int, stages: int) -> None:
    """Create the repo, the history, and a final real run."""
    if (root / ".bench-done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    _run(root, "git", "init", "-q", "-b", "main")
    _run(root, sys.executable, "-m", "vtool", "init")
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "x.txt").write_text("raw\n")
    _run(root, sys.executable, "-m", "vtool", "add", "data/raw")
    (root / "vtool.yaml").write_text(_stage_file(stages))
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-q", "-m", "pipeline")
    for n in range(commits - 1):
        (root / "vtool.lock").write_bytes(_synthetic_lock(n, stages))
        _run(root, "git", "add", "vtool.lock")
        _run(root, "git", "commit", "-q", "-m", f"run {n}")
    (root / "vtool.lock").unlink()
    _run(root, sys.executable, "-m", "vtool", "repro", "-q")
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-q", "-m", "real run")
    (root / ".bench-done").write_text("ok\n")


def measure(root: Path) -> dict[str, tuple[float, float]]:
    """Return (cold, warm median) seconds for each command."""
    index = root / ".vtool" / "state" / "lineage.json"
    results = {}
    for label, args in (("repro --dry", ("repro", "--dry", "-q")), ("lineage --down data/raw",
                                                                     ("lineage", "--down", "data/raw"))):
        index.unlink(missing_ok=True)
        cold = _vtool(root, *args)
        warm = statistics.median(_vtool(root, *args) for _ in range(WARM_RUNS))
        results[label] = (cold, warm)
    return results


def main(argv: list[str] | None = None) -> int:
    """Build once, time, print a table (also written to .bench/lineage/report.md)."""
    parser = argparse.ArgumentParser(prog="scripts/bench lineage", description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=COMMITS)
    parser.add_argument("--stages", type=int, default=STAGES)
    args = parser.parse_args(argv)
    root = WORK / f"repo-{args.commits}x{args.stages}"
    build(root, args.commits, args.stages)
    lines = [f"| command ({args.commits} commits x {args.stages} stages) | cold s | warm s (median of {WARM_RUNS}) |",
             "|---|---|---|"]
    lines += [f"| `vtool {label}` | {cold:.2f} | {warm:.2f} |" for label, (cold, warm) in measure(root).items()]
    text = "\n".join(lines)
    (WORK / "report.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
