"""One tool's pass over one scenario: the timed operations, in the order a user meets them."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench_lib.config import DATA_DIRNAME, GIT_BRANCH, OPS, SUB_PULL_FRACTION, TAG_V1, TAG_V2
from bench_lib.datagen import Dataset, apply_mutation
from bench_lib.proc import run_quiet, run_timed
from bench_lib.tools import Argv, Driver
from bench_lib.treehash import tree_hash, walk_stat

KIB_PER_MB = 1024
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
STATUS_FAIL = "FAIL"
STATUS_SKIPPED = "skipped"
CHECKOUTS = (("checkout_v1", TAG_V1), ("checkout_v2", TAG_V2))


def unfinished(timeout_s: float) -> str:
    """Say that a command ran into the time limit, as the table and its notes print it."""
    return f"did not finish in {timeout_s:g} s"


class OpFailed(Exception):
    """An operation failed (error, timeout) or produced wrong data (FAIL)."""

    def __init__(self, status: str, detail: str) -> None:
        """Keep the cell status and a human detail (the stderr tail for errors)."""
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Done(Exception):
    """Every selected operation has been measured; the rest of the pass is not needed."""


@dataclass
class Cell:
    """One tool's measurements of one operation."""

    status: str = STATUS_SKIPPED
    times_s: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    detail: str = ""
    requests: list[int] = field(default_factory=list)

    def record(self, wall_s: float, rss_kib: int, requests: int | None = None) -> None:
        """Add one successful sample (with the S3 requests it made, when the server counts them)."""
        self.status = STATUS_OK
        self.times_s.append(wall_s)
        self.rss_kib.append(rss_kib)
        if requests is not None:
            self.requests.append(requests)

    @property
    def median_requests(self) -> int | None:
        """Return the median number of S3 requests per run, None when not counted."""
        return int(statistics.median(self.requests)) if self.requests else None

    def fail(self, e: OpFailed) -> None:
        """Mark the cell with a failure's status and detail."""
        self.status, self.detail = e.status, e.detail

    @property
    def median_s(self) -> float | None:
        """Return the median wall time, or None when there is no sample."""
        return statistics.median(self.times_s) if self.times_s else None

    @property
    def peak_rss_mb(self) -> float | None:
        """Return the highest peak RSS over the runs, in MiB."""
        return max(self.rss_kib) / KIB_PER_MB if self.rss_kib else None

    def to_json(self) -> dict[str, object]:
        """Return the cell as a JSON-ready dict."""
        return {"status": self.status, "runs": len(self.times_s), "times_s": self.times_s,
                "median_s": self.median_s, "peak_rss_mb": self.peak_rss_mb, "detail": self.detail,
                "requests": self.requests}


@dataclass(frozen=True)
class RunContext:
    """What a pass needs besides the tool and data: where, which remote, how many runs."""

    work: Path
    logs: Path
    bucket: str
    endpoint: str
    jobs: int
    timeout_s: float
    runs: Mapping[str, int]
    selected: frozenset[str]
    log: Callable[[str], None]
    requests: Callable[[], int | None] = lambda: None  # S3 requests the server has answered so far


Step = Callable[[Cell, int], None]


class ToolPass:
    """Run one tool through the scenario and collect a Cell per selected operation."""

    def __init__(self, driver: Driver, ds: Dataset, ctx: RunContext) -> None:
        """Prepare paths; nothing runs until run()."""
        self.d, self.ds, self.ctx = driver, ds, ctx
        self.repo = ctx.work / "repo"
        self.clone = ctx.work / "clone"
        self.data = self.repo / DATA_DIRNAME
        self.cells: dict[str, Cell] = {}
        self.remaining = set(ctx.selected)
        self.seq = 0
        self.op = "init"  # names the logs of the commands run now
        self.gitignore_tracked = False
        self.unfinished: dict[str, str] = {}  # op -> why it did not finish (a timeout, or one it needed)

    def url(self, run: int) -> str:
        """Return the remote URL of a push run (a fresh prefix, so every run starts empty)."""
        return f"s3://{self.ctx.bucket}/run{run}"

    def run(self) -> dict[str, Cell]:
        """Execute the whole pass; a failing step marks its cells and the pass goes on."""
        try:
            self._setup()
        except OpFailed as e:
            self.ctx.log(f"{self.d.name}: setup failed: {e.detail}")
            self.cells = {op: Cell(e.status, detail=f"setup: {e.detail}") for op in self.ctx.selected}
            return self.cells
        with contextlib.suppress(_Done):
            self._sequence()
        return self.cells

    def _sequence(self) -> None:
        """Run the steps in order; unselected steps that others need run once, unreported."""
        self._step("startup", self._repeat(self.d.argv("version")))
        self._step("startup_help", self._repeat(self.d.argv("help")))
        self._step("status_empty", self._repeat(self.d.argv("status")))
        self._step("add", self._add)
        self._step("status", self._status(dirty=False))
        self._step("readd", self._repeat(self.d.argv("add")))
        self._commit(TAG_V1)
        self._step("push", self._push)
        self._continue()
        apply_mutation(self.data, self.ds.mutation)
        self._step("status_mod", self._status(dirty=True))
        self._step("add_mod", self._add_mod)
        self._commit(TAG_V2)
        # A repeat would find nothing left to push, so the incremental push runs once.
        self._step("push_inc", self._repeat(self.d.argv("push", jobs=self.ctx.jobs), max_runs=1))
        self._step("pull", self._pull)
        self._step("pull_sub", self._pull_sub)
        self._checkout_cycle()
        self._step("gc", self._gc)

    def _continue(self) -> None:
        """Stop the pass once every selected operation has been measured."""
        if not self.remaining:
            raise _Done

    def _step(self, op: str, fn: Step) -> None:
        """Run one operation: measured when selected, once as setup when a later selected one needs it."""
        self._continue()
        selected = op in self.ctx.selected
        if not selected and not any(op in OPS[later].needs for later in self.remaining):
            return
        cell, runs, self.op = Cell(), self.ctx.runs[op] if selected else 1, op
        blocked = [self.unfinished[n] for n in OPS[op].needs if n in self.unfinished]
        if blocked:  # an op it needs ran out of time: waiting out this one too would tell nothing more
            self.unfinished[op] = blocked[0]  # the first op that ran out of time, so a chain names it
            cell.detail = f"it needs {blocked[0]}"
            self.ctx.log(f"{self.d.name}: {op}: {cell.detail}")
        else:
            self._run_step(op, fn, cell, runs, selected)
        if selected:
            self.cells[op] = cell
            self.remaining.discard(op)

    def _run_step(self, op: str, fn: Step, cell: Cell, runs: int, selected: bool) -> None:
        """Run one step's samples; remember a timeout so the ops that need this one are skipped."""
        self.ctx.log(f"{self.d.name}: {op} x{runs}" + ("" if selected else " (setup, not reported)"))
        try:
            fn(cell, runs)
        except OpFailed as e:
            cell.fail(e)
            self.ctx.log(f"{self.d.name}: {op}: {e.status}: {e.detail}")
            if e.status == STATUS_TIMEOUT:
                self.unfinished[op] = f"{op}, which {unfinished(self.ctx.timeout_s)}"

    def _timed(self, cmds: list[Argv], cwd: Path | None = None) -> tuple[float, int, int | None]:
        """Run the commands of one sample; return summed wall time, the highest peak RSS and the S3 requests."""
        wall, rss = 0.0, 0
        before = self.ctx.requests()
        for argv in cmds:
            self.seq += 1
            stem = self.ctx.logs / self.d.name / f"{self.seq:03d}-{self.op}"
            res = run_timed(argv, cwd or self.repo, self.d.env(cwd or self.repo), stem, self.ctx.timeout_s)
            wall += res.wall_s
            rss = max(rss, res.maxrss_kib)
            if not res.ok:
                shown = " ".join([Path(argv[0]).name, *argv[1:]])
                if res.timed_out:
                    raise OpFailed(STATUS_TIMEOUT, f"`{shown}` {unfinished(self.ctx.timeout_s)}")
                raise OpFailed(STATUS_ERROR, f"`{shown}` exited {res.returncode}: {res.stderr_tail()}")
        after = self.ctx.requests()
        return wall, rss, (after - before if before is not None and after is not None else None)

    def _git(self, *args: str, cwd: Path | None = None) -> None:
        """Run an untimed git command; failure is an error of the current step."""
        res = run_quiet(["git", *args], cwd or self.repo, self.d.env(cwd or self.repo))
        if res.returncode:
            raise OpFailed(STATUS_ERROR, f"git {' '.join(args)}: {res.stderr.strip()[-500:]}")

    def _verify(self, root: Path, tag: str) -> None:
        """Mark the cell FAIL unless root holds exactly the reference tree of tag."""
        if not root.is_dir():
            raise OpFailed(STATUS_FAIL, f"{root.name}/ missing, expected {tag}")
        if tree_hash(root) != (self.ds.hash_v1 if tag == TAG_V1 else self.ds.hash_v2):
            raise OpFailed(STATUS_FAIL, f"{root.name}/ is not byte-identical to {tag}")

    def _wipe_outside_state(self, repo: Path) -> None:
        """Remove what the tool keeps of repo outside it, for a cold start."""
        for path in self.d.outside_state(repo):
            shutil.rmtree(path, ignore_errors=True)

    def _setup(self) -> None:
        """Create a fresh git repo, init the tool with its remote, commit, then copy v1 in."""
        shutil.rmtree(self.ctx.work, ignore_errors=True)
        self.repo.mkdir(parents=True)
        self._wipe_outside_state(self.repo)
        self._git("init", "-q", "-b", GIT_BRANCH)
        self._timed(self.d.argv("init", url=self.url(1), endpoint=self.ctx.endpoint))
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", "init")
        self.gitignore_tracked = (self.repo / ".gitignore").exists()
        subprocess.run(["cp", "-a", str(self.ds.v1), str(self.data)], check=True)

    def _cold_reset(self) -> None:
        """Forget everything the last add did: pointer, ignore entry, cache and local state."""
        (self.repo / self.d.pointer).unlink(missing_ok=True)
        if self.gitignore_tracked:
            self._git("checkout", "-q", "--", ".gitignore")
        else:
            (self.repo / ".gitignore").unlink(missing_ok=True)
        self._git("clean", "-fdqX", "--", self.d.state_dir)
        self._wipe_outside_state(self.repo)

    def _repeat(self, cmds: list[Argv], max_runs: int = 0) -> Step:
        """Return a step timing the same read-only or idempotent commands (at most max_runs times)."""

        def step(cell: Cell, runs: int) -> None:
            for _ in range(min(runs, max_runs) if max_runs else runs):
                cell.record(*self._timed(cmds))

        return step

    def _status(self, dirty: bool) -> Step:
        """Return a step timing status, then checking (untimed) that it tells clean from changed."""
        timed = self._repeat(self.d.argv("status"))

        def step(cell: Cell, runs: int) -> None:
            timed(cell, runs)
            res = run_quiet(self.d.argv("status_check")[0], self.repo, self.d.env(self.repo))
            if res.returncode != int(dirty):
                state = "changed" if dirty else "in sync"
                raise OpFailed(STATUS_FAIL, f"status --check exited {res.returncode} on a workspace {state}")

        return step

    def _add(self, cell: Cell, runs: int) -> None:
        """Time add into an empty cache, resetting to cold before every repeat."""
        for i in range(runs):
            if i:
                self._cold_reset()
            cell.record(*self._timed(self.d.argv("add")))
        self._verify(self.data, TAG_V1)

    def _commit(self, tag: str) -> None:
        """Commit the pointer, ignore file and tool config as version tag (untimed)."""
        self._continue()
        paths = [p for p in (self.d.pointer, ".gitignore", self.d.state_dir, *self.d.tracked_extra)
                 if (self.repo / p).exists()]
        try:
            self._git("add", "--", *paths)
            self._git("commit", "-q", "-m", tag)
            self._git("tag", "-f", tag)
        except OpFailed as e:
            self.ctx.log(f"{self.d.name}: commit {tag} failed: {e.detail}")

    def _push(self, cell: Cell, runs: int) -> None:
        """Time pushing v1 into an empty prefix; each repeat gets a new prefix."""
        for i in range(runs):
            if i:
                self.op = "remote"
                self._timed(self.d.argv("set_remote", url=self.url(i + 1), endpoint=self.ctx.endpoint))
                self.op = "push"
            cell.record(*self._timed(self.d.argv("push", jobs=self.ctx.jobs)))

    def _add_mod(self, cell: Cell, runs: int) -> None:
        """Time add after the mutation (once: a repeat would re-add unchanged data)."""
        cell.record(*self._timed(self.d.argv("add")))
        self._verify(self.data, TAG_V2)

    def _pull(self, cell: Cell, runs: int) -> None:
        """Time pull of HEAD (v2) in a fresh git clone with an empty cache, then verify it."""
        for _ in range(runs):
            shutil.rmtree(self.clone, ignore_errors=True)
            self._wipe_outside_state(self.clone)
            self._git("clone", "-q", str(self.repo), str(self.clone), cwd=self.ctx.work)
            cell.record(*self._timed(self.d.argv("pull", jobs=self.ctx.jobs), cwd=self.clone))
            self._verify(self.clone / DATA_DIRNAME, TAG_V2)

    def _pull_sub(self, cell: Cell, runs: int) -> None:
        """Time pulling 1% of v2 (whole leaf folders) in a fresh clone, as `dvc pull data/sub` does; verify them."""
        subs = sub_folders(self.ds.v2, SUB_PULL_FRACTION)
        for _ in range(runs):
            shutil.rmtree(self.clone, ignore_errors=True)
            self._wipe_outside_state(self.clone)
            self._git("clone", "-q", str(self.repo), str(self.clone), cwd=self.ctx.work)
            pull = self.d.argv("pull", jobs=self.ctx.jobs)[0] + [f"{DATA_DIRNAME}/{s}" for s in subs]
            cell.record(*self._timed([pull], cwd=self.clone))
            got = self.clone / DATA_DIRNAME
            wanted = sorted(f"{s}/{p.name}" for s in subs for p in (self.ds.v2 / s).iterdir())
            if sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) != wanted:
                raise OpFailed(STATUS_FAIL, "the clone holds other files than those of the requested folders")
            for s in subs:
                if tree_hash(got / s) != tree_hash(self.ds.v2 / s):
                    raise OpFailed(STATUS_FAIL, f"{DATA_DIRNAME}/{s} is not byte-identical to {TAG_V2}")

    def _checkout_cycle(self) -> None:
        """Time switching v2 -> v1 and v1 -> v2 in the main repo, verifying every switch."""
        self._continue()
        ops = [op for op, _ in CHECKOUTS if op in self.ctx.selected]
        if not ops:
            return
        cells = {op: Cell() for op, _ in CHECKOUTS}
        blocked = [self.unfinished[n] for op in ops for n in OPS[op].needs if n in self.unfinished]
        if blocked:
            for op in ops:
                self.cells[op] = Cell(detail=f"it needs {blocked[0]}")
                self.remaining.discard(op)
            return
        runs = max(self.ctx.runs[op] for op in ops)
        self.ctx.log(f"{self.d.name}: checkout v2 -> v1 -> v2 x{runs}")
        try:
            for _ in range(runs):
                for op, tag in CHECKOUTS:
                    self.op = op
                    try:
                        cells[op].record(*self._timed(self.d.argv("checkout", rev=tag)))
                        self._verify(self.data, tag)
                    except OpFailed as e:
                        cells[op].fail(e)
                        raise
        except OpFailed as e:
            self.ctx.log(f"{self.d.name}: checkout: {e.status}: {e.detail}")
        try:
            self._git("checkout", "-q", GIT_BRANCH)
        except OpFailed as e:
            self.ctx.log(f"{self.d.name}: back to {GIT_BRANCH}: {e.detail}")
        for op in ops:
            if cells[op].status == STATUS_SKIPPED:
                cells[op].fail(OpFailed(STATUS_ERROR, "not reached"))
            self.cells[op] = cells[op]
            self.remaining.discard(op)

    def _gc(self, cell: Cell, runs: int) -> None:
        """Time gc keeping the workspace only; the workspace must survive intact."""
        cache = self.repo / self.d.cache_dir
        before = walk_stat(cache).files if cache.is_dir() else 0
        cell.record(*self._timed(self.d.argv("gc")))
        after = walk_stat(cache).files if cache.is_dir() else 0
        cell.detail = f"cache files {before} -> {after}"
        self._verify(self.data, TAG_V2)


def sub_folders(tree: Path, fraction: float) -> list[str]:
    """Return leaf folders of the first top folder of tree that together hold about fraction of its files."""
    total = sum(1 for p in tree.rglob("*") if p.is_file())
    top = sorted(p for p in tree.iterdir() if p.is_dir())[0]
    chosen, count = [], 0
    for leaf in sorted(p for p in top.iterdir() if p.is_dir()):
        if chosen and count >= fraction * total:
            break
        chosen.append(leaf.relative_to(tree).as_posix())
        count += sum(1 for p in leaf.iterdir() if p.is_file())
    return chosen
