"""History on real git repos: checkout REV, rollback, diff, log and ls, checked field by field."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from projectkit import Workdir

V1 = {"a.csv": "alpha\n", "b.csv": "beta\n", "sub/c.csv": "gamma\n", "sub/keep.csv": "same\n"}
V2_CHANGES = {"a.csv": "alpha two\n", "d.csv": "delta\n"}


@dataclass
class History:
    """A dataset through three commits: v1, v2 (modify a, add d, delete b), v3 (rename sub/c -> e)."""

    project: Workdir
    shas: dict[str, str]
    trees: dict[str, dict]


@pytest.fixture
def history(project: Workdir) -> History:
    shas, trees = {}, {}
    project.write_tree("data", V1)
    project.add("data")
    shas["v1"], trees["v1"] = project.commit("v1"), project.snapshot("data")
    project.write_tree("data", V2_CHANGES)
    project.path("data/b.csv").unlink()
    project.add("data")
    shas["v2"], trees["v2"] = project.commit("v2"), project.snapshot("data")
    project.path("data/sub/c.csv").rename(project.path("data/e.csv"))
    project.add("data")
    shas["v3"], trees["v3"] = project.commit("v3"), project.snapshot("data")
    project.git("tag", "v1.0", shas["v1"])
    return History(project, shas, trees)


@pytest.mark.parametrize("rev", ["v1.0", "short", "full", "HEAD~2"])
def test_checkout_rev_accepts_tags_shas_and_relative_names(history: History, rev: str) -> None:
    p = history.project
    name = {"short": history.shas["v1"][:8], "full": history.shas["v1"]}.get(rev, rev)
    p.ok("checkout", name)
    assert p.git("rev-parse", "HEAD").strip() == history.shas["v1"]
    assert p.snapshot("data") == history.trees["v1"]
    assert p.run("status", "--check").code == 0


def test_checkout_each_version_and_back_is_byte_identical(history: History) -> None:
    p = history.project
    for version in ("v1", "v2", "v3", "v2", "v1", "v3"):
        p.ok("checkout", history.shas[version])
        assert p.snapshot("data") == history.trees[version], version
    p.ok("checkout", "main")
    assert p.git("symbolic-ref", "--short", "HEAD").strip() == "main"


def test_checkout_rev_refuses_what_git_refuses_and_changes_nothing(history: History) -> None:
    p = history.project
    p.write("data.vtool", p.read("data.vtool") + b"# edited\n")
    before = p.snapshot()
    result = p.fails("checkout", history.shas["v1"])
    assert "git checkout failed" in result.err and "data.vtool" in result.err
    assert p.snapshot() == before
    assert p.git("rev-parse", "HEAD").strip() == history.shas["v3"]


def test_checkout_rev_refuses_to_lose_uncached_data_before_git_moves(history: History) -> None:
    p = history.project
    p.write("data/a.csv", "precious, never added\n")
    result = p.fails("checkout", history.shas["v1"])
    assert "data/a.csv" in result.err and "--force" in result.err
    assert p.git("rev-parse", "HEAD").strip() == history.shas["v3"]
    assert p.read("data/a.csv") == b"precious, never added\n"
    p.ok("checkout", history.shas["v1"], "--force")
    assert p.snapshot("data") == history.trees["v1"]


def test_datasets_absent_at_rev_are_removed_only_when_cached(history: History) -> None:
    p = history.project
    p.write("model.bin", "weights\n")
    p.add("model.bin")
    p.commit("model")
    p.ok("checkout", history.shas["v3"])
    assert not p.path("model.bin").exists()
    p.ok("checkout", "main")
    assert p.read("model.bin") == b"weights\n"
    p.write("model.bin", "retrained, not added\n")
    assert "model.bin" in p.fails("checkout", history.shas["v3"]).err
    assert p.read("model.bin") == b"retrained, not added\n"


def test_rollback_restores_data_and_pointer_and_leaves_head(history: History) -> None:
    p = history.project
    p.ok("checkout", history.shas["v1"], "--", "data")
    assert p.git("rev-parse", "HEAD").strip() == history.shas["v3"]
    assert p.snapshot("data") == history.trees["v1"]
    assert p.read("data.vtool") == p.git("show", f"{history.shas['v1']}:data.vtool").encode()
    assert p.git("status", "--porcelain").splitlines() == [" M data.vtool"]
    p.git("commit", "-qam", "rollback to v1")
    assert p.run("status", "--check").code == 0
    assert p.ok("diff", history.shas["v1"], "HEAD", "--json").json()["datasets"][0]["status"] == "unchanged"


def test_rollback_of_a_path_not_tracked_at_rev_is_refused(history: History) -> None:
    p = history.project
    p.write("other/x.txt", "x")
    p.add("other")
    result = p.fails("checkout", history.shas["v1"], "--", "other", code=2)
    assert "not tracked by vtool at" in result.err


def test_diff_between_revisions_field_by_field(history: History) -> None:
    p = history.project
    doc = p.ok("diff", history.shas["v1"], history.shas["v2"], "--json").json()
    assert (doc["a"], doc["b"]) == (history.shas["v1"], history.shas["v2"])
    (ds,) = doc["datasets"]
    assert ds["path"] == "data" and ds["status"] == "modified"
    assert ds["old"]["files"] == 4 and ds["new"]["files"] == 4
    assert [(c["path"], c["new_size"]) for c in ds["added"]] == [("data/d.csv", 6)]
    assert [(c["path"], c["old_size"]) for c in ds["deleted"]] == [("data/b.csv", 5)]
    assert [(c["path"], c["old_size"], c["new_size"]) for c in ds["modified"]] == [("data/a.csv", 6, 10)]
    assert ds["modified"][0]["old_oid"] != ds["modified"][0]["new_oid"]
    assert ds["renamed"] == []
    assert ds["totals"] == {"added": 1, "deleted": 1, "modified": 1, "renamed": 0, "added_bytes": 6,
                            "deleted_bytes": 5, "modified_bytes_delta": 4}


def test_diff_reports_renames_by_oid(history: History) -> None:
    doc = history.project.ok("diff", history.shas["v2"], history.shas["v3"], "--json").json()
    (ds,) = doc["datasets"]
    assert [(c["old_path"], c["path"], c["old_size"]) for c in ds["renamed"]] == [("data/sub/c.csv", "data/e.csv", 6)]
    assert ds["added"] == ds["deleted"] == ds["modified"] == []


def test_diff_defaults_to_head_against_workspace(history: History) -> None:
    p = history.project
    assert p.ok("diff", "--json").json()["datasets"][0]["status"] == "unchanged"
    p.write("data/new.csv", "new\n")
    doc = p.ok("diff", "--json").json()
    assert (doc["a"], doc["b"]) == ("HEAD", "workspace")
    assert [c["path"] for c in doc["datasets"][0]["added"]] == ["data/new.csv"]
    one = p.ok("diff", history.shas["v1"], "--json").json()
    assert one["b"] == "workspace" and one["datasets"][0]["totals"]["added"] == 2  # d.csv, new.csv
    assert one["datasets"][0]["totals"]["renamed"] == 1  # sub/c.csv -> e.csv


def test_diff_shows_whole_datasets_added_and_removed(history: History) -> None:
    p = history.project
    p.write("model.bin", "weights\n")
    p.add("model.bin")
    sha = p.commit("model")
    doc = p.ok("diff", history.shas["v3"], sha, "--json").json()
    by_path = {d["path"]: d for d in doc["datasets"]}
    assert by_path["model.bin"]["status"] == "added" and by_path["model.bin"]["old"] is None
    assert by_path["model.bin"]["totals"]["added_bytes"] == 8
    back = p.ok("diff", sha, history.shas["v3"], "--json").json()
    assert {d["path"]: d["status"] for d in back["datasets"]}["model.bin"] == "deleted"


def test_diff_of_a_target_limits_the_output(history: History) -> None:
    p = history.project
    p.write("other/x.txt", "x")
    p.add("other")
    p.commit("other")
    doc = p.ok("diff", history.shas["v1"], "HEAD", "data", "--json").json()
    assert [d["path"] for d in doc["datasets"]] == ["data"]


def test_log_lists_versions_newest_first_with_changes(history: History) -> None:
    entries = history.project.ok("log", "data", "--json").json()["entries"]
    assert [e["commit"] for e in entries] == [history.shas[v] for v in ("v3", "v2", "v1")]
    assert [e["subject"] for e in entries] == ["v3", "v2", "v1"]
    assert all(e["dataset"] == "data" and e["author"] == "Test Author" for e in entries)
    assert entries[0]["change"] == {"added": 0, "deleted": 0, "modified": 0, "renamed": 1, "added_bytes": 0,
                                    "deleted_bytes": 0, "modified_bytes_delta": 0}
    assert entries[1]["change"]["added"] == 1 and entries[1]["change"]["deleted"] == 1
    assert entries[2]["change"]["added"] == 4
    assert entries[2]["version"]["files"] == 4 and entries[2]["version"]["size"] == 22
    assert len(history.project.ok("log", "data", "-n", "1", "--json").json()["entries"]) == 1


def test_ls_lists_files_at_a_revision(history: History) -> None:
    files = history.project.ok("ls", history.shas["v1"], "--json").json()["files"]
    assert [(f["path"], f["size"]) for f in files] == [
        ("data/a.csv", 6), ("data/b.csv", 5), ("data/sub/c.csv", 6), ("data/sub/keep.csv", 5)]
    now = history.project.ok("ls", "--json").json()
    assert now["rev"] == "workspace" and "data/e.csv" in [f["path"] for f in now["files"]]


def test_unknown_revision_is_a_clear_error(history: History) -> None:
    p = history.project
    result = p.fails("checkout", "no-such-rev", code=2)
    assert "neither a tracked path nor a git revision" in result.err


def test_history_commands_survive_non_utf8_file_names_in_commits(history: History) -> None:
    p = history.project
    (p.root / "caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(b"x")
    p.commit("a latin-1 file name")
    assert p.ok("diff", history.shas["v1"], "HEAD", "--json").json()["datasets"][0]["status"] == "modified"
    assert len(p.ok("log", "data", "--json").json()["entries"]) == 3
    p.ok("gc")


def test_a_glob_character_in_a_path_is_literal(project: Workdir) -> None:
    project.write("d1", "tracked by git\n")
    project.commit("d1 in git")
    project.write("d[1]", "data\n")
    assert project.add("d[1]")["added"][0]["path"] == "d[1]"


def test_log_from_a_subfolder_sees_the_same_history(history: History) -> None:
    p = history.project
    p.path("sub").mkdir()
    from_root = p.ok("log", "--json").json()["entries"]
    from_sub = p.ok("log", "--json", cwd="sub").json()["entries"]
    assert from_sub == from_root and from_sub[2]["version"] is not None


def test_log_without_targets_skips_datasets_never_committed(history: History) -> None:
    p = history.project
    p.write("new.txt", "new")
    p.add("new.txt")
    assert {e["dataset"] for e in p.ok("log", "--json").json()["entries"]} == {"data"}
    assert "no commits change" in p.fails("log", "new.txt", code=2).err


def test_checkout_rev_follows_a_pointer_edit_git_carries_across(history: History) -> None:
    p = history.project
    p.write("other/x.txt", "x1")
    p.add("other")
    p.commit("other v1")
    p.write("data/a.csv", "alpha four\n")
    p.add("data")
    p.commit("data v4")  # other.vtool is the same at HEAD and HEAD~1
    p.write("other/x.txt", "x2, added but not committed")
    p.add("other")
    p.ok("checkout", "HEAD~1")
    assert p.read("data/a.csv") == b"alpha two\n"
    assert p.read("other/x.txt") == b"x2, added but not committed"
    assert p.status()["other"]["state"] == "in sync"


def test_a_folder_named_like_a_branch_does_not_hide_the_branch(history: History) -> None:
    p = history.project
    p.git("branch", "old", history.shas["v1"])
    p.path("old").mkdir()
    p.ok("checkout", "old")
    assert p.snapshot("data") == history.trees["v1"]
