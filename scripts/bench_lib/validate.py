"""`scripts/bench validate`: vtool validate on a 1 GB, 10-million-row CSV, cold and cached, beside pandas + pandera.

Self-contained: generates the CSV once under .bench/validate/, times `vtool validate --json` in a fresh
process (cold: results cache emptied; cached: as left by the cold run) and, when pandas and pandera install
into .bench/pandas-venv, `pandas.read_csv` alone and read_csv + the same checks as a pandera schema.
Peak RSS is each child's own ru_maxrss (os.wait4), so the parent's memory never counts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".bench" / "validate"
PANDAS_VENV = REPO / ".bench" / "pandas-venv"
PANDAS_PACKAGES = ("pandas", "pandera")
ROWS = 10_000_000
BLOCK = 100_000
SEED = 14
HEADER = "id,name,amount,day,flag,category"
CATEGORIES = ("alpha", "bravo", "charlie", "delta")
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz"
NAME_LENGTH = 57  # rows of about 100 bytes: 10 million rows make 1 GB
CHECKS = """\
checks:
  data/big.csv:
    schema:
      fields:
        - {name: id, type: integer, constraints: {required: true, minimum: 0}}
        - {name: name, type: string, constraints: {required: true, maxLength: 80}}
        - {name: amount, type: number, constraints: {minimum: 0, maximum: 1000000}}
        - {name: day, type: date}
        - {name: flag, type: boolean}
        - {name: category, type: string, constraints: {enum: [alpha, bravo, charlie, delta]}}
    rows: {min: 1000}
"""
PANDERA_SCRIPT = """
import sys, time, resource
import pandas as pd
t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1], dtype={"name": str, "category": str})
parsed = time.perf_counter() - t0
if sys.argv[2] == "pandera":
    import pandera.pandas as pa
    schema = pa.DataFrameSchema({
        "id": pa.Column(int, pa.Check.ge(0), nullable=False),
        "name": pa.Column(str, pa.Check.str_length(max_value=80), nullable=False),
        "amount": pa.Column(float, [pa.Check.ge(0), pa.Check.le(1000000)]),
        "day": pa.Column("datetime64[ns]", coerce=True),
        "flag": pa.Column(bool),
        "category": pa.Column(str, pa.Check.isin(["alpha", "bravo", "charlie", "delta"])),
    })
    schema.validate(df, lazy=True)
print(parsed, len(df))
"""


@dataclass(frozen=True)
class Run:
    """One timed child process."""

    label: str
    seconds: float
    peak_rss_mib: float
    rows: int
    note: str = ""


def generate(path: Path, rows: int) -> None:
    """Write the CSV once (about 100 bytes a row), deterministically."""
    if path.is_file() and path.with_suffix(".rows").read_text() == str(rows):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    names = ["".join(rng.choice(NAME_CHARS) for _ in range(NAME_LENGTH)) for _ in range(997)]
    days = [f"20{y:02d}-{m:02d}-{d:02d}" for y in range(10, 25) for m in range(1, 13) for d in range(1, 29)]
    with open(path, "w") as out:
        out.write(HEADER + "\n")
        for start in range(0, rows, BLOCK):
            out.write("".join(
                f"{i},{names[i % 997]},{(i * 7919) % 1000000 / 7:.3f},{days[i % len(days)]},"
                f"{'true' if i & 1 else 'false'},{CATEGORIES[i % 4]}\n"
                for i in range(start, min(rows, start + BLOCK))))
    path.with_suffix(".rows").write_text(str(rows))


def timed(label: str, argv: list[str], cwd: Path) -> tuple[Run, str]:
    """Run a child, returning its wall time, its own peak RSS (wait4) and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}): {stderr[-2000:]}")
    return Run(label, seconds, usage.ru_maxrss / 1024, 0), stdout


def project(csv_path: Path, rows: int) -> Path:
    """Make (once) a git repo tracking the CSV with vtool and declaring the checks."""
    repo = WORK / f"repo-{rows}"
    if (repo / "data.vtool").is_file():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "data").mkdir(parents=True)
    os.link(csv_path, repo / "data" / "big.csv")
    vtool = [sys.executable, "-m", "vtool"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*vtool, "init"], cwd=repo, check=True, capture_output=True)
    subprocess.run([*vtool, "add", "data"], cwd=repo, check=True, capture_output=True)
    (repo / "vtool.yaml").write_text(CHECKS)
    return repo


def vtool_runs(repo: Path) -> list[Run]:
    """Time validate cold (results cache emptied) and cached."""
    shutil.rmtree(repo / ".vtool" / "state" / "checks", ignore_errors=True)
    out = []
    for label in ("vtool validate (cold)", "vtool validate (cached)"):
        run, stdout = timed(label, [sys.executable, "-m", "vtool", "validate", "--json", "-q"], repo)
        doc = json.loads(stdout)
        assert not doc["failed"], doc["results"]
        out.append(Run(label, run.seconds, run.peak_rss_mib, doc["rows_read"],
                       f"{doc['cache_hits']} cache hit(s), {doc['bytes_read']} bytes read"))
    return out


def pandas_python() -> Path | None:
    """Install pandas and pandera into their own venv (never vtool's), or None when they do not install."""
    python = PANDAS_VENV / "bin" / "python"
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(PANDAS_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import pandas, pandera"], capture_output=True)
    if probe.returncode != 0:
        got = subprocess.run([str(python), "-m", "pip", "install", "-q", *PANDAS_PACKAGES], capture_output=True)
        if got.returncode != 0:
            print(f"[bench] pandas/pandera did not install: {got.stderr.decode()[-300:]}", file=sys.stderr)
            return None
    return python


def pandas_runs(csv_path: Path) -> list[Run]:
    """Time read_csv alone, then read_csv + pandera, each in a fresh process."""
    python = pandas_python()
    if python is None:
        return []
    out = []
    for mode in ("read_csv", "pandera"):
        label = "pandas read_csv" if mode == "read_csv" else "pandas read_csv + pandera"
        run, stdout = timed(label, [str(python), "-c", PANDERA_SCRIPT, str(csv_path), mode], WORK)
        parsed, rows = stdout.split()
        out.append(Run(label, run.seconds, run.peak_rss_mib, int(rows), f"parse {float(parsed):.1f} s"))
    return out


def report(runs: list[Run], size: int, rows: int) -> str:
    """Render a markdown table: seconds, rows/s, MB/s, peak RSS."""
    lines = [f"validate of {size / 1e9:.2f} GB, {rows:,} rows, 6-column schema", "",
             "| run | seconds | rows/s | MB/s | peak RSS MiB | note |", "|---|---:|---:|---:|---:|---|"]
    for r in runs:
        rate = f"{rows / r.seconds:,.0f}" if r.rows else "-"
        mbs = f"{size / 1e6 / r.seconds:,.0f}" if r.rows else "-"
        lines.append(f"| {r.label} | {r.seconds:.2f} | {rate} | {mbs} | {r.peak_rss_mib:.0f} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate, run, print the table (and write it to .bench/validate/report.md)."""
    parser = argparse.ArgumentParser(prog="scripts/bench validate", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows to generate (default 10 million)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas + pandera side")
    args = parser.parse_args(argv)
    csv_path = WORK / f"big-{args.rows}.csv"
    generate(csv_path, args.rows)
    size = csv_path.stat().st_size
    runs = vtool_runs(project(csv_path, args.rows))
    if not args.no_pandas:
        runs += pandas_runs(csv_path)
    text = report(runs, size, args.rows)
    (WORK / "report.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
