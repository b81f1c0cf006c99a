"""A flipped byte and a truncated object in the cache: named by verify, refused by checkout, repaired by fetch."""

from __future__ import annotations

import os
import random
from pathlib import Path

from projectkit import Workdir, cache_sound

from integration.s3helpers import S3Bucket

SEED = 7


def _damage(path: Path, how: str) -> None:
    """Flip one byte in the middle (same size) or cut the object short, as a bad disk or a crash would."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(bytes(data[: len(data) // 3]))


def test_flipped_and_truncated_objects_are_named_refused_and_repaired_from_s3(
        project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str]) -> None:
    rng = random.Random(SEED)
    project.loose_only()  # damages object files by hand (packed objects: the test below)
    project.write_tree("data", {"a.csv": rng.randbytes(50_000), "sub/b.csv": rng.randbytes(20_000),
                                "big.bin": rng.randbytes(3 * 1024 * 1024)})
    project.write("model.bin", rng.randbytes(100_000))
    project.add("data", "model.bin")
    project.commit("data")
    project.add_remote(s3_bucket.url, endpoint=s3_bucket.server.endpoint, default=True)
    project.ok("push")
    original = {**project.snapshot("data"), **project.snapshot("model.bin")}
    flipped, cut, model = project.file_oid("a.csv"), project.file_oid("big.bin"), project.pointer("model.bin").oid
    _damage(project.object_path(flipped), "flip")
    _damage(project.object_path(cut), "truncate")
    _damage(project.object_path(model), "flip")
    for rel in ("data/a.csv", "data/big.bin", "model.bin"):
        project.path(rel).unlink()

    # checkout refuses them: the truncated one before writing anything, the flipped one as it is read
    refused = project.fails("checkout", "data")
    assert cut in refused.err and "Traceback" not in refused.err
    assert not project.path("data/a.csv").exists() and not project.path("data/big.bin").exists()
    refused = project.fails("checkout", "model.bin")
    assert model in refused.err and "corrupt" in refused.err
    assert not project.path("model.bin").exists()
    assert not project.object_path(model).exists()  # useless as it was: removed, so fetch restores it

    # verify names the other two, and removes them too
    report = project.run("verify", "--json")
    assert report.code == 1
    bad = {b["oid"]: b for b in report.json()["bad"]}
    assert bad[flipped]["problem"] == "corrupt" and bad[cut]["problem"] == "truncated"
    assert model not in bad  # checkout moved it aside: now absent, reported apart from the corrupt ones
    assert {b["oid"]: b["problem"] for b in report.json()["missing"]}[model] == "missing (not fetched)"
    assert bad[flipped]["removed"] and bad[cut]["removed"]
    human = project.run("verify")
    assert human.code == 1 and flipped in human.out and cut in human.out

    # fetch from the real S3 remote repairs the cache; checkout then rebuilds the exact bytes
    assert project.ok("fetch", "--json").json()["transferred"] == 3
    cache_sound(project.cache_dir)
    project.ok("checkout")
    assert {**project.snapshot("data"), **project.snapshot("model.bin")} == original
    assert project.run("status", "--check").code == 0
    assert project.ok("verify", "--json").json()["ok"] is True


def test_a_truncated_object_is_repaired_by_fetch_alone(project: Workdir, s3_bucket: S3Bucket,
                                                       s3_environ: dict[str, str]) -> None:
    """fetch checks sizes, so a cut-short object is replaced even without verify (a flipped byte needs verify)."""
    project.loose_only()
    project.write("data/big.bin", random.Random(SEED).randbytes(2 * 1024 * 1024))
    project.add("data")
    project.add_remote(s3_bucket.url, endpoint=s3_bucket.server.endpoint, default=True)
    project.ok("push")
    oid = project.file_oid("big.bin")
    _damage(project.object_path(oid), "truncate")
    assert project.ok("fetch", "--json").json()["transferred"] == 1
    cache_sound(project.cache_dir)
    project.path("data/big.bin").unlink()
    project.ok("checkout")
    assert project.run("status", "--check").code == 0


def _flip_in_remote_pack(s3_bucket: S3Bucket, data: bytes) -> str:
    """Flip one byte of an object inside the remote pack holding it; return the pack's key."""
    client = s3_bucket.client
    for item in client.list_objects_v2(Bucket=s3_bucket.name, Prefix=s3_bucket.key("packs/"))["Contents"]:
        raw = client.get_object(Bucket=s3_bucket.name, Key=item["Key"])["Body"].read()
        at = raw.find(data)
        if at >= 0:
            flipped = raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:]
            client.put_object(Bucket=s3_bucket.name, Key=item["Key"], Body=flipped)
            return item["Key"]
    raise AssertionError("object not found in any remote pack")


def test_a_flipped_byte_in_a_remote_pack_never_reaches_the_workspace_and_verify_names_it(
        project: Workdir, s3_bucket: S3Bucket, s3_environ: dict[str, str], tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    files = {f"part{i}/f{j}.bin": rng.randbytes(3000) for i in range(3) for j in range(10)}
    project.write_tree("data", files)
    project.add("data")
    project.ok("remote", "add", "origin", s3_bucket.url, "--endpoint-url", s3_bucket.server.endpoint, "--default")
    project.commit("data")
    project.ok("push")
    victim = "part1/f3.bin"
    _flip_in_remote_pack(s3_bucket, files[victim])

    clone = Workdir(tmp_path / "clone")
    project.git("clone", "-q", str(project.root), str(clone.root))
    failed = clone.run("pull", "--json")
    assert failed.code == 1 and "corrupt" in failed.err
    assert not clone.path(f"data/{victim}").exists()  # the workspace never receives bad bytes
    report = clone.run("verify", "-r", "origin", "--json")
    assert report.code == 1
    bad = report.json()["bad"]
    assert [(b["problem"], b["datasets"]) for b in bad] == [("corrupt", ["data"])]
    # verify marked the pack: a push from a clone that has the bytes uploads them again, and pull completes
    assert project.ok("push", "--json").json()["transferred"] >= 1
    clone.ok("pull")
    assert clone.snapshot("data") == project.snapshot("data")
