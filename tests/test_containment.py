"""vtool's own files (.vtool/ config and state) are never written through symlinks, and a broken state is rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

from projectkit import Workdir


def test_config_writes_refuse_a_symlinked_vtool_folder(git_repo: Workdir, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.yaml").write_text("# someone else's file\n")
    os.symlink(victim, git_repo.path(".vtool"))
    for args in (("config", "core.jobs", "4"), ("remote", "add", "origin", str(tmp_path)), ("init",)):
        result = git_repo.run(*args)
        assert result.code == 1 and "symlink" in result.err, args
    assert (victim / "config.yaml").read_text() == "# someone else's file\n"
    assert sorted(p.name for p in victim.iterdir()) == ["config.yaml"]


def test_a_symlinked_stat_database_is_refused(project: Workdir, tmp_path: Path) -> None:
    project.write("f.txt", "f")
    project.add("f.txt")
    state = project.path(".vtool/state")
    for name in os.listdir(state):
        os.unlink(state / name)
    outside = tmp_path / "outside.db"
    os.symlink(outside, state / "stat.db")
    result = project.run("status")
    assert result.code == 1 and "symlink" in result.err
    assert not outside.exists()


def test_a_damaged_stat_database_is_rebuilt(project: Workdir) -> None:
    project.write("f.txt", "f")
    project.add("f.txt")
    state = project.path(".vtool/state")
    for name in os.listdir(state):
        os.unlink(state / name)
    (state / "stat.db").write_bytes(b"this is not a sqlite database, just bytes" * 100)
    assert project.status()["f.txt"]["state"] == "in sync"
    assert project.add("f.txt")["added"][0]["changed"] is False


def test_credentials_in_an_endpoint_url_are_refused_and_never_stored(project: Workdir) -> None:
    result = project.run("remote", "add", "origin", "s3://b/p", "--endpoint-url", "http://u:pw-in-url@127.0.0.1:9")
    assert result.code == 1 and "credentials inside a URL" in result.err and "pw-in-url" not in result.err
    assert "pw-in-url" not in project.path(".vtool/config.yaml").read_text()


def test_refusals_of_dot_git_ignore_case(project: Workdir) -> None:
    project.path(".GIT").mkdir()
    project.write(".GIT/x", "x")
    result = project.run("add", ".GIT/x")
    assert result.code == 1 and "refusing to track" in result.err


def test_a_pointer_that_is_a_symlink_or_huge_is_refused_without_reading_it(project: Workdir, tmp_path: Path) -> None:
    outside = tmp_path / "outside.vtool"
    outside.write_text("version: 1\n")
    os.symlink(outside, project.path("linked.vtool"))
    result = project.run("status", "linked")
    assert result.code == 1 and "linked.vtool is a symlink" in result.err
    project.write("data", "d")
    os.symlink("/dev/zero", project.path("data.vtool"))
    assert "symlink" in project.run("add", "data").err
    os.unlink(project.path("data.vtool"))
    project.write("data.vtool", "version: 1\n" + "#" * 70_000)
    assert "byte limit" in project.run("status", "data").err


def test_a_rejected_setting_is_not_left_in_the_config(project: Workdir) -> None:
    before = project.path(".vtool/config.yaml").read_bytes()
    assert project.run("config", "core.remote", "nosuch").code == 1
    assert project.path(".vtool/config.yaml").read_bytes() == before
    project.ok("status")


def test_re_add_restores_file_objects_missing_from_the_cache(project: Workdir) -> None:
    project.loose_only()
    project.write_tree("d", {"a": "a", "b": "b"})
    project.add("d")
    oid = next(e.oid for e in project.manifest(project.pointer("d").oid) if e.name == "a")
    project.object_path(oid).unlink()
    assert project.status()["d"]["missing_from_cache"] == 1
    project.add("d")
    assert project.object_path(oid).read_bytes() == b"a"


def test_checkout_keeps_the_exec_bit_of_a_single_file_dataset(project: Workdir) -> None:
    project.write("run.sh", "#!/bin/sh\n", executable=True)
    project.add("run.sh")
    result = project.ok("checkout", "--json").json()
    assert result["datasets"][0]["written"] == 0
    assert os.access(project.path("run.sh"), os.X_OK)


def test_a_gitignore_in_another_encoding_is_kept_byte_for_byte(project: Workdir) -> None:
    project.write(".gitignore", b"caf\xe9\n")
    project.write("data.txt", "d")
    project.add("data.txt")
    assert project.read(".gitignore") == b"caf\xe9\n/data.txt\n"


def test_a_tree_nested_too_deep_is_refused_at_add(project: Workdir) -> None:
    deep = project.path("deep")
    path = deep
    for _ in range(520):
        path = path / "d"
    path.mkdir(parents=True)
    (path / "f").write_text("f")
    result = project.run("add", "deep")
    assert result.code == 1 and "nest deeper than 512" in result.err and "Traceback" not in result.err
    assert not project.path("deep.vtool").exists()
