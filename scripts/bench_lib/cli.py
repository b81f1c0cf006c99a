"""Command line of scripts/bench: parse the options, then run (stdlib only: --help runs before any venv)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench_lib.config import (
    CEILING_MODES,
    CEILINGS_CACHED,
    DEFAULT_CEILING_THREADS,
    DEFAULT_JOBS,
    DEFAULT_RUNS,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT_S,
    OP_ALIASES,
    OPS,
    SCENARIOS,
    BenchPaths,
)

TOOLS = ("vtool", "dvc")
SERVER_KINDS = ("seaweedfs", "minio")
REPO = Path(__file__).resolve().parents[2]


def _csv(value: str) -> list[str]:
    """Split a comma-separated option."""
    return [v.strip() for v in value.split(",") if v.strip()]


def _expand_ops(names: Sequence[str]) -> list[str]:
    """Resolve op names and aliases (checkout = both switches, all) into table order."""
    wanted: set[str] = set()
    for name in names:
        if name not in OPS and name not in OP_ALIASES:
            raise argparse.ArgumentTypeError(f"unknown op {name!r}; ops: {', '.join(OPS)}, checkout, all")
        wanted.update(OP_ALIASES.get(name, (name,)))
    return [op for op in OPS if op in wanted]


def runs_per_op(default_runs: int, overrides: Sequence[str]) -> dict[str, int]:
    """Return each op's runs: --runs for cheap ops, the table's count for the others, then overrides."""
    runs = {op.name: default_runs if op.runs is None else op.runs for op in OPS.values()}
    for item in overrides:
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"--op-runs wants OP=N, got {item!r}")
        runs.update(dict.fromkeys(_expand_ops([name]), int(count)))
    return runs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark vtool against DVC on generated datasets and a local S3 server.",
        epilog=f"ops: {', '.join(OPS)} (checkout = both switches). Everything lives under .bench/.",
    )
    p.add_argument("--scenario", default="many-small", choices=[*SCENARIOS, "all"])
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs of cheap ops (median reported)")
    p.add_argument("--op-runs", type=_csv, default=[], metavar="OP=N,...",
                   help="per-op runs, e.g. push=2,pull=2 (push/pull default to 1; add_mod, push_inc, gc: 1)")
    p.add_argument("--tools", type=_csv, default=list(TOOLS), metavar="vtool,dvc")
    p.add_argument("--ops", type=_csv, default=["all"], metavar="OP,...")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write all results to OUT")
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="-j given to both tools' push and pull")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per command")
    p.add_argument("--dvc-timeout", type=float, metavar="S",
                   help="seconds per DVC command (default --timeout); a cell that hits it reads 'did not finish "
                        "in S s' and the ops that need it are skipped")
    p.add_argument("--ceiling-threads", type=_csv, default=[str(t) for t in DEFAULT_CEILING_THREADS],
                   metavar="8,16,32", help="boto3 pool sizes tried for the S3 ceilings")
    p.add_argument("--ceilings", choices=CEILING_MODES, default=CEILINGS_CACHED,
                   help="measure ceilings afresh, reuse the last measurement of the same data "
                        "(default; the S3 ones take minutes), or skip them")
    p.add_argument("--server", choices=SERVER_KINDS, default=SERVER_KINDS[0],
                   help="the local S3 server both tools use (integration/s3server.py)")
    p.add_argument("--keep-work", action="store_true", help="keep repos and clones under .bench/work")
    args = p.parse_args(argv)
    try:
        args.ops = _expand_ops(args.ops)
        args.runs_map = runs_per_op(args.runs, args.op_runs)
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    if not args.tools or not set(args.tools) <= set(TOOLS):
        p.error(f"--tools takes {','.join(TOOLS)}")
    if args.timeout <= 0 or (args.dvc_timeout is not None and args.dvc_timeout <= 0):
        p.error("--timeout and --dvc-timeout must be positive")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    args.ceiling_threads = [int(t) for t in args.ceiling_threads]
    return args


def make_logger(start: float) -> Callable[[str], None]:
    """Return a progress logger writing elapsed-time-stamped lines to stderr."""

    def log(msg: str) -> None:
        print(f"[bench {time.perf_counter() - start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    return log


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and return the exit code."""
    args = parse_args(argv)
    from bench_lib.runner import run_all

    start = time.perf_counter()
    paths = BenchPaths(REPO)
    paths.root.mkdir(exist_ok=True)
    shutil.rmtree(paths.root / "logs", ignore_errors=True)
    return run_all(args, paths, make_logger(start), start)
