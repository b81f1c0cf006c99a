"""Concurrent vtool processes on one repo and on one shared cache: they wait for each other, never corrupt anything.

The repo lock (`.vtool/lock`) and the cache lock (`<cache>/lock`) are flock locks: a second process waits
with a message, gives up after VTOOL_LOCK_TIMEOUT seconds naming the holder, and a holder killed by
SIGKILL leaves nothing stale behind (the kernel drops its lock).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from projectkit import Result, Workdir, cache_sound, git_in

from integration.s3helpers import S3Bucket

RUN_TIMEOUT_S = 120
LOCK_TIMEOUT_S = "1"
# A command that finds the lock free starts within this; one that waits polls every 0.1 s.
PROMPT_S = 8.0


def _dataset(project: Workdir, base: str, files: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(files):
        project.write(f"{base}/part-{i // 50}/f{i:03}.bin", rng.randbytes(8 * 1024))
    project.write(f"{base}/big.bin", rng.randbytes(4 * 1024 * 1024))


def _start(project: Workdir, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vtool", *args], cwd=project.root,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen[str]) -> Result:
    out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    return Result(proc.returncode, out, err)


def _all_at_once(*runs: tuple[Workdir, tuple[str, ...]], env: dict[str, str] | None = None) -> list[Result]:
    procs = [_start(project, *args, env=env) for project, args in runs]
    results = [_finish(proc) for proc in procs]
    for (_, args), result in zip(runs, results, strict=True):
        assert result.code == 0, f"vtool {' '.join(args)} exited {result.code}: {result.err}"
        assert "Traceback" not in result.err
    return results


def _with_remote(project: Workdir, bucket: S3Bucket) -> None:
    project.add_remote(bucket.url, endpoint=bucket.server.endpoint, default=True)


def test_two_adds_and_a_push_at_once_wait_for_each_other(project: Workdir, s3_bucket: S3Bucket,
                                                         s3_environ: dict[str, str], s3_env: dict[str, str]) -> None:
    _with_remote(project, s3_bucket)
    _dataset(project, "base", 100, seed=1)
    project.add("base")
    _dataset(project, "one", 300, seed=2)
    _dataset(project, "two", 300, seed=3)

    results = _all_at_once((project, ("add", "one")), (project, ("add", "two")), (project, ("push",)), env=s3_env)
    waited = [r for r in results if "waiting for pid" in r.err and ".vtool/lock" in r.err]
    assert waited, [r.err for r in results]

    assert project.run("status", "--check").code == 0
    assert {project.pointer(name).oid for name in ("one", "two")} <= project.cache_oids()
    assert cache_sound(project.cache_dir) == project.cache_oids()
    s3_bucket.sound_oids()  # whatever the push saw, it left nothing partial or incomplete
    project.ok("push")
    assert s3_bucket.sound_oids() == project.cache_oids()
    assert project.run("status", "--remote", "--check").code == 0


def _clone(project: Workdir, dest: Path, cache: Path) -> Workdir:
    git_in(dest.parent, "clone", "-q", str(project.root), dest.name)
    clone = Workdir(dest)
    clone.ok("config", "cache.dir", str(cache), "--local")
    return clone


def test_two_clones_sharing_a_cache_pull_add_and_checkout_at_once(project: Workdir, s3_bucket: S3Bucket,
                                                                  s3_environ: dict[str, str], s3_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    _with_remote(project, s3_bucket)
    _dataset(project, "data", 300, seed=4)
    project.add("data")
    project.commit("data")
    project.ok("push")
    shared = tmp_path / "shared-cache"
    a, b = _clone(project, tmp_path / "a", shared), _clone(project, tmp_path / "b", shared)
    expected = project.snapshot("data")

    _all_at_once((a, ("pull",)), (b, ("pull",)), env=s3_env)  # both download the same objects into one cache
    assert a.snapshot("data") == b.snapshot("data") == expected
    _dataset(a, "fresh", 300, seed=5)
    _dataset(b, "fresh", 300, seed=5)  # the same bytes: both clones insert the same objects at once
    _dataset(b, "other", 200, seed=6)
    for path in sorted(b.path("data").rglob("*.bin"))[::3]:
        path.unlink()
    _all_at_once((a, ("add", "fresh")), (b, ("add", "fresh", "other")), (b, ("checkout",)), (a, ("pull",)),
                 env=s3_env)

    assert len(cache_sound(shared)) >= len(project.cache_oids())
    for clone in (a, b):
        assert clone.snapshot("data") == expected
        assert clone.run("status", "--check").code == 0
    assert a.pointer("fresh").oid == b.pointer("fresh").oid


def _hold_lock(path: Path, shared: bool = False) -> subprocess.Popen[str]:
    """Start a process holding a vtool lock (exclusive, as any command holds the repo lock) until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from vtool.lock import locked
        with locked(Path({str(path)!r}), shared={shared}):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=RUN_TIMEOUT_S)
    assert proc.stdout is not None
    proc.stdout.close()


def test_a_held_repo_lock_times_out_naming_its_holder(project: Workdir) -> None:
    holder = _hold_lock(project.vtool_dir / "lock")
    try:
        assert project.vtool_dir.joinpath("lock").read_text() == f"pid {holder.pid} on {socket.gethostname()}\n"
        started = time.monotonic()
        result = project.run_process("status", env={"VTOOL_LOCK_TIMEOUT": LOCK_TIMEOUT_S})
        elapsed = time.monotonic() - started
    finally:
        _stop(holder)
    assert result.code == 1 and "Traceback" not in result.err
    assert f"waiting for pid {holder.pid} on {socket.gethostname()}" in result.err
    error = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert error == [f"error: {project.vtool_dir / 'lock'} is locked by pid {holder.pid} on {socket.gethostname()}"]
    assert "gave up after 1 s" in result.err
    assert elapsed < PROMPT_S


def test_a_shared_cache_held_by_gc_times_out_naming_its_holder(project: Workdir, tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    project.ok("config", "cache.dir", str(shared), "--local")
    holder = _hold_lock(shared / "lock")  # exclusive, as `vtool gc` holds it
    try:
        result = project.run_process("status", env={"VTOOL_LOCK_TIMEOUT": LOCK_TIMEOUT_S})
    finally:
        _stop(holder)
    assert result.code == 1 and "Traceback" not in result.err
    assert f"{shared / 'lock'} is locked by pid {holder.pid}" in result.err


def test_a_lock_holder_killed_by_sigkill_leaves_no_stale_lock(project: Workdir) -> None:
    project.write("data/a.txt", "a")
    holder = _hold_lock(project.vtool_dir / "lock")
    _stop(holder)
    assert f"pid {holder.pid}" in project.vtool_dir.joinpath("lock").read_text()  # its note stays behind...
    started = time.monotonic()
    result = project.run_process("add", "data", env={"VTOOL_LOCK_TIMEOUT": LOCK_TIMEOUT_S})
    assert result.code == 0, result.err  # ...but not its lock
    assert "waiting" not in result.err
    assert time.monotonic() - started < PROMPT_S


def test_a_killed_vtool_add_leaves_no_stale_lock(project: Workdir) -> None:
    _dataset(project, "data", 300, seed=7)
    proc = _start(project, "add", "data")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    note = project.vtool_dir / "lock"
    while not (note.exists() and f"pid {proc.pid} " in note.read_text()):  # it holds the lock now
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    _finish(proc)
    result = project.run_process("add", "data", env={"VTOOL_LOCK_TIMEOUT": LOCK_TIMEOUT_S})
    assert result.code == 0 and "waiting" not in result.err, result.err
    assert project.run("status", "--check").code == 0


def test_a_bad_lock_timeout_is_a_clear_error(project: Workdir) -> None:
    result = project.run_process("status", env={"VTOOL_LOCK_TIMEOUT": "soon"})
    assert result.code == 1 and "Traceback" not in result.err
    assert "VTOOL_LOCK_TIMEOUT='soon' is not a number of seconds" in result.err


def _pull_each(project: Workdir, tmp_path: Path, commits: dict[str, dict[str, tuple[bytes | str, int]]]) -> None:
    """In a fresh clone with an empty cache, check out every commit and compare its data byte for byte."""
    n = len(list(tmp_path.glob("fresh-*")))
    fresh = _clone(project, tmp_path / f"fresh-{n}", tmp_path / f"cache-fresh-{n}")
    for sha, expected in commits.items():
        fresh.ok("checkout", sha)
        assert fresh.snapshot("data") == expected, sha


def test_two_pushes_of_overlapping_data_at_once_leave_every_revision_pullable(
        project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str], s3_env: dict[str, str],
        tmp_path: Path) -> None:
    _with_remote(project, s3_bucket)
    _dataset(project, "data", 300, seed=7)
    project.add("data")
    project.commit("base")
    a = _clone(project, tmp_path / "a", tmp_path / "cache-a")
    b = _clone(project, tmp_path / "b", tmp_path / "cache-b")
    for clone, seed in ((a, 8), (b, 9)):
        shutil.copytree(project.path("data"), clone.path("data"))
        _dataset(clone, "data/extra", 200, seed=seed)  # both share base's 300 files, each adds its own
    for clone in (a, b):
        clone.add("data")
        clone.commit("mine")
    _all_at_once((a, ("push",)), (b, ("push",)), env=s3_env)
    committed = s3_bucket.sound_oids()
    for clone in (a, b):
        assert clone.cache_oids() <= committed
        assert clone.run("status", "--remote", "--check").code == 0
    b.git("fetch", "-q", str(a.root), "main:from-a")
    commits = {a.git("rev-parse", "HEAD").strip(): a.snapshot("data"),
               b.git("rev-parse", "HEAD").strip(): b.snapshot("data")}
    _pull_each(b, tmp_path, commits)


def test_a_push_during_remote_gc_is_never_broken(project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str],
                                                  s3_env: dict[str, str], tmp_path: Path) -> None:
    _with_remote(project, s3_bucket)
    _dataset(project, "data", 300, seed=10)
    project.add("data")
    project.commit("v1")
    project.ok("push")
    pusher = _clone(project, tmp_path / "pusher", tmp_path / "cache-p")
    pusher.ok("pull")
    _dataset(pusher, "data/more", 100, seed=11)  # v3 keeps every v1 file: it needs v1's packs
    pusher.add("data")
    pusher.commit("v3")
    # The gc clone moves to data nothing shares with v1, so v1's packs are dead as far as it knows.
    shutil.rmtree(project.path("data"))
    _dataset(project, "data", 50, seed=12)
    project.add("data")
    project.commit("v2")
    project.ok("push")
    gc_run, push_run = _all_at_once((project, ("gc", "-r", "origin", "--workspace", "--yes", "--json")),
                                    (pusher, ("push",)), env=s3_env)
    assert json.loads(gc_run.out)["marked"] >= 1
    s3_bucket.sound_oids()
    v3 = {pusher.git("rev-parse", "HEAD").strip(): pusher.snapshot("data")}
    _pull_each(pusher, tmp_path, v3)
    # A later gc within the grace period deletes nothing; once it has passed, a push that came after the
    # mark uploaded its own copies, so v3 survives the deletion too.
    project.ok("gc", "-r", "origin", "--workspace", "--yes")
    _pull_each(pusher, tmp_path, v3)
    pusher.ok("push")
    project.ok("config", "gc.grace", "0")
    deleted = project.ok("gc", "-r", "origin", "--workspace", "--yes", "--json").json()
    assert deleted["deleted"] >= 1
    s3_bucket.sound_oids()
    _pull_each(pusher, tmp_path, v3)
