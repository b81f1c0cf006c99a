"""`vtool rm` and `vtool mv`: whole datasets, never overwriting, and atomic from the user's point of view."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from projectkit import Workdir

from vtool.ops import journal

FILES = {"a.csv": "alpha\n", "sub/b.csv": "beta\n"}


@pytest.fixture
def tracked(project: Workdir) -> Workdir:
    """`data` (a folder) and `model.bin` tracked and committed, with a user's own line in .gitignore."""
    project.write(".gitignore", "*.log\n")
    project.write_tree("data", FILES)
    project.write("model.bin", "weights\n")
    project.add("data", "model.bin")
    project.commit("v1")
    return project


def ignored(project: Workdir, rel: str) -> bool:
    """Ask git itself whether it ignores a path."""
    return subprocess.run(["git", "check-ignore", "-q", "--", rel], cwd=project.root, check=False).returncode == 0


def pointers(project: Workdir) -> list[str]:
    """Every pointer file in the work tree."""
    return sorted(p.relative_to(project.root).as_posix() for p in project.root.rglob("*.vtool")
                  if ".git" not in p.parts and ".vtool" not in p.parts)


def run_printed_git(project: Workdir, stderr: str) -> None:
    """Run the git command line vtool printed, as a user would paste it."""
    line = stderr.rstrip().splitlines()[-1].strip()
    assert line.startswith("git "), stderr
    subprocess.run(line, shell=True, cwd=project.root, check=True)


def test_rm_stops_tracking_and_keeps_data_and_cache(tracked: Workdir) -> None:
    cached = tracked.cache_oids()
    result = tracked.ok("rm", "data")
    assert not tracked.path("data.vtool").exists()
    assert tracked.read(".gitignore") == b"*.log\n/model.bin\n"
    assert {rel: tracked.read(f"data/{rel}").decode() for rel in FILES} == FILES
    assert tracked.cache_oids() == cached
    assert "stopped tracking data" in result.err
    assert result.err.rstrip().endswith("git rm --cached --quiet data.vtool && git add .gitignore")
    run_printed_git(tracked, result.err)
    assert sorted(tracked.git("status", "--porcelain").splitlines()) == ["?? data/", "D  data.vtool", "M  .gitignore"]
    assert [d["path"] for d in tracked.ok("status", "--json").json()["datasets"]] == ["model.bin"]


def test_rm_by_pointer_name_several_at_once_and_an_emptied_gitignore_goes(project: Workdir) -> None:
    project.write_tree("sub/data", {"x": "x\n"})
    project.write("sub/m.bin", "m\n")
    project.add("sub/data", "sub/m.bin")
    result = project.ok("rm", "sub/data.vtool", "sub/m.bin", "--json").json()
    assert result == {"removed": ["sub/data", "sub/m.bin"], "git": {"add": [], "rm": []}}
    assert not project.path("sub/.gitignore").exists()
    assert pointers(project) == []
    assert project.read("sub/data/x") == b"x\n"


@pytest.mark.parametrize(("target", "fragment"), [
    ("data/sub", "data/sub is inside the dataset data; vtool rm and mv act on whole datasets"),
    ("nothing", "nothing: not tracked by vtool (no nothing.vtool)"),
])
def test_rm_refuses_what_is_not_a_dataset(tracked: Workdir, target: str, fragment: str) -> None:
    before = tracked.snapshot()
    assert fragment in tracked.fails("rm", target, code=2).err
    assert tracked.snapshot() == before


def test_mv_moves_data_pointer_and_ignore_lines_and_rehashes_nothing(tracked: Workdir) -> None:
    with open(tracked.path("data.vtool"), "a") as f:
        f.write("meta:\n  owner: ana\n")
    result = tracked.ok("mv", "data", "archive/2024")
    assert not tracked.path("data").exists() and not tracked.path("data.vtool").exists()
    assert {rel: tracked.read(f"archive/2024/{rel}").decode() for rel in FILES} == FILES
    moved = tracked.pointer("archive/2024")
    assert (moved.path, moved.meta) == ("2024", {"owner": "ana"})
    assert tracked.read(".gitignore") == b"*.log\n/model.bin\n"
    assert tracked.read("archive/.gitignore") == b"/2024\n"
    assert tracked.status()["archive/2024"] == {**tracked.status()["archive/2024"], "state": "in sync", "hashed": 0}
    assert "moved data -> archive/2024" in result.err
    run_printed_git(tracked, result.err)
    assert sorted(tracked.git("status", "--porcelain", "--no-renames").splitlines()) == [
        "A  archive/.gitignore", "A  archive/2024.vtool", "D  data.vtool", "M  .gitignore"]


def test_mv_into_an_existing_folder_and_by_pointer_name(tracked: Workdir) -> None:
    tracked.path("models").mkdir()
    tracked.ok("mv", "model.bin.vtool", "models/")
    assert tracked.read("models/model.bin") == b"weights\n"
    assert tracked.status()["models/model.bin"]["state"] == "in sync"


def test_mv_of_a_dataset_not_in_the_workspace_moves_its_pointer(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    tracked.ok("mv", "data", "old")
    assert tracked.status()["old"]["state"] == "not in workspace"
    tracked.ok("checkout", "old")
    assert tracked.read("old/sub/b.csv") == b"beta\n"


@pytest.mark.parametrize(("plant", "dst", "fragment", "code"), [
    (lambda p: p.write("taken/data/x", "mine\n"), "taken", "taken/data already exists; vtool mv never overwrites", 1),
    (lambda p: p.write("taken", "mine\n"), "taken", "taken already exists", 1),
    (lambda p: p.write("taken.vtool", "mine\n"), "taken", "taken.vtool already exists", 1),
    (lambda p: None, "model.bin", "model.bin already exists", 1),
    (lambda p: None, "data/sub/inner", "cannot move data into itself", 2),
    (lambda p: p.path("sub").mkdir(), "sub/../model.bin/x", "would overlap model.bin", 1),
    (lambda p: os.symlink("elsewhere", p.path("link")), "link/data", "a folder on its path is a symlink", 1),
    (lambda p: None, ".git/data", "refusing to track anything inside .git/", 1),
    (lambda p: None, "../outside", "outside the repository", 1),
])
def test_mv_refuses_a_bad_destination_and_changes_nothing(tracked: Workdir, plant: Callable[[Workdir], Any],
                                                           dst: str, fragment: str, code: int) -> None:
    plant(tracked)
    before = tracked.snapshot()
    assert fragment in tracked.fails("mv", "data", dst, code=code).err
    assert tracked.snapshot() == before


def test_mv_refuses_a_destination_git_tracks(tracked: Workdir) -> None:
    tracked.write("code/x.py", "print(1)\n")
    tracked.commit("code")
    shutil.rmtree(tracked.path("code"))
    assert "code is tracked by git" in tracked.fails("mv", "data", "code").err


OPERATIONS = {"mv": ("mv", "data", "deep/er/data2"), "rm": ("rm", "data", "model.bin")}


def _steps_of(project: Workdir, args: tuple[str, ...], tmp_path: Path) -> int:
    """How many journal steps the operation takes, counted on a copy."""
    copy = Workdir(tmp_path / "count")
    shutil.copytree(project.root, copy.root, symlinks=True)
    seen: list[str] = []
    original = journal.STEPS.copy()
    try:
        for kind, fn in original.items():
            journal.STEPS[kind] = (lambda f, k: lambda *a: (seen.append(k), f(*a)))(fn, kind)
        copy.ok(*args)
    finally:
        journal.STEPS.update(original)
    return len(seen)


def _killed_at(fn: Callable[..., None], kill_at: int, done: list[int]) -> Callable[..., None]:
    """Wrap a journal step so that the step number kill_at (counted across all kinds) never runs."""
    def step(*args: str) -> None:
        if len(done) == kill_at:
            raise KeyboardInterrupt  # as SIGINT or a kill would stop the process here
        done.append(1)
        fn(*args)
    return step


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_a_kill_between_any_two_steps_never_leaves_a_bare_pointer_and_the_next_command_finishes(
        tracked: Workdir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    args = OPERATIONS[op]
    expected = Workdir(tmp_path / "expected")
    shutil.copytree(tracked.root, expected.root, symlinks=True)
    expected.ok(*args)
    total = _steps_of(tracked, args, tmp_path)
    assert total >= 2
    for kill_at in range(total):
        trial = Workdir(tmp_path / f"trial{kill_at}")
        shutil.copytree(tracked.root, trial.root, symlinks=True)
        with monkeypatch.context() as m:
            done: list[int] = []
            for kind, fn in journal.STEPS.items():
                m.setitem(journal.STEPS, kind, _killed_at(fn, kill_at, done))
            assert trial.run(*args).code == 130
        for pointer in pointers(trial):
            assert ignored(trial, pointer.removesuffix(".vtool")), f"kill at step {kill_at}: {pointer} bare"
        result = trial.ok("status")
        assert f"finished the interrupted `vtool {' '.join(args[:1])} " in result.err
        assert trial.snapshot() == expected.snapshot(), f"kill at step {kill_at}"
        assert not (trial.root / ".vtool/state/journal.json").exists()


def test_a_journal_that_cannot_be_finished_is_a_clear_error(tracked: Workdir) -> None:
    state = tracked.path(".vtool/state")
    state.mkdir(exist_ok=True)
    (state / "journal.json").write_text(
        '{"version": 1, "command": "vtool mv data x", "steps": [["rename", "data", "model.bin"]]}')
    result = tracked.fails("status")
    assert "error: the interrupted `vtool mv data x` could not be finished: both data and model.bin exist" in result.err
    assert "delete" in result.err and "journal.json" in result.err
    (state / "journal.json").write_text("not json")
    assert "is not a vtool journal" in tracked.fails("status").err
