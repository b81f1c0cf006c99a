"""Scenarios, operation names, paths and tunables of the benchmark."""

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

DVC_SPEC = "dvc==3.67.1"
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
    )
}
# "all" runs the real scenarios; smoke is a seconds-long check of the harness itself.
MAIN_SCENARIOS = ("many-small", "mixed", "few-large")

OP_STARTUP = "startup"
OP_ADD = "add"
OP_STATUS = "status"
OP_READD = "readd"
OP_PUSH = "push"
OP_STATUS_MOD = "status_mod"
OP_ADD_MOD = "add_mod"
OP_PUSH_INC = "push_inc"
OP_PULL = "pull"
OP_CHECKOUT_V1 = "checkout_v1"
OP_CHECKOUT_V2 = "checkout_v2"
OP_GC = "gc"

ALL_OPS = (
    OP_STARTUP, OP_ADD, OP_STATUS, OP_READD, OP_PUSH, OP_STATUS_MOD, OP_ADD_MOD,
    OP_PUSH_INC, OP_PULL, OP_CHECKOUT_V1, OP_CHECKOUT_V2, OP_GC,
)
OP_ALIASES = {"checkout": (OP_CHECKOUT_V1, OP_CHECKOUT_V2)}
TRANSFER_OPS = (OP_PUSH, OP_PULL)
ONE_SHOT_OPS = (OP_ADD_MOD, OP_PUSH_INC, OP_GC)

OP_LABELS = {
    OP_STARTUP: "CLI start-up (--version)",
    OP_ADD: "add (cold cache)",
    OP_STATUS: "status (no change)",
    OP_READD: "add again (no change)",
    OP_PUSH: "push v1 (empty remote)",
    OP_STATUS_MOD: "status after mutation",
    OP_ADD_MOD: "add after mutation",
    OP_PUSH_INC: "push v2 (incremental)",
    OP_PULL: "git clone + pull v2",
    OP_CHECKOUT_V1: "checkout v2 -> v1",
    OP_CHECKOUT_V2: "checkout v1 -> v2",
    OP_GC: "gc (keep workspace)",
}


@dataclass(frozen=True)
class BenchPaths:
    """Where the benchmark keeps venvs, data, work trees, logs and results (all under .bench/)."""

    repo: Path

    @property
    def root(self) -> Path:
        """Return the .bench folder (gitignored)."""
        return self.repo / ".bench"

    @property
    def vtool_venv(self) -> Path:
        """Return the venv vtool is installed in."""
        return self.repo / ".venv"

    @property
    def dvc_venv(self) -> Path:
        """Return the separate venv DVC is installed in."""
        return self.root / "dvc-venv"

    @property
    def s3_server(self) -> Path:
        """Return the project's local S3 server launcher."""
        return self.repo / "scripts" / "s3-server"

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
