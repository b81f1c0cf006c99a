"""vtool's own files (.vtool/ config and state) are never written through symlinks, and a broken state is rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

from projectkit import Project


def test_config_writes_refuse_a_symlinked_vtool_folder(git_repo: Project, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.yaml").write_text("# someone else's file\n")
    os.symlink(victim, git_repo.path(".vtool"))
    for args in (("config", "core.jobs", "4"), ("remote", "add", "origin", str(tmp_path)), ("init",)):
        result = git_repo.run(*args)
        assert result.code == 1 and "symlink" in result.err, args
    assert (victim / "config.yaml").read_text() == "# someone else's file\n"
    assert sorted(p.name for p in victim.iterdir()) == ["config.yaml"]


def test_a_symlinked_stat_database_is_refused(project: Project, tmp_path: Path) -> None:
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


def test_a_damaged_stat_database_is_rebuilt(project: Project) -> None:
    project.write("f.txt", "f")
    project.add("f.txt")
    state = project.path(".vtool/state")
    for name in os.listdir(state):
        os.unlink(state / name)
    (state / "stat.db").write_bytes(b"this is not a sqlite database, just bytes" * 100)
    assert project.status()["f.txt"]["state"] == "in sync"
    assert project.add("f.txt")["added"][0]["changed"] is False


def test_credentials_in_an_endpoint_url_are_refused_and_never_stored(project: Project) -> None:
    result = project.run("remote", "add", "origin", "s3://b/p", "--endpoint-url", "http://u:pw-in-url@127.0.0.1:9")
    assert result.code == 1 and "credentials inside a URL" in result.err and "pw-in-url" not in result.err
    assert "pw-in-url" not in project.path(".vtool/config.yaml").read_text()
