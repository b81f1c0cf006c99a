"""Network faults: the S3 server dies mid-push and mid-fetch, answers 5xx or SlowDown, cuts a body short, hangs.

Each fault ends in bounded retries and one clear error line (never a traceback); a partial download never
enters the cache, a partial upload never appears under its key, and once the fault is gone the same
command finishes the job. The real server (SeaweedFS) is killed and restarted for the outages; a small
fake endpoint (faultserver.py) produces the faults a real server only shows under load.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from projectkit import Result, Workdir, cache_sound

from integration.faultserver import FaultServer
from integration.s3helpers import S3Bucket
from integration.s3server import S3Server
from vtool.fsutil import TEMP_MARK
from vtool.hashing import hash_bytes

FILES = 400
FILE_SIZE = 64 * 1024
STARTED_OBJECTS = 30  # kill the server once this many objects have moved: well inside the transfer
FAIL_BOUND_S = 60
ATTEMPTS = 3  # the first request and two retries
OBJECT = random.Random(5).randbytes(300_000)
OID = hash_bytes(OBJECT)
BUCKET, PREFIX = "faulty", "team/data"


def _one_error_line(result: Result) -> str:
    assert result.code == 1, f"exit {result.code}: {result.err}"
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    return errors[0]


def _kill_server_during(project: Workdir, env: dict[str, str], server: S3Server, started: Callable[[], bool],
                        command: str) -> None:
    """Run `vtool COMMAND -j 2`, kill the server once `started` holds, and require one clear error line."""
    proc = _vtool(project, env, command, "-j", "2")
    _until(started, proc)
    server.kill()
    out, err = proc.communicate(timeout=FAIL_BOUND_S * 2)
    line = _one_error_line(Result(proc.returncode, out, err))
    assert "cannot reach" in line or "breaking off" in line, line


def _many_files(project: Workdir) -> None:
    project.loose_only()  # one cache file and one request per object: the unit these faults cut
    rng = random.Random(11)
    for i in range(FILES):
        project.write(f"data/part-{i // 100}/f{i:04}.bin", rng.randbytes(FILE_SIZE))
    project.add("data")


def _until(condition, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + FAIL_BOUND_S
    while not condition():
        assert proc.poll() is None, "the transfer finished before the server could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _vtool(project: Workdir, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vtool", *args], cwd=project.root, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _with_remote(project: Workdir, bucket: S3Bucket) -> None:
    project.add_remote(bucket.url, "--loose", endpoint=bucket.server.endpoint, default=True)


def test_server_killed_mid_fetch_then_rerun_completes(project: Workdir, s3_bucket: S3Bucket, s3_outage: S3Server,
                                                      s3_environ: dict[str, str], s3_env: dict[str, str]) -> None:
    _many_files(project)
    _with_remote(project, s3_bucket)
    project.ok("push")
    everything = project.cache_oids()
    for oid in everything:
        os.unlink(project.object_path(oid))

    _kill_server_during(project, s3_env, s3_outage, lambda: len(project.cache_oids()) >= STARTED_OBJECTS, "fetch")
    got = cache_sound(project.cache_dir)  # what arrived is whole; what was cut off never entered the cache
    assert STARTED_OBJECTS <= len(got) < len(everything)

    s3_outage.start()
    project.ok("fetch")
    assert cache_sound(project.cache_dir) == everything


def test_server_killed_mid_push_then_rerun_completes(project: Workdir, s3_bucket: S3Bucket, s3_outage: S3Server,
                                                     s3_environ: dict[str, str], s3_env: dict[str, str]) -> None:
    _many_files(project)
    _with_remote(project, s3_bucket)
    _kill_server_during(project, s3_env, s3_outage, lambda: len(s3_bucket.list_keys()) >= STARTED_OBJECTS, "push")

    s3_outage.start()
    assert STARTED_OBJECTS <= len(s3_bucket.sound_oids()) < len(project.cache_oids())
    project.ok("push")
    assert s3_bucket.sound_oids() == project.cache_oids()
    assert project.run("status", "--remote", "--check").code == 0


# --- faults a real server shows only under load, from the fake endpoint -----------------------------------------

@pytest.fixture
def faulty(project: Workdir, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workdir, FaultServer]]:
    """A project whose file dataset model.bin is only on a remote served by the fault server."""
    for name, value in {"AWS_ACCESS_KEY_ID": "AKFAULT", "AWS_SECRET_ACCESS_KEY": "fault-secret",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("vtool.remote.s3.READ_TIMEOUT", 1)  # a hung server then costs seconds, not minutes
    server = FaultServer().start()
    server.objects[f"/{BUCKET}/{PREFIX}/{OID[7:9]}/{OID[9:]}"] = OBJECT
    project.loose_only()  # the object is a file of its own, so the test can remove it
    project.write("model.bin", OBJECT)
    project.add("model.bin")
    os.unlink(project.object_path(OID))
    project.add_remote(f"s3://{BUCKET}/{PREFIX}", "--loose", endpoint=server.endpoint, default=True)
    yield project, server
    server.stop()


@pytest.mark.parametrize(("mode", "fragment"), [
    ("503", "kept failing while downloading"),
    ("slowdown", "SlowDown"),
    ("500", "InternalError"),
    ("reset-body", "kept breaking off while downloading"),
    ("hang", "Read timeout"),
])
def test_fetch_retries_a_bounded_number_of_times_then_fails_clearly(faulty: tuple[Workdir, FaultServer], mode: str,
                                                                    fragment: str) -> None:
    project, server = faulty
    server.mode = mode
    started = time.monotonic()
    line = _one_error_line(project.run("fetch", "-j", "1"))
    # Every command first reads the remote's format file (absent here: a loose-layout remote); a server
    # failing every request fails that read, a server cutting bodies short fails the object's download.
    first = "vtool-format" if mode != "reset-body" else OID
    assert fragment in line and first in line, line
    assert len(server.requests) == ATTEMPTS + (mode == "reset-body"), server.requests
    assert time.monotonic() - started < FAIL_BOUND_S
    assert not project.object_path(OID).exists()
    assert not [p for p in project.cache_dir.rglob(f"{TEMP_MARK}*")]  # the partial temp file is gone too


def test_a_body_cut_short_is_resumed_where_it_stopped(faulty: tuple[Workdir, FaultServer]) -> None:
    project, server = faulty
    server.mode = "reset-once"
    project.ok("fetch")
    assert project.object_path(OID).read_bytes() == OBJECT
    # the format file (absent: 404), the object cut short, then the rest of it
    assert len(server.requests) == 3 and server.requests[2].endswith(f"bytes={len(OBJECT) // 2}-")
    project.path("model.bin").unlink()
    project.ok("checkout")
    assert project.read("model.bin") == OBJECT


def test_push_to_a_failing_server_is_bounded_and_clear(faulty: tuple[Workdir, FaultServer], tmp_path: Path) -> None:
    project, server = faulty
    project.write("other.bin", b"other")
    project.add("other.bin")
    server.mode = "503"
    started = time.monotonic()
    line = _one_error_line(project.run("push", "-j", "1", "other.bin"))
    assert "kept failing" in line
    assert len(server.requests) == ATTEMPTS, server.requests
    assert time.monotonic() - started < FAIL_BOUND_S


def test_a_download_longer_than_its_object_is_cut_off(faulty: tuple[Workdir, FaultServer]) -> None:
    """A broken or hostile server streaming more than the pointer's size cannot fill the disk."""
    project, server = faulty
    server.objects[f"/{BUCKET}/{PREFIX}/{OID[7:9]}/{OID[9:]}"] = OBJECT + bytes(20 * 1024 * 1024)
    result = project.run("fetch")  # a per-object failure: reported in fetch's summary, exit 1
    assert result.code == 1 and "Traceback" not in result.err
    assert f"download of {OID} is corrupt: more than the {len(OBJECT)} bytes expected" in result.err, result
    assert not project.object_path(OID).exists()
    assert not [p for p in project.cache_dir.rglob(f"{TEMP_MARK}*")]
