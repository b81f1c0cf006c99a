"""TARGETS inside a tracked folder: only that part is reported, moved or rewritten, and nothing else is touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from projectkit import Workdir, git_in

from vtool.hashing import hash_bytes

V1 = {"raw/2023/a.csv": "a 2023\n", "raw/2024/b.csv": "b 2024\n", "raw/2024/c.csv": "c 2024\n", "readme": "r\n"}
V2 = {**V1, "raw/2024/b.csv": "b 2024, fixed\n", "raw/2025/d.csv": "d 2025\n"}


@pytest.fixture
def history(project: Workdir, remote_dir: Path) -> Workdir:
    """`data` committed as v1 (tagged) and v2, both pushed to a local remote."""
    project.add_remote(remote_dir, default=True)
    project.commit_two_versions("data", V1, V2)
    project.ok("push", "--rev", "v1")
    return project


def clone(project: Workdir, tmp_path: Path) -> Workdir:
    git_in(tmp_path, "clone", "-q", str(project.root), "clone")
    return Workdir(tmp_path / "clone")


def files(project: Workdir, base: str = "data") -> dict[str, str]:
    root = project.path(base)
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_status_of_a_sub_folder_reports_only_that_part(history: Workdir) -> None:
    history.write("data/raw/2023/a.csv", "edited elsewhere\n")
    assert history.status("data/raw/2024") == {"data/raw/2024": {**history.status("data/raw/2024")["data/raw/2024"],
                                                                 "state": "in sync", "pointer": "data.vtool"}}
    history.write("data/raw/2024/new.csv", "new\n")
    part = history.status("data/raw/2024")["data/raw/2024"]
    assert (part["state"], part["added"], part["modified"]) == ("modified", ["new.csv"], [])
    assert history.status("data/raw/2023/a.csv")["data/raw/2023/a.csv"]["state"] == "modified"
    assert history.status("data/readme")["data/readme"]["state"] == "in sync"
    assert "data/raw/2024: modified (1 added" in history.ok("status", "data/raw/2024").out


def _raw(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode()


def test_a_fresh_clone_pulls_one_folder_and_only_its_objects(history: Workdir, tmp_path: Path) -> None:
    other = clone(history, tmp_path)
    other.ok("pull", "data/raw/2024", "--json")
    # the manifests on the way (tree packs come whole, so others too) and exactly the folder's two files
    fetched = {o for o in other.cache_oids() if not other.object_bytes(o).startswith(b"vtool-manifest 1\n")}
    assert fetched == {hash_bytes(_raw(V2["raw/2024/b.csv"])), hash_bytes(_raw(V2["raw/2024/c.csv"]))}
    assert files(other) == {"raw/2024/b.csv": V2["raw/2024/b.csv"], "raw/2024/c.csv": V2["raw/2024/c.csv"]}
    assert other.status("data/raw/2024")["data/raw/2024"]["state"] == "in sync"
    assert other.ok("fetch", "data/readme", "--json").json()["transferred"] == 1
    other.ok("checkout", "data/readme")
    assert other.read("data/readme") == b"r\n"
    assert not other.path("data/raw/2023").exists()


def test_a_partial_checkout_never_deletes_files_elsewhere(history: Workdir) -> None:
    history.write("data/raw/2023/uncached.csv", "only here\n")
    os.unlink(history.path("data/raw/2024/c.csv"))
    history.write("data/raw/2024/extra.csv", "cached? no\n")
    refused = history.fails("checkout", "data/raw/2024")
    assert "data/raw/2024/extra.csv" in refused.err  # not in the cache: never deleted without --force
    history.ok("add", "data")  # now every file is cached...
    history.git("checkout", "--", "data.vtool")  # ...and the pointer is v2 again
    result = history.ok("checkout", "data/raw/2024", "--json").json()
    assert result == {"datasets": [{"path": "data/raw/2024", "written": 1, "deleted": 1, "unchanged": 1}]}
    assert history.read("data/raw/2023/uncached.csv") == b"only here\n"  # outside the target: untouched
    assert files(history, "data/raw/2024") == {"b.csv": V2["raw/2024/b.csv"], "c.csv": V2["raw/2024/c.csv"]}


def test_rollback_of_a_sub_folder_rewrites_the_pointer_to_a_new_tree(history: Workdir) -> None:
    history.write("data/raw/2025/d.csv", "d, edited and kept\n")
    history.add("data")
    before = history.pointer("data")
    result = history.ok("checkout", "--json", "v1", "--", "data/raw/2024").json()
    assert [d["path"] for d in result["datasets"]] == ["data/raw/2024"]
    assert files(history, "data/raw/2024") == {"b.csv": V1["raw/2024/b.csv"], "c.csv": V1["raw/2024/c.csv"]}
    assert history.read("data/raw/2025/d.csv") == b"d, edited and kept\n"
    after = history.pointer("data")
    assert after.oid not in (before.oid, history_pointer(history, "v1").oid)
    assert history.status()["data"]["state"] == "in sync"  # workspace and the new tree agree
    rolled = history.ok("diff", "v1", "--json").json()["datasets"][0]  # v1 against the workspace
    assert [c["path"] for c in rolled["added"] + rolled["modified"] + rolled["deleted"]] == ["data/raw/2025/d.csv"]
    history.commit("roll 2024 back")
    assert history.ok("ls", "HEAD", "data/raw/2024/b.csv", "--json").json()["files"][0]["size"] == len(
        V1["raw/2024/b.csv"])


def test_rollback_of_a_path_the_revision_lacks_removes_it_from_tree_and_workspace(history: Workdir) -> None:
    history.ok("checkout", "v1", "--", "data/raw/2025")
    assert not history.path("data/raw/2025").exists()
    assert "data/raw/2025/d.csv" not in [f["path"] for f in history.ok("ls", "--json").json()["files"]]
    assert history.status()["data"]["state"] == "in sync"


def history_pointer(project: Workdir, rev: str):  # type: ignore[no-untyped-def]
    from vtool import pointer as ptr

    return ptr.loads(project.git("show", f"{rev}:data.vtool").encode(), "data.vtool")


def test_diff_and_ls_of_a_sub_path_between_revisions(history: Workdir) -> None:
    changed = history.ok("diff", "v1", "HEAD", "data/raw/2024", "--json").json()["datasets"]
    assert [(d["path"], [c["path"] for c in d["modified"]]) for d in changed] == [
        ("data/raw/2024", ["data/raw/2024/b.csv"])]
    assert history.ok("diff", "v1", "HEAD", "data/raw/2023", "--json").json()["datasets"][0]["status"] == "unchanged"
    added = history.ok("diff", "v1", "HEAD", "data/raw/2025", "--json").json()["datasets"][0]
    assert added["status"] == "added" and [c["path"] for c in added["added"]] == ["data/raw/2025/d.csv"]
    listed = history.ok("ls", "v1", "data/raw", "--json").json()["files"]
    assert [f["path"] for f in listed] == ["data/raw/2023/a.csv", "data/raw/2024/b.csv", "data/raw/2024/c.csv"]
    assert "data/raw/2025: not tracked by vtool at v1" in history.fails("ls", "v1", "data/raw/2025", code=2).err


def test_push_of_a_sub_folder_uploads_only_it(project: Workdir, remote_dir: Path) -> None:
    project.add_remote(remote_dir, default=True)
    project.replace_tree("data", V1)
    project.add("data")
    pushed = project.ok("push", "data/raw/2024", "--json").json()
    assert pushed["transferred"] == 3  # b.csv, c.csv and the folder's manifest: never data/ above them
    remote = project.ok("status", "--remote", "data/raw/2024", "--json").json()["datasets"]
    assert [(d["path"], d["missing"]) for d in remote] == [("data/raw/2024", 0)]
    assert project.ok("status", "--remote", "data", "--json").json()["datasets"][0]["missing"] > 0


def test_verify_of_a_sub_folder_checks_only_its_objects(history: Workdir) -> None:
    report = history.ok("verify", "data/raw/2024", "--json").json()
    assert report["objects"] == 3 and [d["path"] for d in report["workspace"]] == ["data/raw/2024"]


@pytest.mark.parametrize(("args", "fragment"), [
    (("status", "data/nope"), "data/nope: no such file or folder in the dataset data"),
    (("checkout", "data/nope"), "data/nope: no such file or folder in the dataset data in its pointer"),
    (("status", "model/x"), "model/x: not tracked by vtool"),
])
def test_a_path_in_no_dataset_is_a_usage_error(history: Workdir, args: tuple[str, ...], fragment: str) -> None:
    assert fragment in history.fails(*args, code=2).err


def test_a_path_below_a_file_dataset_is_refused(project: Workdir) -> None:
    project.write("model.bin", "w\n")
    project.add("model.bin")
    result = project.fails("status", "model.bin/x", code=2)
    assert "model.bin is a file, not a folder" in result.err


def test_targets_from_a_subfolder_and_overlapping_targets(history: Workdir) -> None:
    result = history.ok("status", "raw/2024", "--json", cwd="data").json()["datasets"]
    assert [d["path"] for d in result] == ["data/raw/2024"]
    both = history.ok("status", "data/raw", "data/raw/2024", "--json").json()["datasets"]
    assert [d["path"] for d in both] == ["data/raw"]  # the outer target covers the inner one


def test_history_nobody_pushed_names_dataset_revision_remote_and_the_push_that_fixes_it(
        project: Workdir, remote_dir: Path, tmp_path: Path) -> None:
    project.add_remote(remote_dir, default=True)
    project.commit_two_versions("data", V1, V2)
    project.ok("push")  # v2 only: v1 was committed but never pushed
    other = clone(project, tmp_path)
    for args in (("diff", "v1", "HEAD"), ("ls", "v1")):
        result = other.fails(*args)
        assert (f"error: data at v1: manifest {history_pointer(project, 'v1').oid} (or one below it) is neither "
                "in the cache nor on remote origin") in result.err, args
        assert "hint: it was committed but never pushed: run `vtool push --rev v1` in a clone that has it" in result.err
    project.ok("push", "--rev", "v1")
    changed = other.ok("diff", "v1", "HEAD", "--json").json()["datasets"][0]
    assert [c["path"] for c in changed["modified"]] == ["data/raw/2024/b.csv"]


def test_rollback_of_a_sub_folder_from_inside_the_dataset(history: Workdir) -> None:
    history.ok("checkout", "v1", "--", "raw/2024/b.csv", cwd="data")
    assert history.read("data/raw/2024/b.csv") == V1["raw/2024/b.csv"].encode()
    assert history.read("data/raw/2025/d.csv") == V2["raw/2025/d.csv"].encode()
    assert history.status()["data"]["state"] == "in sync"


def test_checkout_of_one_deleted_file_restores_just_it(history: Workdir) -> None:
    os.unlink(history.path("data/readme"))
    os.unlink(history.path("data/raw/2023/a.csv"))
    result = history.ok("checkout", "data/readme", "--json").json()
    assert result == {"datasets": [{"path": "data/readme", "written": 1, "deleted": 0, "unchanged": 0}]}
    assert history.read("data/readme") == b"r\n"
    assert not history.path("data/raw/2023/a.csv").exists()
