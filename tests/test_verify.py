"""`vtool verify`: every object and workspace file is re-hashed; bad objects are named, removed and repairable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from projectkit import Workdir

from vtool.ops.project import STAT_DB, STATE_DIR
from vtool.statcache import Stamp, StatCache

FILES = {"a.csv": "alpha\n" * 50, "b.csv": "beta\n" * 40, "sub/c.csv": "gamma\n" * 30, "sub/d.csv": "delta\n"}


@pytest.fixture
def tracked(project: Workdir) -> Workdir:
    """A project with a folder dataset and a file dataset, added and committed."""
    project.loose_only()  # these tests unlink and damage object files
    project.write_tree("data", FILES)
    project.write("model.bin", "weights" * 100)
    project.ok("add", "data", "model.bin")
    project.commit("data")
    return project


def file_oid(project: Workdir, rel: str) -> str:
    """The oid of a file of the `data` dataset, from its manifests."""
    return project.file_oid(rel)


def damage(path: Path, how: str) -> None:
    """Flip one byte (same size) or cut the file short."""
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:] if how == "flip" else data[: len(data) // 2])


def verify(project: Workdir, *args: str, code: int = 0) -> dict[str, Any]:
    result = project.run("verify", *args, "--json")
    assert result.code == code, result.err
    return result.json()


def bad_by_oid(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["oid"]: b for b in doc["bad"]}


def test_a_clean_project_verifies(tracked: Workdir) -> None:
    doc = verify(tracked)
    assert doc["ok"] is True and doc["bad"] == []
    assert doc["objects"] == 4 + 3  # files a, b, c, d + model.bin; manifests of data/ and data/sub/
    assert {d["path"]: d["state"] for d in doc["workspace"]} == {"data": "in sync", "model.bin": "in sync"}
    assert "all intact" in tracked.ok("verify").out


def test_flipped_and_truncated_objects_are_named_removed_and_fail(tracked: Workdir) -> None:
    flipped, cut = file_oid(tracked, "a.csv"), file_oid(tracked, "sub/c.csv")
    damage(tracked.object_path(flipped), "flip")
    damage(tracked.object_path(cut), "truncate")

    doc = verify(tracked, code=1)
    bad = bad_by_oid(doc)
    assert set(bad) == {flipped, cut}
    assert bad[flipped]["problem"] == "corrupt" and bad[cut]["problem"] == "truncated"
    assert bad[flipped]["datasets"] == ["data"] and bad[flipped]["kind"] == "file"
    assert all(b["removed"] for b in bad.values())
    assert not tracked.object_path(flipped).exists() and not tracked.object_path(cut).exists()

    human = tracked.run("verify")
    assert human.code == 0  # now only missing: reported, with the fetch that restores them, but nothing is corrupt
    assert f"missing (not fetched): file {flipped}" in human.out
    assert "to get the missing objects run: vtool fetch data" in human.err


def test_a_missing_object_and_a_corrupt_manifest_are_reported(tracked: Workdir) -> None:
    gone = file_oid(tracked, "b.csv")
    os.unlink(tracked.object_path(gone))
    sub = tracked.folders(tracked.pointer("data").oid)["sub"]
    damage(tracked.object_path(sub), "flip")

    doc = verify(tracked, code=1)
    bad, missing = bad_by_oid(doc), {b["oid"]: b for b in doc["missing"]}
    assert missing[gone]["problem"] == "missing (not fetched)" and not missing[gone]["removed"]
    assert gone not in bad
    assert bad[sub]["problem"] == "corrupt" and bad[sub]["kind"] == "manifest" and bad[sub]["removed"]


def test_the_file_dataset_is_checked_too(tracked: Workdir) -> None:
    model = tracked.pointer("model.bin").oid
    damage(tracked.object_path(model), "flip")
    bad = bad_by_oid(verify(tracked, "model.bin", code=1))
    assert set(bad) == {model} and bad[model]["datasets"] == ["model.bin"]
    assert verify(tracked, "data")["ok"] is True  # targets narrow what is checked


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_verify_then_fetch_repairs_the_cache_end_to_end(tracked: Workdir, remote_dir: Path, how: str) -> None:
    tracked.add_remote(remote_dir, "--loose", default=True)
    tracked.ok("push")
    oid = file_oid(tracked, "a.csv")
    damage(tracked.object_path(oid), how)

    failed = tracked.run("verify")
    assert failed.code == 1 and oid in failed.out and "quarantine" in failed.out
    tracked.ok("fetch")
    assert verify(tracked)["ok"] is True
    for path in tracked.path("data").rglob("*.csv"):
        path.unlink()
    tracked.ok("checkout")
    assert tracked.read("data/a.csv") == FILES["a.csv"].encode()


def test_a_modified_workspace_file_is_found_even_when_the_stat_cache_vouches_for_it(tracked: Workdir) -> None:
    path = tracked.path("data/sub/c.csv")
    good = file_oid(tracked, "sub/c.csv")
    path.write_text("gamma\n" * 29 + "GAMMA\n")  # same size
    # Forge the stat cache: it now swears the edited file still has its old hash.
    stats = StatCache(tracked.vtool_dir / STATE_DIR / STAT_DB)
    stats.record("data/sub/c.csv", Stamp.of(os.stat(path)), good)
    stats.close()
    assert tracked.status()["data"]["state"] == "in sync"

    doc = verify(tracked, code=1)
    assert doc["bad"] == []
    data = next(d for d in doc["workspace"] if d["path"] == "data")
    assert data["state"] == "modified" and data["modified"] == ["sub/c.csv"]
    assert "sub/c.csv" in tracked.run("verify").out
    assert tracked.status()["data"]["state"] == "modified"  # verify's fresh hashes corrected the stat cache


def test_a_dataset_absent_from_the_workspace_is_not_a_failure(tracked: Workdir) -> None:
    os.unlink(tracked.path("model.bin"))
    doc = verify(tracked)
    assert {d["path"]: d["state"] for d in doc["workspace"]}["model.bin"] == "not in workspace"


def _remote_path(remote_dir: Path, oid: str) -> Path:
    digest = oid.split(":", 1)[1]
    return remote_dir / digest[:2] / digest[2:]


def test_remote_corruption_is_detected_removed_and_repaired_by_push(tracked: Workdir, remote_dir: Path) -> None:
    tracked.add_remote(remote_dir, "--loose", default=True)
    tracked.ok("push")
    assert verify(tracked, "-r", "origin")["ok"] is True
    flipped, cut, gone = file_oid(tracked, "a.csv"), file_oid(tracked, "b.csv"), tracked.pointer("model.bin").oid
    damage(_remote_path(remote_dir, flipped), "flip")
    damage(_remote_path(remote_dir, cut), "truncate")
    os.unlink(_remote_path(remote_dir, gone))
    cache_before = tracked.cache_oids()

    doc = verify(tracked, "-r", "origin", code=1)
    bad = bad_by_oid(doc)
    assert doc["target"] == "origin" and doc["workspace"] == []
    assert {oid: b["problem"] for oid, b in bad.items()} == {flipped: "corrupt", cut: "truncated"}
    assert [(b["oid"], b["problem"]) for b in doc["missing"]] == [(gone, "missing (not pushed)")]
    assert tracked.cache_oids() == cache_before  # streamed for hashing, never into the cache

    tracked.ok("push")
    assert verify(tracked, "-r", "origin")["ok"] is True


def test_remote_verify_reads_manifests_from_the_remote_not_the_cache(tracked: Workdir, remote_dir: Path) -> None:
    tracked.add_remote(remote_dir, "--loose", default=True)
    tracked.ok("push")
    sub = tracked.folders(tracked.pointer("data").oid)["sub"]
    damage(_remote_path(remote_dir, sub), "flip")
    bad = bad_by_oid(verify(tracked, "-r", "origin", code=1))
    assert bad[sub]["kind"] == "manifest" and bad[sub]["problem"] == "corrupt"


def test_an_edit_made_through_a_symlink_survives_verify(project: Workdir) -> None:
    project.loose_only()  # only loose objects can be symlinked
    project.ok("config", "cache.link", "symlink")
    project.write_tree("data", {"f.txt": "original\n"})
    project.add("data")
    import shutil
    shutil.rmtree(project.path("data"))
    project.ok("checkout")
    target = os.path.realpath(project.path("data/f.txt"))
    os.chmod(target, 0o644)
    with open(target, "w") as edit:
        edit.write("my precious edit\n")
    assert project.run("verify").code == 1
    kept = [p.read_bytes() for p in (project.cache_dir / "quarantine").iterdir()]
    assert kept == [b"my precious edit\n"]


def test_a_pointer_calling_a_file_a_folder_never_gets_it_removed(project: Workdir, tmp_path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.write("big.bin", b"x" * 4096)
    project.add("big.bin")
    project.add_remote(remote, "--loose")
    project.ok("push")
    oid = project.pointer("big.bin").oid
    project.write("evil.vtool", f"version: 1\ntype: dir\npath: evil\noid: {oid}\nsize: 1\nfiles: 1\n")
    for args in (("verify", "evil"), ("verify", "-r", "origin", "evil")):
        result = project.run(*args, "--json")
        assert result.code == 1
        assert [b["problem"] for b in result.json()["bad"]] == ["not a manifest"]
    assert (remote / oid[7:9] / oid[9:]).read_bytes() == b"x" * 4096
    assert project.object_bytes(oid) == b"x" * 4096


def test_a_clone_that_pulled_one_dataset_of_two_is_not_corrupt(tracked: Workdir, remote_dir: Path,
                                                               tmp_path: Path) -> None:
    tracked.add_remote(remote_dir, default=True)
    tracked.git("add", ".vtool")
    tracked.commit("remote")
    tracked.ok("push")
    from projectkit import git_in

    git_in(tmp_path, "clone", "-q", str(tracked.root), "clone")
    clone = Workdir(tmp_path / "clone")
    clone.ok("pull", "model.bin")
    result = clone.run("verify")
    assert result.code == 0, result.err
    assert "missing (not fetched): manifest" in result.out and "(in data)" in result.out
    assert "corrupt" not in result.out and "bad" not in result.out
    assert "to get the missing objects run: vtool fetch data" in result.err
    doc = verify(clone)
    assert doc["ok"] is True and doc["bad"] == []
    assert {b["problem"] for b in doc["missing"]} == {"missing (not fetched)"}
    clone.ok("fetch", "data")
    assert verify(clone)["missing"] == []


def test_a_dataset_missing_on_the_remote_says_push(tracked: Workdir, remote_dir: Path) -> None:
    tracked.add_remote(remote_dir, default=True)
    tracked.ok("push", "model.bin")
    result = tracked.run("verify", "-r", "origin")
    assert result.code == 0
    assert "missing (not pushed)" in result.out
    assert "to get the missing objects run: vtool push data (in a clone that has them)" in result.err
