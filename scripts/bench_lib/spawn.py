"""Run one command as a child of this tiny process and record its wall time and peak RSS.

A child's ru_maxrss includes the memory of the process it was forked from, so commands
forked straight from the harness would report the harness's own peak. Forked from here
(python -S, a few MiB), wait4's ru_maxrss is the command's: usage is
`python -S -I spawn.py RESULT_FILE ARGV...`, which writes "wall_s maxrss_kib".
"""

import os
import sys
import time

EXEC_FAILED = 127


def main() -> int:
    """Fork, exec the command, wait4 it, write the result file, exit with its exit code."""
    result, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, f"spawn: {argv[0]}: {e}\n".encode())
        os._exit(EXEC_FAILED)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(result, "w") as f:
        f.write(f"{wall} {usage.ru_maxrss}\n")
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
