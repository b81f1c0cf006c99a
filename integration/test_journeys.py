"""End-to-end journeys against the real S3 server: push, clone, pull, history, and the faults users hit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from projectkit import Workdir, cache_sound, git_in

from integration.s3helpers import S3Bucket

FILES_BEFORE_KILL = 300
FILE_SIZE = 64 * 1024
UNREACHABLE_BOUND_S = 60
KILL_DELAY_S = 1.0


def _dataset(project: Workdir) -> None:
    project.write_tree("data", {"a.txt": "alpha\n", "sub/b.bin": os.urandom(70_000), "sub/deep/c.csv": "x,y\n1,2\n",
                                "empty.txt": b"", "big.bin": os.urandom(9 * 1024 * 1024)})
    project.write("data/run.sh", "#!/bin/sh\necho hi\n", executable=True)


def _with_remote(project: Workdir, bucket: S3Bucket, *extra: str) -> None:
    project.add_remote(bucket.url, *extra, endpoint=bucket.server.endpoint, default=True)


def _pushed_v1(project: Workdir, bucket: S3Bucket) -> None:
    """Track the standard dataset, commit it as v1 and push it to the bucket."""
    _dataset(project)
    _with_remote(project, bucket)
    project.add("data")
    project.commit("v1")
    project.ok("push")


def _clone(project: Workdir, dest: Path) -> Workdir:
    git_in(dest.parent, "clone", "-q", str(project.root), dest.name)
    return Workdir(dest)


def test_push_clone_pull_is_byte_identical(project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str],
                                           tmp_path: Path) -> None:
    _dataset(project)
    _with_remote(project, s3_bucket)
    project.add("data")
    project.commit("data v1")
    first = project.ok("push", "--json").json()
    assert first["failed"] == {} and first["transferred"] == len(project.cache_oids())
    assert s3_bucket.sound_oids() == project.cache_oids()
    again = project.ok("push", "--json").json()
    assert again["transferred"] == 0 and again["present"] == first["transferred"]
    remote = project.ok("status", "--remote", "--json").json()
    assert [d["missing"] for d in remote["datasets"]] == [0]

    clone = _clone(project, tmp_path / "clone")
    clone.ok("pull")
    assert clone.snapshot("data") == project.snapshot("data")
    assert os.access(clone.path("data/run.sh"), os.X_OK)
    assert clone.run("status", "--check").code == 0


def test_status_remote_counts_unpushed_files(project: Workdir, s3_bucket: S3Bucket,
                                             s3_environ: dict[str, str]) -> None:
    _dataset(project)
    _with_remote(project, s3_bucket)
    project.add("data")
    before = project.ok("status", "--remote", "--json").json()["datasets"][0]
    assert before["missing"] == before["objects"] == len(project.cache_oids())
    project.ok("push")
    project.write("data/new.txt", "new file\n")
    project.add("data")
    after = project.ok("status", "--remote", "--json").json()["datasets"][0]
    # the new file plus the two manifests on its path (data/ itself only)
    assert after["missing"] == 2 and after["missing_bytes"] > len("new file\n")
    assert project.run("status", "--remote", "--check").code == 1  # unpushed data is out of sync
    project.ok("push")
    assert project.run("status", "--remote", "--check").code == 0


def test_fetch_of_unpushed_revision_names_missing_objects(project: Workdir, s3_bucket: S3Bucket,
                                                           s3_environ: dict[str, str], tmp_path: Path) -> None:
    _pushed_v1(project, s3_bucket)
    project.write("data/a.txt", "alpha v2\n")
    project.add("data")
    project.commit("v2, never pushed")
    v2_root = project.pointer("data").oid

    clone = _clone(project, tmp_path / "clone")
    result = clone.run("fetch", "--json")
    assert result.code == 1
    assert set(result.json()["failed"]) == {v2_root}


def test_fetch_names_exactly_the_objects_the_remote_lost(project: Workdir, s3_bucket: S3Bucket,
                                                         s3_environ: dict[str, str], tmp_path: Path) -> None:
    _dataset(project)
    _with_remote(project, s3_bucket, "--loose")  # one key per object, so single objects can be lost
    project.add("data")
    project.commit("v1")
    project.ok("push")
    listing = project.ok("ls", "--json").json()["files"]
    lost = sorted({f["oid"] for f in listing if f["path"] in ("data/a.txt", "data/sub/deep/c.csv")})
    for oid in lost:
        s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=s3_bucket.key(f"{oid[7:9]}/{oid[9:]}"))
    clone = _clone(project, tmp_path / "clone")
    result = clone.run("fetch", "--json")
    assert result.code == 1
    assert sorted(result.json()["failed"]) == lost
    assert clone.run("pull").code == 1


def test_checkout_old_commit_in_fresh_clone_fetches_it(project: Workdir, s3_bucket: S3Bucket,
                                                       s3_environ: dict[str, str], tmp_path: Path) -> None:
    _with_remote(project, s3_bucket)
    versions = []
    for i, change in enumerate(({"a.txt": "one\n", "b.txt": "bee\n"}, {"a.txt": "two\n", "c.txt": "sea\n"},
                                {"d/e.txt": "deep\n"})):
        project.write_tree("data", change)
        if i == 2:
            project.path("data/b.txt").unlink()
        project.add("data")
        versions.append((project.commit(f"v{i + 1}"), project.snapshot("data")))
        project.ok("push")
    clone = _clone(project, tmp_path / "clone")
    for sha, snap in versions + versions[::-1]:
        clone.ok("checkout", sha)
        assert clone.snapshot("data") == snap
        assert clone.git("rev-parse", "HEAD").strip() == sha


def test_unreachable_endpoint_fails_fast_with_one_line(project: Workdir, s3_environ: dict[str, str]) -> None:
    project.write("data/a.txt", "a")
    project.add("data")
    port = _closed_port()
    project.add_remote("s3://bucket/x", endpoint=f"http://127.0.0.1:{port}")
    started = time.monotonic()
    result = project.run_process("push", env=s3_environ)
    assert result.code == 1
    assert "Traceback" not in result.err and "cannot reach" in result.err.lower()
    assert time.monotonic() - started < UNREACHABLE_BOUND_S


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_bucket_says_how_to_create_it(project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str]
                                             ) -> None:
    project.write("data/a.txt", "a")
    project.add("data")
    project.add_remote("s3://no-such-bucket-vt/x", endpoint=s3_bucket.server.endpoint)
    result = project.run_process("push", env=s3_environ)
    assert result.code == 1
    assert "no-such-bucket-vt" in result.err and "mb" in result.err and "Traceback" not in result.err


def test_wrong_secret_is_an_auth_error_and_never_printed(project: Workdir, s3_bucket: S3Bucket,
                                                         s3_environ: dict[str, str]) -> None:
    project.write("data/a.txt", "a")
    project.add("data")
    _with_remote(project, s3_bucket)
    secret = "wrong-secret-value-1234567890"
    result = project.run_process("push", "-v", env={**s3_environ, "AWS_SECRET_ACCESS_KEY": secret})
    assert result.code == 1
    assert secret not in result.out + result.err
    assert s3_environ["AWS_SECRET_ACCESS_KEY"] not in result.out + result.err


def test_server_killed_mid_push_then_rerun_completes(project: Workdir, s3_bucket: S3Bucket, s3_outage,
                                                     s3_environ: dict[str, str]) -> None:
    for i in range(FILES_BEFORE_KILL):
        project.write(f"data/f{i:04}.bin", os.urandom(FILE_SIZE))
    project.add("data")
    _with_remote(project, s3_bucket)
    proc = subprocess.Popen([sys.executable, "-m", "vtool", "push", "-j", "2"], cwd=project.root,
                            env={**os.environ, **s3_environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(KILL_DELAY_S)
    s3_outage.kill()
    _, err = proc.communicate(timeout=UNREACHABLE_BOUND_S * 2)
    if proc.returncode != 0:
        assert "Traceback" not in err and err.strip(), err
    s3_outage.start()
    project.ok("push")
    assert s3_bucket.sound_oids() == project.cache_oids()


def test_pull_into_clone_with_shared_cache_dir(project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str],
                                               tmp_path: Path) -> None:
    _pushed_v1(project, s3_bucket)
    clone = _clone(project, tmp_path / "clone")
    shared = tmp_path / "shared-cache"
    clone.ok("config", "cache.dir", str(shared), "--local")
    clone.ok("pull")
    assert clone.snapshot("data") == project.snapshot("data")
    assert cache_sound(shared) == project.cache_oids()
    shutil.rmtree(clone.path("data"))
    clone.ok("checkout")
    assert clone.snapshot("data") == project.snapshot("data")


def test_api_reads_an_old_revision_in_a_fresh_clone_from_s3(project: Workdir, s3_bucket: S3Bucket,
                                                            s3_environ: dict[str, str], tmp_path: Path) -> None:
    import vtool.api

    _with_remote(project, s3_bucket)
    project.write_tree("data", {"train.csv": "a,b\n1,2\n", "sub/x.bin": b"\x00\x01"})
    project.add("data")
    v1 = project.commit("v1")
    project.ok("push")
    project.write_tree("data", {"train.csv": "a,b\n3,4\n"})
    project.add("data")
    project.commit("v2")
    project.ok("push")
    clone = _clone(project, tmp_path / "clone")
    assert vtool.api.read_bytes("data/train.csv", rev=v1, repo=clone.root) == b"a,b\n1,2\n"
    with vtool.api.open("data/sub/x.bin", rev=v1, repo=clone.root) as f:
        assert f.read() == b"\x00\x01"
    assert vtool.api.read_bytes("data/train.csv", repo=clone.root) == b"a,b\n3,4\n"
    assert not clone.path("data").exists()  # nothing was checked out


def test_packed_push_and_partial_pull_use_few_requests(project: Workdir, s3_bucket: S3Bucket,
                                                       s3_environ: dict[str, str], tmp_path: Path) -> None:
    for i in range(600):
        project.write(f"images/d{i // 100}/f{i:03}.bin", os.urandom(2048))
    _dataset(project)
    _with_remote(project, s3_bucket)
    project.add("data", "images")
    project.commit("v1")
    pushed = project.ok("push", "--json").json()
    assert pushed["failed"] == {} and pushed["transferred"] == len(project.cache_oids())
    keys = s3_bucket.list_keys()
    assert len(keys) <= 8  # format file, big.bin, a data pack, a tree pack, one index: not 600 keys
    assert s3_bucket.sound_oids() == project.cache_oids()
    clone = _clone(project, tmp_path / "clone")
    clone.ok("pull", "images")  # one dataset of two
    assert clone.snapshot("images") == project.snapshot("images")
    assert not clone.path("data").exists()
    assert not any(p.stat().st_size > 8 * 1024 * 1024 for p in clone.cache_dir.rglob("*") if p.is_file())
    clone.ok("pull")
    assert clone.snapshot("data") == project.snapshot("data")


def test_a_loose_format_remote_from_the_current_release_still_pulls_and_upgrades(
        project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str], tmp_path: Path) -> None:
    _dataset(project)
    _with_remote(project, s3_bucket, "--loose")  # the layout every release before packs wrote
    project.add("data")
    project.commit("v1")
    project.ok("push")
    assert not any(k.endswith("vtool-format") for k in s3_bucket.list_keys())
    clone = _clone(project, tmp_path / "clone")
    _with_remote(clone, s3_bucket, "--force")  # this clone writes packs
    clone.ok("pull")
    assert clone.snapshot("data") == project.snapshot("data")
    clone.write("data/new.txt", "new\n")
    clone.add("data")
    clone.ok("push")
    assert any(k.endswith("vtool-format") for k in s3_bucket.list_keys())
    assert s3_bucket.sound_oids() >= clone.cache_oids()
    fresh = _clone(project, tmp_path / "fresh")
    fresh.ok("pull")  # old loose objects and new packs read side by side
    assert fresh.snapshot("data") == project.snapshot("data")


def test_a_remote_of_a_future_format_is_refused_clearly(project: Workdir, s3_bucket: S3Bucket,
                                                         s3_environ: dict[str, str]) -> None:
    _dataset(project)
    _with_remote(project, s3_bucket)
    project.add("data")
    s3_bucket.put_raw("vtool-format", b"vtool-store 2\n")
    for args in (("push",), ("fetch",), ("status", "--remote")):
        refused = project.fails(*args)
        assert "uses object-store format 2; this vtool reads up to format 1" in refused.err
        assert "Traceback" not in refused.err
