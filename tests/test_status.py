"""`vtool status`: every state a dataset can be in, --check exit codes and the --json schema."""

from __future__ import annotations

import os
import shutil

import pytest
from projectkit import Workdir

from vtool.hashing import hash_bytes

STATUS_KEYS = {"path", "pointer", "kind", "state", "added", "modified", "deleted", "missing_from_cache", "hashed"}


@pytest.fixture
def tracked(project: Workdir) -> Workdir:
    """A project tracking a folder `data` (nested) and a file `model.bin`."""
    project.write_tree("data", {"a.txt": b"a", "b.txt": b"b", "sub/c.txt": b"c", "sub/deep/d.txt": b"d"})
    project.write("model.bin", b"weights")
    project.add("data", "model.bin")
    return project


def test_in_sync_after_add_and_hashes_nothing(tracked: Workdir) -> None:
    result = tracked.ok("status")
    assert result.out == "data: in sync\nmodel.bin: in sync\n"
    states = tracked.status()
    assert {p: (s["state"], s["hashed"], s["missing_from_cache"]) for p, s in states.items()} == {
        "data": ("in sync", 0, 0), "model.bin": ("in sync", 0, 0),
    }
    assert tracked.run("status", "--check").code == 0


def test_json_schema(tracked: Workdir) -> None:
    doc = tracked.ok("status", "--json").json()
    assert list(doc) == ["datasets"]
    data, model = doc["datasets"]
    assert set(data) == STATUS_KEYS
    assert data == {"path": "data", "pointer": "data.vtool", "kind": "dir", "state": "in sync", "added": [],
                    "modified": [], "deleted": [], "missing_from_cache": 0, "hashed": 0}
    assert (model["path"], model["pointer"], model["kind"]) == ("model.bin", "model.bin.vtool", "file")


def test_modified_lists_added_modified_and_deleted_files(tracked: Workdir) -> None:
    tracked.write("data/a.txt", b"A, changed")
    tracked.write("data/sub/new.txt", b"new")
    tracked.write("data/new dir/x", b"x")
    os.unlink(tracked.path("data/sub/deep/d.txt"))
    data = tracked.status("data")["data"]
    assert data["state"] == "modified"
    assert data["added"] == ["new dir/x", "sub/new.txt"]
    assert data["modified"] == ["a.txt"]
    assert data["deleted"] == ["sub/deep/d.txt"]
    assert data["hashed"] == 3  # only the new and changed files
    assert data["missing_from_cache"] == 0
    result = tracked.fails("status", "data", "--check")
    assert result.out == (
        "data: modified (2 added, 1 modified, 1 deleted)\n"
        "    + new dir/x\n    + sub/new.txt\n    ~ a.txt\n    - sub/deep/d.txt\n"
    )


def test_exec_bit_change_is_a_modification(tracked: Workdir) -> None:
    os.chmod(tracked.path("data/b.txt"), 0o755)
    data = tracked.status("data")["data"]
    assert (data["state"], data["modified"]) == ("modified", ["b.txt"])


def test_modified_single_file(tracked: Workdir) -> None:
    tracked.write("model.bin", b"weights v2")
    model = tracked.status("model.bin")["model.bin"]
    assert (model["state"], model["modified"], model["hashed"]) == ("modified", [""], 1)
    assert tracked.fails("status", "model.bin", "--check").out == "model.bin: modified (0 added, 1 modified, " \
        "0 deleted)\n    ~ model.bin\n"


def test_an_empty_folder_added_to_a_dataset_is_a_change(tracked: Workdir) -> None:
    (tracked.path("data") / "empty").mkdir()
    data = tracked.status("data")["data"]
    assert (data["state"], data["added"], data["modified"], data["deleted"]) == ("modified", [], [], [])


def test_not_in_workspace(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    os.unlink(tracked.path("model.bin"))
    states = tracked.status()
    assert {p: (s["state"], s["missing_from_cache"]) for p, s in states.items()} == {
        "data": ("not in workspace", 0), "model.bin": ("not in workspace", 0),
    }
    result = tracked.fails("status", "--check")
    assert result.out == "data: not in workspace\nmodel.bin: not in workspace\n"


def test_not_in_cache(tracked: Workdir) -> None:
    shutil.rmtree(tracked.cache_dir)
    states = tracked.status()
    # data: 4 files + 3 manifests (data, data/sub, data/sub/deep); model.bin: 1 object
    assert {p: (s["state"], s["missing_from_cache"]) for p, s in states.items()} == {
        "data": ("not in cache", 7), "model.bin": ("not in cache", 1),
    }
    result = tracked.fails("status", "--check")
    assert result.out == "data: not in cache (7 object(s) missing)\nmodel.bin: not in cache (1 object(s) missing)\n"


def test_one_object_missing_from_the_cache(tracked: Workdir) -> None:
    os.unlink(tracked.object_path(hash_bytes(b"c")))
    data = tracked.status("data")["data"]
    assert (data["state"], data["missing_from_cache"]) == ("not in cache", 1)


def test_a_truncated_object_counts_as_missing(tracked: Workdir) -> None:
    path = tracked.object_path(hash_bytes(b"weights"))
    os.chmod(path, 0o644)
    path.write_bytes(b"wei")
    model = tracked.status("model.bin")["model.bin"]
    assert (model["state"], model["missing_from_cache"]) == ("not in cache", 1)


def test_not_in_workspace_nor_cache(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    shutil.rmtree(tracked.cache_dir)
    data = tracked.status("data")["data"]
    assert data["state"] == "not in workspace"
    assert data["missing_from_cache"] >= 1
    assert tracked.fails("status", "data", "--check").out == "data: not in workspace, 1 object(s) not in cache\n"


def test_modified_with_manifests_gone_still_says_modified(tracked: Workdir) -> None:
    shutil.rmtree(tracked.cache_dir)
    tracked.write("data/a.txt", b"changed")
    data = tracked.status("data")["data"]
    assert (data["state"], data["added"], data["modified"], data["deleted"]) == ("modified", [], [], [])
    assert data["missing_from_cache"] >= 1


def test_targets_select_datasets_by_path_or_pointer(tracked: Workdir) -> None:
    tracked.write("model.bin", b"changed")
    assert tracked.ok("status", "data/").out == "data: in sync\n"
    assert tracked.ok("status", "data.vtool", "--check").out == "data: in sync\n"
    assert list(tracked.status("model.bin.vtool")) == ["model.bin"]
    tracked.fails("status", "model.bin", "--check")


def test_targets_resolve_from_a_subfolder(tracked: Workdir) -> None:
    tracked.write("exp/data/x", b"x")
    tracked.add("exp/data")
    assert tracked.ok("status", "data", cwd="exp").out == "exp/data: in sync\n"


def test_an_untracked_target_is_a_usage_error(tracked: Workdir) -> None:
    result = tracked.fails("status", "nothing-here", code=2)
    assert "nothing-here: not tracked by vtool (no nothing-here.vtool)" in result.err
    assert "run: vtool add nothing-here" in result.err


def test_no_datasets(project: Workdir) -> None:
    assert project.ok("status").out == "no datasets tracked (vtool add PATH)\n"
    assert project.ok("status", "--json").json() == {"datasets": []}
    assert project.run("status", "--check").code == 0


def test_ignored_pointer_files_are_not_datasets(tracked: Workdir) -> None:
    tracked.write(".gitignore", tracked.read(".gitignore") + b"/model.bin.vtool\n")
    assert list(tracked.status()) == ["data"]


def test_status_hashes_only_what_changed_and_remembers_it(tracked: Workdir) -> None:
    tracked.write("data/a.txt", b"again")
    assert tracked.status("data")["data"]["hashed"] == 1
    assert tracked.status("data")["data"]["hashed"] == 0


@pytest.mark.parametrize(("content", "fragment"), [
    (b"version: 1\ntype: dir\npath: data\noid: xxh128:00\nsize: 1\nfiles: 1\n", "data.vtool: invalid oid"),
    (b"version: 7\n", "data.vtool: unsupported pointer version 7"),
    (b"version: 1\ntype: dir\npath: other\noid: xxh128:" + b"0" * 32 + b"\nsize: 1\nfiles: 1\n",
     "data.vtool: path 'other' does not match the pointer's own name"),
    (b"version: 1\ntype: dir\npath: ..\noid: xxh128:" + b"0" * 32 + b"\nsize: 1\nfiles: 1\n",
     "data.vtool: path '..' must be a single name"),
])
def test_a_bad_pointer_is_reported_with_its_name(tracked: Workdir, content: bytes, fragment: str) -> None:
    tracked.write("data.vtool", content)
    result = tracked.fails("status")
    assert fragment in result.err
    assert "Traceback" not in result.err


def test_a_hostile_manifest_in_the_cache_is_refused(tracked: Workdir) -> None:
    evil = b"vtool-manifest 1\nf " + hash_bytes(b"x").encode() + b" 1 1 ..\n"
    oid = hash_bytes(evil)
    path = tracked.object_path(oid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(evil)
    shutil.rmtree(tracked.path("data"))
    tracked.write("data.vtool", f"version: 1\ntype: dir\npath: data\noid: {oid}\nsize: 1\nfiles: 1\n")
    result = tracked.fails("checkout", "data")
    assert "must be a single name" in result.err
    assert not tracked.path("data").exists()
    assert not (tracked.root.parent / "x").exists()
