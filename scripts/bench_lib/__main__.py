"""Run the benchmark: `python -m bench_lib` (scripts/bench sets up the venvs first)."""

import sys

from bench_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())
