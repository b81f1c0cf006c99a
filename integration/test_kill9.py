"""kill -9 at random moments during add, push, fetch and checkout: nothing partial under a final name, ever.

Each test measures one uninterrupted run of its command, then runs TRIALS more from the same starting
state, each killed (SIGKILL to its whole process group) after a delay drawn from that measured duration
with a seeded generator. After every kill: every object and pack in the cache and on the remote hashes to
its name, a remote index names only complete packs, a committed manifest never lacks its members, pointers
parse and name either the old or the new tree (never objects the cache lacks), each workspace file holds its
old or its new bytes; then the same command, run again, finishes the job.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import xxhash
from projectkit import Workdir, cache_sound

from integration.s3helpers import S3Bucket
from vtool import manifest
from vtool import pointer as ptr
from vtool.fsutil import TEMP_MARK
from vtool.hashing import OID_PREFIX

SEED = 1729
TRIALS = 20
SMALL_FILES = 200
SMALL_SIZE = 4 * 1024
BIG_SIZES = {"big/one.bin": 3 * 1024 * 1024, "big/multipart.bin": 9 * 1024 * 1024}  # 9 MiB: loose, one PUT
# Delays are drawn from [LOW, 1] x the measured duration: a few land in start-up, most in the work itself.
LOW = 0.1
RUN_TIMEOUT_S = 120
Version = dict[str, bytes]


def _versions(rng: random.Random) -> tuple[Version, Version]:
    """v1, and v2 with a third of the small files changed, some deleted, some added and one big file changed."""
    v1 = {f"small/{i // 40:02}/f{i:03}.bin": rng.randbytes(SMALL_SIZE) for i in range(SMALL_FILES)}
    v1.update({rel: rng.randbytes(size) for rel, size in BIG_SIZES.items()})
    v2 = dict(v1)
    names = sorted(v1)
    for rel in names[: SMALL_FILES // 3]:
        v2[rel] = rng.randbytes(SMALL_SIZE)
    for rel in names[SMALL_FILES // 3: SMALL_FILES // 3 + 20]:
        del v2[rel]
    v2.update({f"small/new/n{i:02}.bin": rng.randbytes(SMALL_SIZE) for i in range(20)})
    v2["big/one.bin"] = rng.randbytes(BIG_SIZES["big/one.bin"])
    return v1, v2


def _oids(version: Version) -> dict[str, str]:
    return {rel: OID_PREFIX + xxhash.xxh3_128_hexdigest(data) for rel, data in version.items()}


def _write(folder: Path, version: Version) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for rel, data in version.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _process(args: list[str], cwd: Path, env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "vtool", *args], cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _measure(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run the command once to the end; return how long it took."""
    started = time.monotonic()
    proc = _process(args, cwd, env)
    _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - started


def _killed(args: list[str], cwd: Path, delay: float, env: dict[str, str] | None = None) -> float | None:
    """Start the command, SIGKILL its whole process group after delay; None if it was killed, else its run time."""
    started = time.monotonic()
    proc = _process(args, cwd, env)
    try:
        proc.wait(timeout=delay)
        return time.monotonic() - started
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=RUN_TIMEOUT_S)
        return None
    finally:
        assert proc.stderr is not None
        proc.stderr.close()


def _trials(rng: random.Random, duration: float, reset: Callable[[], None],
            kill: Callable[[float], float | None], check: Callable[[], None], rerun: Callable[[], None]) -> None:
    killed = 0
    for _ in range(TRIALS):
        reset()
        finished_in = kill(rng.uniform(LOW, 1.0) * duration)
        if finished_in is None:
            killed += 1
        else:
            # The measured run was slowed by load the trials no longer see: aim the next kills at this pace.
            duration = min(duration, finished_in)
        check()
        rerun()
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} runs were still going when killed"


def _tree_objects(project: Workdir, root: str) -> set[str]:
    """Every object (manifests and files) of a tree in the project's cache."""
    out = {root}
    for _, e in manifest.walk(project.manifest, root):
        out.add(e.oid)
    return out


def _workspace_files(folder: Path) -> dict[str, str]:
    """Map each workspace file (not our temp files) to its oid."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith(TEMP_MARK):
            out[path.relative_to(folder).as_posix()] = OID_PREFIX + xxhash.xxh3_128_hexdigest(path.read_bytes())
    return out


def _each_file_old_or_new(folder: Path, old: dict[str, str], new: dict[str, str]) -> None:
    for rel, oid in _workspace_files(folder).items():
        assert oid in (old.get(rel), new.get(rel)), f"{rel} holds bytes of neither version"


def _pointer_oid(project: Workdir) -> str:
    return ptr.loads(project.path("data.vtool").read_bytes(), "data.vtool").oid


def test_kill_during_add(project: Workdir) -> None:
    rng = random.Random(SEED)
    v1, v2 = _versions(rng)
    _write(project.path("data"), v1)
    v1_root = project.add("data")["added"][0]["oid"]
    v1_pointer, v1_objects = project.read("data.vtool"), project.cache_oids()
    v1_packs = set(project.cache_dir.glob("packs/*"))
    project.commit("v1")
    _write(project.path("data"), v2)
    new = _oids(v2)

    def reset() -> None:
        project.path("data.vtool").write_bytes(v1_pointer)
        for oid in project.cache_oids() - v1_objects:
            if project.object_path(oid).exists():
                os.unlink(project.object_path(oid))
        for path in set(project.cache_dir.glob("packs/*")) - v1_packs:
            os.unlink(path)
        shutil.rmtree(project.vtool_dir / "state", ignore_errors=True)  # hash everything again

    reset()
    duration = _measure(["add", "data"], project.root)

    def check() -> None:
        cached = cache_sound(project.cache_dir)
        root = _pointer_oid(project)
        assert root in (v1_root, v2_root)
        if root == v2_root:  # a pointer is written only once every object it names is in the cache
            assert _tree_objects(project, root) <= cached
        assert _workspace_files(project.path("data")) == new  # add never touches the data

    v2_root = project.add("data")["added"][0]["oid"]
    _trials(rng, duration, reset, lambda delay: _killed(["add", "data"], project.root, delay), check,
            lambda: (project.ok("add", "data"), _rerun_ok(project, v2_root)))


def _rerun_ok(project: Workdir, root: str) -> None:
    assert _pointer_oid(project) == root
    assert _tree_objects(project, root) <= cache_sound(project.cache_dir)
    assert project.run("status", "--check").code == 0


def test_kill_during_checkout(project: Workdir, tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    v1, v2 = _versions(rng)
    pristine = tmp_path / "v1"
    _write(pristine, v1)
    _write(project.path("data"), v2)
    v2_root = project.add("data")["added"][0]["oid"]
    _write(project.path("data"), v1)
    project.add("data")
    _write(project.path("data"), v2)
    project.add("data")  # the pointer names v2; the cache holds both versions
    old, new = _oids(v1), _oids(v2)

    def reset() -> None:
        shutil.rmtree(project.path("data"))
        shutil.copytree(pristine, project.path("data"))

    reset()
    duration = _measure(["checkout"], project.root)
    assert _workspace_files(project.path("data")) == new

    def check() -> None:
        _each_file_old_or_new(project.path("data"), old, new)
        assert _pointer_oid(project) == v2_root
        cache_sound(project.cache_dir)

    def rerun() -> None:
        project.ok("checkout")
        assert _workspace_files(project.path("data")) == new
        assert not list(project.path("data").rglob(f"{TEMP_MARK}*"))  # what a kill left behind is cleaned up
        assert project.run("status", "--check").code == 0

    _trials(rng, duration, reset, lambda delay: _killed(["checkout"], project.root, delay), check, rerun)


def _with_remote(project: Workdir, bucket: S3Bucket, prefix: str) -> None:
    project.add_remote(f"s3://{bucket.name}/{prefix}", "--force", endpoint=bucket.server.endpoint, default=True)


def _tracked_v2(project: Workdir, seed: int) -> random.Random:
    """Write and add the second version of a seeded pair; return the generator for the trials."""
    rng = random.Random(seed)
    _, v2 = _versions(rng)
    _write(project.path("data"), v2)
    project.add("data")
    return rng


def test_kill_during_push(project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str],
                          s3_env: dict[str, str]) -> None:
    rng = _tracked_v2(project, SEED + 2)
    everything = project.cache_oids()
    trial = iter(range(TRIALS + 1))
    prefix = ""

    def reset() -> None:
        nonlocal prefix
        prefix = f"kill/{next(trial)}"  # a fresh, empty place on the remote for each run
        _with_remote(project, s3_bucket, prefix)

    reset()
    duration = _measure(["push"], project.root, s3_env)

    def rerun() -> None:
        project.ok("push")
        assert s3_bucket.sound_oids(prefix) == everything

    _trials(rng, duration, reset, lambda delay: _killed(["push"], project.root, delay, s3_env),
            lambda: s3_bucket.sound_oids(prefix), rerun)


def test_kill_during_fetch(project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str],
                           s3_env: dict[str, str]) -> None:
    rng = _tracked_v2(project, SEED + 3)
    _with_remote(project, s3_bucket, "kill")
    project.ok("push")
    everything = project.cache_oids()

    def reset() -> None:
        shutil.rmtree(project.cache_dir)

    reset()
    duration = _measure(["fetch"], project.root, s3_env)

    def rerun() -> None:
        project.ok("fetch")
        assert cache_sound(project.cache_dir) == everything

    _trials(rng, duration, reset, lambda delay: _killed(["fetch"], project.root, delay, s3_env),
            lambda: cache_sound(project.cache_dir), rerun)


def test_what_a_kill_leaves_behind_is_never_read_as_data(project: Workdir) -> None:
    """Temp files a kill leaves (beside a pointer, in the cache, in the data) are no pointer, object or file."""
    project.write_tree("data", {"a.csv": "a\n", "sub/b.csv": "b\n"})
    project.add("data")
    pointer = project.read("data.vtool")
    debris = {
        f"{TEMP_MARK}0123456789ab-data.vtool": pointer[: len(pointer) // 2],  # a pointer being written
        f"{TEMP_MARK}0123456789ab-.gitignore": b"/da",
        f"data/sub/{TEMP_MARK}0123456789ab-b.csv": b"half of b",  # a file being checked out
    }
    for rel, data in debris.items():
        project.write(rel, data)
    stray_object = project.cache_dir / "ab" / f"{TEMP_MARK}0123456789ab-cdef"
    stray_object.parent.mkdir(exist_ok=True)
    stray_object.write_bytes(b"half an object")

    assert project.status()["data"]["state"] == "in sync"
    assert project.add("data")["added"][0]["changed"] is False
    project.path("data/a.csv").unlink()
    project.ok("checkout")
    assert project.read("data/a.csv") == b"a\n"
    assert not list(project.path("data").rglob(f"{TEMP_MARK}*"))  # checkout cleans its own debris
    assert project.ok("verify", "--json").json()["ok"] is True
    assert stray_object.exists()  # left for gc, which knows no other process is writing it
