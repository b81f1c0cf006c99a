"""Cases DVC's own functional tests (test_checkout, test_ls, test_diff...) found, translated to vtool's commands."""

from __future__ import annotations

import os
import shutil
import stat

from projectkit import Workdir


def test_a_deleted_empty_tracked_folder_is_recreated_by_checkout(project: Workdir) -> None:
    project.path("empty").mkdir()
    project.add("empty")
    project.path("empty").rmdir()
    assert project.status()["empty"]["state"] == "not in workspace"
    project.ok("checkout")
    assert project.path("empty").is_dir() and not any(project.path("empty").iterdir())
    assert project.status()["empty"]["state"] == "in sync"


def test_a_deleted_empty_subfolder_is_recreated_by_checkout(project: Workdir) -> None:
    project.write_tree("data", {"a.csv": "a\n"})
    project.path("data/empty/deeper").mkdir(parents=True)
    project.add("data")
    shutil.rmtree(project.path("data/empty"))
    assert project.status()["data"]["state"] == "modified"
    project.ok("checkout")
    assert project.path("data/empty/deeper").is_dir()
    assert project.status()["data"]["state"] == "in sync"


def test_a_single_file_dataset_keeps_its_executable_bit_through_checkout(project: Workdir) -> None:
    project.write("run.sh", "#!/bin/sh\necho hi\n", executable=True)
    project.add("run.sh")
    assert project.pointer("run.sh").executable
    assert b"executable: true\n" in project.read("run.sh.vtool")
    os.unlink(project.path("run.sh"))
    project.ok("checkout")
    assert stat.S_IMODE(os.stat(project.path("run.sh")).st_mode) == 0o755
    assert project.status()["run.sh"]["state"] == "in sync"


def test_a_single_file_datasets_exec_bit_change_is_a_modification_checkout_undoes(project: Workdir) -> None:
    project.write("run.sh", "#!/bin/sh\n", executable=True)
    project.write("plain.txt", "plain\n")
    project.add("run.sh", "plain.txt")
    assert b"executable" not in project.read("plain.txt.vtool")
    os.chmod(project.path("run.sh"), 0o644)
    os.chmod(project.path("plain.txt"), 0o755)
    states = project.status()
    assert (states["run.sh"]["state"], states["plain.txt"]["state"]) == ("modified", "modified")
    project.ok("checkout")
    assert os.stat(project.path("run.sh")).st_mode & 0o111
    assert not os.stat(project.path("plain.txt")).st_mode & 0o111
    os.chmod(project.path("run.sh"), 0o644)
    project.add("run.sh")  # re-adding records the new mode
    assert not project.pointer("run.sh").executable


def test_ls_of_a_path_no_dataset_has_at_a_revision_is_an_error(project: Workdir) -> None:
    project.write_tree("data", {"a.csv": "a\n"})
    project.add("data")
    project.commit("v1")
    result = project.fails("ls", "HEAD", "no_such_path", code=2)
    assert result.err.startswith("error: no_such_path: not tracked by vtool at HEAD")
    project.fails("ls", "no_such_path", code=2)
    assert [f["path"] for f in project.ok("ls", "HEAD", "data", "--json").json()["files"]] == ["data/a.csv"]


def test_diff_of_a_path_neither_revision_tracks_is_an_error(project: Workdir) -> None:
    project.write_tree("data", {"a.csv": "a\n"})
    project.add("data")
    project.commit("v1")
    project.commit("v2")
    result = project.fails("diff", "HEAD~1", "HEAD", "nothing_here", code=2)
    assert "error: nothing_here: not tracked by vtool at HEAD~1 or HEAD" in result.err


def test_any_revision_syntax_git_accepts_works_for_diff_ls_and_checkout(project: Workdir) -> None:
    project.write_tree("data", {"a.csv": "labels v1\n"})
    project.add("data")
    project.commit("fix labels")
    project.git("tag", "-a", "v1", "-m", "annotated v1")
    project.write("data/a.csv", "labels v2\n")
    project.add("data")
    project.commit("v2")
    for rev in (":/fix labels", "main@{1}", "v1^{commit}", "v1", "HEAD~1"):
        listed = project.ok("ls", rev, "--json").json()["files"]
        assert [f["size"] for f in listed] == [len("labels v1\n")], rev
        changed = project.ok("diff", rev, "HEAD", "--json").json()["datasets"][0]
        assert [c["path"] for c in changed["modified"]] == ["data/a.csv"], rev
    project.ok("checkout", "main@{1}")  # where main was before its last move: v1
    assert project.git("rev-parse", "HEAD").strip() == project.git("rev-parse", "v1^{commit}").strip()
    assert project.read("data/a.csv") == b"labels v1\n"
    project.ok("checkout", "main")
    project.ok("checkout", ":/fix labels", "--", "data")
    assert project.read("data/a.csv") == b"labels v1\n"


def test_a_revision_that_names_no_commit_is_an_error(project: Workdir) -> None:
    project.write_tree("data", {"a.csv": "a\n"})
    project.add("data")
    project.commit("v1")
    result = project.fails("checkout", "HEAD^{tree}", "--", "data", code=2)
    assert "HEAD^{tree}: neither a tracked path nor a git revision" in result.err
