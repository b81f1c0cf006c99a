"""Run one command, timing its wall clock and reading its peak RSS from wait4."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SPAWN = Path(__file__).with_name("spawn.py")
TAIL_LINES = 12
TAIL_BYTES = 8192


@dataclass(frozen=True)
class CmdResult:
    """Outcome of one command: exit code, seconds, peak RSS (KiB) and where its output went."""

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    maxrss_kib: int
    timed_out: bool
    stdout_path: Path
    stderr_path: Path

    @property
    def ok(self) -> bool:
        """Return True when the command exited 0 in time."""
        return self.returncode == 0 and not self.timed_out

    def stderr_tail(self) -> str:
        """Return the last lines of the command's stderr (or stdout when stderr is empty)."""
        for path in (self.stderr_path, self.stdout_path):
            text = tail_file(path)
            if text.strip():
                return text
        return ""


def tail_file(path: Path) -> str:
    """Return the last TAIL_LINES lines of a file, reading at most TAIL_BYTES."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-TAIL_LINES:])


def _kill_group(pid: int) -> None:
    """Kill the process group the command leads (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_timed(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_stem: Path, timeout_s: float
) -> CmdResult:
    """Run argv to completion through spawn.py, whose wait4 gives the command's own peak RSS."""
    log_stem.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    result_path = log_stem.with_suffix(".rusage")
    result_path.unlink(missing_ok=True)
    timed_out = threading.Event()
    # Start every sample with no writeback pending from the step before it.
    os.sync()

    def on_timeout() -> None:
        timed_out.set()
        _kill_group(proc.pid)

    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-I", str(SPAWN), str(result_path), *argv],
            cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
        )
        timer = threading.Timer(timeout_s, on_timeout)
        timer.start()
        try:
            _, status, _ = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
    # Popen must not wait again for a pid we reaped ourselves.
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Leftover daemons of the command (if any) would skew the next measurement.
    _kill_group(proc.pid)
    maxrss = 0
    if result_path.exists():
        wall_text, rss_text = result_path.read_text().split()
        wall, maxrss = float(wall_text), int(rss_text)
    return CmdResult(tuple(argv), proc.returncode, wall, maxrss, timed_out.is_set(), out_path, err_path)


def run_quiet(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run an untimed helper command (git, remote setup), capturing its output."""
    return subprocess.run(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
