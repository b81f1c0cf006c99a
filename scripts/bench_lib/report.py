"""Machine description, the per-scenario table and the JSON results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench_lib.ceilings import Ceiling
from bench_lib.config import MIB, OPS
from bench_lib.datagen import Dataset
from bench_lib.pipeline import STATUS_OK, STATUS_TIMEOUT, Cell

VTOOL, DVC = "vtool", "dvc"
DETAIL_WIDTH = 300
LEFT_COLUMNS = (0, 9)


def first_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Return the first output line of a command, or 'unavailable'."""
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0] if res.returncode == 0 and text else "unavailable"


def machine_info(bench_root: Path, versions: Mapping[str, str]) -> dict[str, object]:
    """Describe the machine: cores, memory, Python, tool versions, filesystem of .bench."""
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    fs = first_line(["findmnt", "-n", "-o", "FSTYPE", "-T", str(bench_root)])
    if fs == "unavailable":
        fs = first_line(["stat", "-f", "-c", "%T", str(bench_root)])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / MIB, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git": first_line(["git", "--version"]),
        "bench_filesystem": fs,
        **versions,
    }


def _fmt_s(cell: Cell | None) -> str:
    """Return a cell's median seconds, or its status when it has no good value."""
    if cell is None:
        return "-"
    if cell.status == STATUS_TIMEOUT:
        return cell.detail.rsplit("` ", 1)[-1]  # "did not finish in N s"
    if cell.status != STATUS_OK:
        return cell.status
    value = cell.median_s
    return f"{value:.2f}" if value is not None else "-"


def _fmt_mb(cell: Cell | None) -> str:
    """Return a cell's peak RSS in MiB."""
    value = cell.peak_rss_mb if cell else None
    return f"{value:.0f}" if value is not None else "-"


def _fmt_requests(cell: Cell | None) -> str:
    """Return the median S3 requests of a cell's runs ("-" when none were made or counted)."""
    value = cell.median_requests if cell else None
    return str(value) if value else "-"


def _good(cell: Cell | None) -> float | None:
    """Return a cell's median only when every run succeeded and verified."""
    return cell.median_s if cell is not None and cell.status == STATUS_OK else None


def table_rows(ops: Sequence[str], cells: Mapping[str, Mapping[str, Cell]],
               ceilings: Mapping[str, Ceiling]) -> list[list[str]]:
    """Build the rows of the comparison table."""
    rows = [["op", "runs", "vtool s", "dvc s", "vtool/dvc", "vtool MB", "dvc MB", "vtool req", "dvc req",
             "ceiling", "ceil s", "ceil/vtool"]]
    for op in ops:
        v, d = cells.get(VTOOL, {}).get(op), cells.get(DVC, {}).get(op)
        vs, ds = _good(v), _good(d)
        ceiling = ceilings.get(OPS[op].ceiling or "")
        runs = max((len(c.times_s) for c in (v, d) if c), default=0)
        rows.append([
            OPS[op].label, str(runs), _fmt_s(v), _fmt_s(d),
            f"{vs / ds:.2f}" if vs and ds else "-", _fmt_mb(v), _fmt_mb(d), _fmt_requests(v), _fmt_requests(d),
            ceiling.label if ceiling else "-", f"{ceiling.seconds:.2f}" if ceiling else "-",
            f"{ceiling.seconds / vs:.0%}" if ceiling and vs else "-",
        ])
    return rows


def render_table(rows: list[list[str]]) -> str:
    """Align rows into a plain-text table (first column left, numbers right)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        pairs = enumerate(zip(row, widths, strict=True))
        cols = [c.ljust(w) if i in LEFT_COLUMNS else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cols).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_ceilings(ceilings: Mapping[str, Ceiling]) -> str:
    """Return one line per ceiling with its throughput."""
    lines = []
    for c in ceilings.values():
        rate = f"{c.nbytes / MIB / c.seconds:8.1f} MiB/s" if c.nbytes and c.seconds else " " * 13
        files = f"{c.files / c.seconds:9.0f} files/s" if c.files and c.seconds else ""
        lines.append(f"  {c.label:34s} {c.seconds:8.2f} s {rate} {files} {c.detail}".rstrip())
    return "\n".join(lines)


def render_scenario(ds: Dataset, ops: Sequence[str], cells: Mapping[str, Mapping[str, Cell]],
                    ceilings: Mapping[str, Ceiling]) -> str:
    """Return the whole printed report of one scenario: header, table, ceilings, problems."""
    m = ds.mutation
    head = (f"== {ds.scenario.name}: {ds.files_v1} files, {ds.bytes_v1 / MIB:.1f} MiB; mutation: "
            f"{len(m.patches)} modified, {len(m.added)} added, {len(m.deleted)} deleted ==")
    parts = [head, render_table(table_rows(ops, cells, ceilings))]
    if ceilings:
        parts.append("ceilings (page cache warm, v1 tree):\n" + render_ceilings(ceilings))
    problems = [f"  {tool} {op}: {c.status}: {c.detail[-DETAIL_WIDTH:]}"
                for tool, per_op in cells.items() for op, c in per_op.items() if c.status != STATUS_OK]
    notes = [f"  {tool} {op}: {c.detail}" for tool, per_op in cells.items() for op, c in per_op.items()
             if c.status == STATUS_OK and c.detail]
    if problems:
        parts.append("problems:\n" + "\n".join(problems))
    if notes:
        parts.append("notes:\n" + "\n".join(notes))
    return "\n".join(parts)


def scenario_json(ds: Dataset, ops: Sequence[str], cells: Mapping[str, Mapping[str, Cell]],
                  ceilings: Mapping[str, Ceiling], machine: Mapping[str, object],
                  settings: Mapping[str, object], elapsed_s: float) -> dict[str, object]:
    """Return the JSON document of one scenario."""
    m = ds.mutation
    rows = []
    for op in ops:
        ceiling = ceilings.get(OPS[op].ceiling or "")
        rows.append({
            "op": op, "label": OPS[op].label,
            "ceiling": ceiling.name if ceiling else None,
            "ceiling_s": ceiling.seconds if ceiling else None,
            **{tool: per_op[op].to_json() for tool, per_op in cells.items() if op in per_op},
        })
    return {
        "scenario": ds.scenario.name,
        "dataset": {"files": ds.files_v1, "bytes": ds.bytes_v1, "modified": len(m.patches),
                    "added": len(m.added), "deleted": len(m.deleted),
                    "tree_hash_v1": ds.hash_v1, "tree_hash_v2": ds.hash_v2},
        "machine": dict(machine),
        "settings": dict(settings),
        "ops": rows,
        "ceilings": {name: c.to_json() for name, c in ceilings.items()},
        "elapsed_s": elapsed_s,
    }


def write_json(path: Path, doc: object) -> None:
    """Write a JSON document (pretty, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
