"""`vtool status`: every state a dataset can be in, --check exit codes and the --json schema."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool.hashing import hash_bytes
from vtool.ops import add as add_op
from vtool.ops.project import open_project
from vtool.statcache import settle

STATUS_KEYS = {"path", "pointer", "kind", "state", "added", "modified", "deleted", "missing_from_cache", "hashed"}


@pytest.fixture
def tracked(project: Workdir) -> Workdir:
    """A project tracking a folder `data` (nested) and a file `model.bin`."""
    project.loose_only()  # these tests unlink and damage object files
    project.write_tree("data", {"a.txt": b"a", "b.txt": b"b", "sub/c.txt": b"c", "sub/deep/d.txt": b"d"})
    project.write("model.bin", b"weights")
    project.add("data", "model.bin")
    return project


# The state table (STYLE.md, as dud's AllFileTestCases): every dataset state along three axes, for the
# folder dataset `data` and the file dataset `model.bin` at once.
#   workspace: absent | clean (as added) | modified (files added, changed and deleted; the file rewritten) |
#              foreign (something vtool never wrote, of the other kind: a file at `data`, a folder at `model.bin`)
#   cache:     has every object | lacks them all (the cache folder is gone)
#   remote:    has every object (pushed) | lacks them all (configured, never pushed)
# Each outcome: the exit code and stdout of `status --check`, each dataset's JSON fields
# (state, added, modified, deleted, missing_from_cache, hashed), and the exit code and stdout of
# `status --remote --check`.


@dataclass(frozen=True)
class Local:
    """What `vtool status` says about the workspace and the cache."""

    code: int
    out: str
    datasets: dict[str, tuple[str, list[str], list[str], list[str], int, int]]


@dataclass(frozen=True)
class Pushed:
    """What `vtool status --remote` says about the remote."""

    code: int
    out: str


DATA_CHANGES = "    + new dir/x\n    + sub/new.txt\n    ~ a.txt\n    - sub/deep/d.txt\n"
SYNCED = Local(0, "data: in sync\nmodel.bin: in sync\n", {
    "data": ("in sync", [], [], [], 0, 0), "model.bin": ("in sync", [], [], [], 0, 0)})
UNCACHED = Local(1, "data: not in cache (7 object(s) missing)\nmodel.bin: not in cache (1 object(s) missing)\n", {
    "data": ("not in cache", [], [], [], 7, 0), "model.bin": ("not in cache", [], [], [], 1, 0)})
ABSENT = Local(1, "data: not in workspace\nmodel.bin: not in workspace\n", {
    "data": ("not in workspace", [], [], [], 0, 0), "model.bin": ("not in workspace", [], [], [], 0, 0)})
ABSENT_UNCACHED = Local(1, "data: not in workspace, 1 object(s) not in cache\n"
                           "model.bin: not in workspace, 1 object(s) not in cache\n", {
    "data": ("not in workspace", [], [], [], 1, 0), "model.bin": ("not in workspace", [], [], [], 1, 0)})
MODIFIED = Local(1, "data: modified (2 added, 1 modified, 1 deleted)\n" + DATA_CHANGES
                    + "model.bin: modified (0 added, 1 modified, 0 deleted)\n    ~ model.bin\n", {
    "data": ("modified", ["new dir/x", "sub/new.txt"], ["a.txt"], ["sub/deep/d.txt"], 0, 3),  # only what changed
    "model.bin": ("modified", [], [""], [], 0, 1)})
MODIFIED_UNCACHED = Local(1, "data: modified, 1 object(s) not in cache\n"  # no manifests: no file list
                             "model.bin: modified (0 added, 1 modified, 0 deleted), 1 object(s) not in cache\n"
                             "    ~ model.bin\n", {
    "data": ("modified", [], [], [], 1, 3), "model.bin": ("modified", [], [""], [], 1, 1)})
FOREIGN = Local(1, "data: modified (0 added, 1 modified, 0 deleted)\n    ~ data\n"
                   "model.bin: modified (0 added, 1 modified, 0 deleted)\n    ~ model.bin\n", {
    "data": ("modified", [], [""], [], 0, 1), "model.bin": ("modified", [], [""], [], 0, 1)})
FOREIGN_UNCACHED = Local(1, "data: modified (0 added, 1 modified, 0 deleted), 1 object(s) not in cache\n    ~ data\n"
                            "model.bin: modified (0 added, 1 modified, 0 deleted), 1 object(s) not in cache\n"
                            "    ~ model.bin\n", {
    "data": ("modified", [], [""], [], 1, 1), "model.bin": ("modified", [], [""], [], 1, 1)})
ON_REMOTE = Pushed(0, "data: all 7 object(s) on origin\nmodel.bin: all 1 object(s) on origin\n")
NOT_PUSHED = Pushed(1, "data: 7 of 7 object(s) not pushed (364 bytes)\n"
                       "model.bin: 1 of 1 object(s) not pushed (7 bytes)\n")
# Without the cache's manifests, status --remote learns the tree from the remote's own; a remote lacking them too
# leaves the folder unknown.
UNKNOWN = Pushed(1, "data: cannot tell, 1 manifest(s) not in the local cache\n"
                    "model.bin: 1 of 1 object(s) not pushed (7 bytes)\n")

STATE_TABLE = [
    # workspace, cache, remote: status, status --remote
    ("absent", "has", "has", ABSENT, ON_REMOTE),
    ("absent", "has", "lacks", ABSENT, NOT_PUSHED),
    ("absent", "lacks", "has", ABSENT_UNCACHED, ON_REMOTE),
    ("absent", "lacks", "lacks", ABSENT_UNCACHED, UNKNOWN),
    ("clean", "has", "has", SYNCED, ON_REMOTE),
    ("clean", "has", "lacks", SYNCED, NOT_PUSHED),
    ("clean", "lacks", "has", UNCACHED, ON_REMOTE),
    ("clean", "lacks", "lacks", UNCACHED, UNKNOWN),
    ("modified", "has", "has", MODIFIED, ON_REMOTE),
    ("modified", "has", "lacks", MODIFIED, NOT_PUSHED),
    ("modified", "lacks", "has", MODIFIED_UNCACHED, ON_REMOTE),
    ("modified", "lacks", "lacks", MODIFIED_UNCACHED, UNKNOWN),
    ("foreign", "has", "has", FOREIGN, ON_REMOTE),
    ("foreign", "has", "lacks", FOREIGN, NOT_PUSHED),
    ("foreign", "lacks", "has", FOREIGN_UNCACHED, ON_REMOTE),
    ("foreign", "lacks", "lacks", FOREIGN_UNCACHED, UNKNOWN),
]


def _shape_workspace(project: Workdir, state: str) -> None:
    """Turn the clean workspace of `tracked` into one of the table's workspace states."""
    if state in ("absent", "foreign"):
        shutil.rmtree(project.path("data"))
        os.unlink(project.path("model.bin"))
    if state == "foreign":
        project.write("data", b"not vtool's")
        project.write("model.bin/x", b"x")
    if state == "modified":
        project.write("data/a.txt", b"A, changed")
        project.write("data/sub/new.txt", b"new")
        project.write("data/new dir/x", b"x")
        os.unlink(project.path("data/sub/deep/d.txt"))
        project.write("model.bin", b"weights v2")


@pytest.mark.parametrize(("workspace", "cache", "remote", "local", "pushed"), STATE_TABLE,
                         ids=[f"{w}-cache_{c}-remote_{r}" for w, c, r, _, _ in STATE_TABLE])
def test_the_state_table(tracked: Workdir, remote_dir: Path, workspace: str, cache: str, remote: str,
                         local: Local, pushed: Pushed) -> None:
    tracked.add_remote(remote_dir, default=True)
    if remote == "has":
        tracked.ok("push")
    if cache == "lacks":
        shutil.rmtree(tracked.cache_dir)
    _shape_workspace(tracked, workspace)

    states = tracked.status()  # first: `hashed` counts what this very call had to hash
    assert {path: (ds["state"], ds["added"], ds["modified"], ds["deleted"], ds["missing_from_cache"], ds["hashed"])
            for path, ds in states.items()} == local.datasets
    assert tracked.ok("status").out == local.out
    result = tracked.run("status", "--check")
    assert (result.code, result.out) == (local.code, local.out)
    result = tracked.run("status", "--remote", "--check")
    assert (result.code, result.out) == (pushed.code, pushed.out)


def test_json_schema(tracked: Workdir) -> None:
    doc = tracked.ok("status", "--json").json()
    assert list(doc) == ["datasets"]
    data, model = doc["datasets"]
    assert set(data) == STATUS_KEYS
    assert data == {"path": "data", "pointer": "data.vtool", "kind": "dir", "state": "in sync", "added": [],
                    "modified": [], "deleted": [], "missing_from_cache": 0, "hashed": 0}
    assert (model["path"], model["pointer"], model["kind"]) == ("model.bin", "model.bin.vtool", "file")


def test_exec_bit_change_is_a_modification(tracked: Workdir) -> None:
    os.chmod(tracked.path("data/b.txt"), 0o755)
    data = tracked.status("data")["data"]
    assert (data["state"], data["modified"]) == ("modified", ["b.txt"])


def test_an_empty_folder_added_to_a_dataset_is_a_change(tracked: Workdir) -> None:
    (tracked.path("data") / "empty").mkdir()
    data = tracked.status("data")["data"]
    assert (data["state"], data["added"], data["modified"], data["deleted"]) == ("modified", [], [], [])


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


def test_one_dataset_reports_alone(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    shutil.rmtree(tracked.cache_dir)
    tracked.write("model.bin", b"weights v2")
    assert tracked.fails("status", "data", "--check").out == "data: not in workspace, 1 object(s) not in cache\n"
    assert tracked.fails("status", "model.bin", "--check").out == "model.bin: modified (0 added, 1 modified, " \
        "0 deleted), 1 object(s) not in cache\n    ~ model.bin\n"


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


def test_add_records_its_whole_version_so_status_looks_nothing_up_again(
        project: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(add_op, "WAIT_FOR_SIGNATURE_FILES", 1)  # a large tree, as far as add can tell
    project.write_tree("data", {"a": "a", "sub/b": "b"})
    project.add("data")
    pointer = project.pointer("data")
    with open_project(start=project.root) as opened:
        assert opened.whole_in_cache(pointer, opened.cache.signature())
    project.drop_object(project.file_oid("sub/b"))  # the cache changed: the record no longer vouches
    assert project.status("data")["data"]["state"] == "not in cache"


def test_status_of_a_change_it_already_listed_writes_nothing(project: Workdir) -> None:
    """The folders a change touched are rebuilt to list it on every status, but remembered only once."""
    project.write_tree("data", {"a/x.txt": "x", "a/y.txt": "y", "b/z.txt": "z"})
    project.add("data")
    project.write("data/a/x.txt", "changed")
    settle(time.time_ns())
    project.ok("status")  # hashes the change and remembers the rebuilt folders
    db = project.vtool_dir / "state" / "stat.db"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in db.parent.glob("stat.db*")}
    time.sleep(0.01)
    assert project.status()["data"]["state"] == "modified"
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in db.parent.glob("stat.db*")} == before
