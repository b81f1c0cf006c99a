"""Scenarios, the one table of timed operations, paths and tunables of the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

DEFAULT_SEED = 1
DEFAULT_RUNS = 3
DEFAULT_TRANSFER_RUNS = 1
DEFAULT_JOBS = 16
DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_CEILING_THREADS = (8, 16, 32)

MODIFIED_FRACTION = 0.01
SUB_PULL_FRACTION = 0.01  # pull_sub: the leaf folders of the first top folder, up to this share of the files
ADDED_FRACTION = 0.005
DELETED_FRACTION = 0.005
PATCH_BYTES = 4 * KIB
GEN_CHUNK_BYTES = 4 * MIB
DATASET_FORMAT = 2

CEILINGS_FRESH = "fresh"
CEILINGS_CACHED = "cached"
CEILINGS_OFF = "off"
CEILING_MODES = (CEILINGS_CACHED, CEILINGS_FRESH, CEILINGS_OFF)
CEILINGS_FORMAT = 2

DATA_DIRNAME = "data"
GIT_BRANCH = "main"
TAG_V1 = "v1"
TAG_V2 = "v2"


@dataclass(frozen=True)
class Scenario:
    """A dataset shape: file count, folder fan-out and the size range of its files."""

    name: str
    files: int
    top_dirs: int
    sub_dirs: int
    min_size: int
    max_size: int
    log_sizes: bool


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("many-small", 20_000, 20, 50, 1 * KIB, 16 * KIB, log_sizes=False),
        Scenario("mixed", 2_000, 10, 10, 4 * KIB, 4 * MIB, log_sizes=True),
        Scenario("few-large", 4, 2, 1, 512 * MIB, 512 * MIB, log_sizes=False),
        Scenario("smoke", 400, 4, 5, 1 * KIB, 256 * KIB, log_sizes=True),
        # A million small files in 1,000 folders of 1,000 (issue 16): memory must follow the folder, not the tree.
        Scenario("huge", 1_000_000, 10, 100, 100, 1 * KIB, log_sizes=False),
    )
}
# "all" runs the real scenarios; smoke is a seconds-long check of the harness itself; huge (hours beside DVC)
# runs only when named.
MAIN_SCENARIOS = ("many-small", "mixed", "few-large")


@dataclass(frozen=True)
class Op:
    """One timed operation: its label in the report, the ceiling it is held against, its runs, what it needs.

    runs None means --runs (cheap, repeatable operations; the median is reported). `needs` lists the
    state-changing operations that must have run first: they run once, unreported, when not selected.
    """

    name: str
    label: str
    ceiling: str | None = None
    runs: int | None = None
    needs: tuple[str, ...] = ()


_AFTER_ADD = ("add",)
_AFTER_V2 = ("add", "add_mod")
OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("startup", "CLI start-up (--version)"),
        Op("startup_help", "CLI start-up (--help)"),
        Op("status_empty", "status (nothing tracked yet)"),
        Op("add", "add (cold cache)", "ingest"),
        Op("status", "status (no change)", "walk", needs=_AFTER_ADD),
        Op("readd", "add again (no change)", "walk", needs=_AFTER_ADD),
        Op("push", "push v1 (empty remote)", "s3_upload", DEFAULT_TRANSFER_RUNS, _AFTER_ADD),
        Op("status_mod", "status after mutation", "walk", needs=_AFTER_ADD),
        Op("add_mod", "add after mutation", "walk", 1, _AFTER_ADD),
        Op("push_inc", "push v2 (incremental)", "s3_upload_changed", 1, ("add", "push", "add_mod")),
        Op("pull", "git clone + pull v2", "s3_download", DEFAULT_TRANSFER_RUNS, ("add", "push", "add_mod", "push_inc")),
        Op("pull_sub", "git clone + pull 1% (sub-folders)", None, DEFAULT_TRANSFER_RUNS,
           ("add", "push", "add_mod", "push_inc")),
        Op("checkout_v1", "checkout v2 -> v1", "walk", needs=_AFTER_V2),
        Op("checkout_v2", "checkout v1 -> v2", "walk", needs=_AFTER_V2),
        Op("gc", "gc (keep workspace)", runs=1, needs=_AFTER_V2),
    )
}
OP_ALIASES = {"checkout": ("checkout_v1", "checkout_v2"), "all": tuple(OPS)}


class BenchPaths:
    """Where the benchmark keeps venvs, data, work trees, logs and results (all under .bench/, gitignored)."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.root = repo / ".bench"
        self.vtool_venv = repo / ".venv"
        self.dvc_venv = self.root / "dvc-venv"
        self.s3 = self.root / "s3"

    def data(self, scenario: str) -> Path:
        """Return the folder holding the generated v1/v2 trees of a scenario."""
        return self.root / "data" / scenario

    def work(self, scenario: str) -> Path:
        """Return the scratch folder of a scenario's repos, clones and ceiling copies."""
        return self.root / "work" / scenario

    def logs(self, scenario: str) -> Path:
        """Return the folder of per-command stdout/stderr logs of a scenario."""
        return self.root / "logs" / scenario

    def ceilings(self, scenario: str) -> Path:
        """Return the file caching a scenario's ceiling measurements."""
        return self.root / f"ceilings-{scenario}.json"

    def results(self, scenario: str) -> Path:
        """Return the JSON results file of a scenario."""
        return self.root / f"results-{scenario}.json"
