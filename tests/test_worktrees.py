"""Linked git worktrees share one cache: a checkout in a new worktree finds every object the main one has."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool.lock import locked

V1 = {"a.csv": "alpha 1\n", "sub/b.csv": "beta 1\n"}
V2 = {"a.csv": "alpha 2\n", "sub/b.csv": "beta 1\n", "c.csv": "gamma\n"}


@pytest.fixture
def history(project: Workdir) -> Workdir:
    """A project whose `data` has two committed versions, v1 then v2, both only in the main worktree's cache."""
    project.write_tree("data", V1)
    project.add("data")
    project.commit("v1")
    shutil.rmtree(project.path("data"))
    project.write_tree("data", V2)
    project.add("data")
    project.commit("v2")
    return project


def add_worktree(project: Workdir, name: str, rev: str = "HEAD") -> Workdir:
    """`git worktree add ../NAME REV` (detached), as a project of its own."""
    where = project.root.parent / name
    project.git("worktree", "add", "-q", "--detach", str(where), rev)
    return Workdir(where)


def test_a_new_worktree_checks_out_an_older_commit_from_the_main_cache(history: Workdir) -> None:
    wt = add_worktree(history, "wt", "HEAD~1")
    result = wt.ok("checkout")
    assert "data: 2 written" in result.err
    assert {rel: wt.read(f"data/{rel}").decode() for rel in V1} == V1
    assert not wt.path(".vtool/cache").exists()  # nothing was copied into a cache of its own
    assert wt.status()["data"]["state"] == "in sync"


def test_objects_added_in_a_worktree_land_in_the_shared_cache(history: Workdir) -> None:
    wt = add_worktree(history, "wt")
    wt.ok("checkout")
    wt.write("data/new.csv", "made in the worktree\n")
    oid = wt.add("data")["added"][0]["oid"]
    assert oid in history.cache_oids()
    assert wt.ok("config", "cache.dir").out.strip() == str(history.cache_dir)


def test_cache_dir_still_overrides_the_shared_cache(history: Workdir, tmp_path: Path) -> None:
    wt = add_worktree(history, "wt")
    own = tmp_path / "own-cache"
    wt.ok("config", "cache.dir", str(own), "--local")
    result = wt.fails("checkout")
    assert "is not in the cache" in result.err
    assert wt.ok("config", "cache.dir").out.strip() == str(own)


def test_a_worktree_uses_the_main_worktrees_own_cache_dir_setting(history: Workdir, tmp_path: Path) -> None:
    moved = tmp_path / "moved-cache"
    shutil.copytree(history.cache_dir, moved)
    history.ok("config", "cache.dir", str(moved), "--local")  # ignored file: only the main worktree has it
    shutil.rmtree(history.cache_dir)
    wt = add_worktree(history, "wt", "HEAD~1")
    wt.ok("checkout")
    assert wt.read("data/a.csv") == b"alpha 1\n"


def test_a_writer_in_one_worktree_holds_the_lock_of_the_shared_cache(history: Workdir) -> None:
    wt = add_worktree(history, "wt")
    with locked(history.cache_dir / "lock"):  # what `vtool gc` in the main worktree holds
        result = wt.run_process("checkout", env={"VTOOL_LOCK_TIMEOUT": "0.2"})
    assert result.code == 1
    assert f"{history.cache_dir / 'lock'} is locked by pid {os.getpid()}" in result.err


def test_gc_keeps_what_other_worktrees_check_out_and_hold_uncommitted(history: Workdir) -> None:
    wt = add_worktree(history, "wt", "HEAD~1")  # detached: no branch names v1 once main's history moves
    wt.ok("checkout")
    history.ok("gc", "--yes")  # keeps branch tips (v2) and, as wt's HEAD, v1
    shutil.rmtree(wt.path("data"))
    wt.ok("checkout")
    assert {rel: wt.read(f"data/{rel}").decode() for rel in V1} == V1
    wt.write("data/only-here.csv", "uncommitted in the worktree\n")
    only_here = wt.add("data")["added"][0]["oid"]
    history.ok("gc", "--workspace", "--yes")
    assert only_here in history.cache_oids()
    shutil.rmtree(wt.path("data"))
    wt.ok("checkout")
    assert wt.read("data/only-here.csv") == b"uncommitted in the worktree\n"
