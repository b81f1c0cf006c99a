"""Races during add, made deterministic: the data changes at a fixed point of the read, every time.

Two hook points, both inside the real code path of `vtool add`: the moment the first megabyte of a file
has been hashed (a wrapped XXH3 hasher), and the moment just after the scan, before any file is opened
(the racy-window `settle` call). Each trial runs the real CLI in-process and checks the outcome on disk:
a pointer whose size and oid describe the same bytes, or a refusal that leaves the old pointer and
puts nothing from outside the repository into the cache.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import xxhash
from projectkit import Workdir

from vtool import gitrepo
from vtool.hashing import hash_bytes

MiB = 1 << 20
REAL_XXH3 = xxhash.xxh3_128
BIG = bytes(range(256)) * (2 * MiB // 256) + b"tail"  # streamed in 1 MiB chunks: the hook fires mid-file
OUTSIDE = b"the user's private file outside the repository\n" * 1000
TRIALS = 3  # deterministic hooks: every trial hits the race; a few prove it is not luck


class _HookedHasher:
    """An XXH3-128 hasher that calls hook once, after the first chunk of each stream it hashes."""

    hook: Callable[[], None] = staticmethod(lambda: None)

    def __init__(self, *args: object) -> None:
        self._real = REAL_XXH3(*args)
        self._chunks = 0

    def update(self, data: bytes | memoryview) -> None:
        self._real.update(data)
        self._chunks += 1
        if self._chunks == 1 and len(data) >= MiB:
            type(self).hook()

    def hexdigest(self) -> str:
        return self._real.hexdigest()


@pytest.fixture
def mid_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], None]:
    """Install a hook that runs when the first megabyte of a file has been read and hashed."""
    def install(hook: Callable[[], None]) -> None:
        monkeypatch.setattr(_HookedHasher, "hook", staticmethod(hook))
        monkeypatch.setattr(xxhash, "xxh3_128", _HookedHasher)
    return install


def _consistent(project: Workdir, dataset: str, name: str) -> None:
    """The manifest entry's size and oid describe the file's bytes, the pointer's totals add up, and a
    checkout from the cache rebuilds the file."""
    data = project.read(f"{dataset}/{name}")
    pointer = project.pointer(dataset)
    entries = {e.name: e for e in project.manifest(pointer.oid)}
    assert (entries[name].size, entries[name].oid) == (len(data), hash_bytes(data))
    assert pointer.size == sum(e.size for e in entries.values())
    os.unlink(project.path(f"{dataset}/{name}"))
    project.ok("checkout", dataset)
    assert project.read(f"{dataset}/{name}") == data


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("change", ["append", "truncate", "rewrite"])
def test_a_file_changing_while_add_reads_it_gets_a_pointer_of_one_read(
        project: Workdir, mid_read: Callable[[Callable[[], None]], None], change: str, trial: int) -> None:
    path = project.write("data/x.bin", BIG)
    project.write("data/small.txt", "small\n")
    done: list[bool] = []

    def edit() -> None:
        if done:
            return
        done.append(True)
        if change == "append":
            with open(path, "ab") as handle:
                handle.write(b"appended while add was reading\n" * (trial + 1))
        elif change == "truncate":
            os.truncate(path, 1000 + trial)
        else:
            path.write_bytes(BIG[::-1])

    mid_read(edit)
    project.ok("add", "data")
    assert done
    _consistent(project, "data", "x.bin")
    assert project.status()["data"]["state"] == "in sync"


def test_a_file_that_keeps_changing_is_refused_and_the_old_pointer_kept(
        project: Workdir, mid_read: Callable[[Callable[[], None]], None]) -> None:
    path = project.write("data/x.bin", BIG)
    project.add("data")
    old = project.read("data.vtool")
    path.write_bytes(BIG + b"v2")

    def grow() -> None:
        with open(path, "ab") as handle:
            handle.write(b"more\n")

    mid_read(grow)
    result = project.fails("add", "data")
    assert "data/x.bin changed each of the 3 times vtool read it" in result.err
    assert project.read("data.vtool") == old


def _swap_file_for_link(project: Workdir, outside: Path) -> None:
    os.unlink(project.path("data/x.bin"))
    os.symlink(outside / "secret.bin", project.path("data/x.bin"))


def _swap_folder_for_link(project: Workdir, outside: Path) -> None:
    shutil.rmtree(project.path("data/sub"))
    os.symlink(outside, project.path("data/sub"))


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize(("swap", "fragment"), [
    (_swap_file_for_link, "data/x.bin is a symlink; refusing to follow it"),
    (_swap_folder_for_link, "data/sub/secret.bin was replaced while vtool read it"),
], ids=["file-becomes-symlink", "parent-becomes-symlink"])
def test_a_path_swapped_for_a_symlink_after_the_scan_never_brings_outside_bytes_in(
        project: Workdir, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trial: int,
        swap: Callable[[Workdir, Path], None], fragment: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(OUTSIDE + bytes([trial]))
    project.write("data/x.bin", b"in the repo\n")
    project.write("data/sub/secret.bin", b"also in the repo\n")
    import vtool.workspace

    real_settle = vtool.workspace.settle
    swapped: list[bool] = []

    def settle_then_swap(changed: int) -> None:  # runs after the scan, before any file is opened
        real_settle(changed)
        if not swapped:
            swapped.append(True)
            swap(project, outside)

    monkeypatch.setattr(vtool.workspace, "settle", settle_then_swap)
    result = project.fails("add", "data")
    assert swapped
    assert fragment in result.err
    assert not project.path("data.vtool").exists()
    secret = hash_bytes(OUTSIDE + bytes([trial]))
    assert secret not in project.cache_oids()
    stored = [p for p in project.cache_dir.rglob("*") if p.is_file() and OUTSIDE[:40] in p.read_bytes()[:40]]
    assert stored == []


# --- kill -9 during `vtool checkout BRANCH`, just after git moved HEAD ------------------------------------

# A git hook that SIGKILLs vtool (git's parent) the moment git has moved HEAD: deterministic, and a real kill.
KILL_VTOOL_HOOK = """#!/bin/sh
vtool_pid=$(awk '{print $4}' /proc/$PPID/stat)
kill -9 "$vtool_pid"
"""
GIT_SETTLE_S = 10.0


def _branch_without_extra(project: Workdir) -> str:
    """main tracks data and extra; branch lean tracks data only. Back on main, both are in the workspace."""
    project.write_tree("data", {"a.txt": "a\n"})
    project.write_tree("extra", {"e.txt": "e\n", "sub/f.txt": "f\n"})
    project.add("data", "extra")
    project.commit("data and extra")
    project.git("checkout", "-q", "-b", "lean")
    project.git("rm", "-q", "--cached", "extra.vtool")
    os.unlink(project.path("extra.vtool"))
    project.commit("drop extra")
    lean = project.git("rev-parse", "HEAD").strip()
    project.git("checkout", "-q", "main")
    project.ok("checkout")  # extra/ is still there: git left the ignored data alone
    return lean


def _wait_for_git(project: Workdir, sha: str) -> None:
    """The killed vtool's git finishes on its own: wait until HEAD is there and the index is unlocked."""
    deadline = time.monotonic() + GIT_SETTLE_S
    while time.monotonic() < deadline:
        if project.git("rev-parse", "HEAD").strip() == sha and not project.path(".git/index.lock").exists():
            return
        time.sleep(0.05)
    raise AssertionError("git did not finish the checkout")


@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_rerun_after_kill_9_just_after_git_moved_head_removes_the_datasets_the_branch_lacks(
        project: Workdir, trial: int) -> None:
    lean = _branch_without_extra(project)
    hook = project.path(".git/hooks/post-checkout")
    hook.write_text(KILL_VTOOL_HOOK)
    hook.chmod(0o755)
    killed = subprocess.run([sys.executable, "-m", "vtool", "checkout", "lean"], cwd=project.root,
                            capture_output=True, text=True, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _wait_for_git(project, lean)
    hook.unlink()
    assert project.path("extra/e.txt").exists()  # the kill came before vtool removed it

    project.ok("checkout", "lean")
    assert not project.path("extra").exists()
    assert project.read("data/a.txt") == b"a\n"
    assert project.status()["data"]["state"] == "in sync"
    project.ok("checkout", "lean")  # the journal is gone: a second rerun has nothing left to do
    assert not (project.vtool_dir / "state" / "checkout-journal.json").exists()


@pytest.mark.parametrize("leaves", [False, True])
def test_the_journal_is_written_before_git_moves_only_when_a_dataset_leaves(
        project: Workdir, monkeypatch: pytest.MonkeyPatch, leaves: bool) -> None:
    """The journal guards the data of datasets that leave; a switch where none leaves spends no fsync on it."""
    lean = _branch_without_extra(project)
    target = lean if leaves else "main~0"
    journal = project.vtool_dir / "state" / "checkout-journal.json"
    seen: list[bool] = []
    real = gitrepo.checkout

    def checkout(root: Path, rev: str) -> None:
        seen.append(journal.exists())
        real(root, rev)

    monkeypatch.setattr(gitrepo, "checkout", checkout)
    project.ok("checkout", target)
    assert seen == [leaves]
    assert project.path("extra/e.txt").exists() is not leaves
    assert project.read("data/a.txt") == b"a\n"
    assert not journal.exists()


@pytest.mark.parametrize("change", ["append", "truncate"])
def test_a_file_changing_during_the_kernel_copy_gets_a_pointer_of_one_read(
        project: Workdir, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """The cache copies a large file in the kernel and hashes the copy: an edit right after the copy is
    caught by the stamp check and the file read again, so the stored object, its oid and size agree."""
    path = project.write("data/x.bin", BIG)
    real_copy = os.copy_file_range
    edits: list[int] = []

    def copy_then_edit(src: int, dst: int, count: int, *args: object) -> int:
        n = real_copy(src, dst, count, *args)
        if not edits:
            edits.append(n)
            if change == "append":
                with open(path, "ab") as handle:
                    handle.write(b"appended during the kernel copy\n")
            else:
                os.truncate(path, MiB + 10)
        return n

    monkeypatch.setattr(os, "copy_file_range", copy_then_edit)
    project.ok("add", "data")
    assert edits and edits[0] > 0  # the kernel copy ran and was interrupted by the edit
    _consistent(project, "data", "x.bin")
    oid = project.pointer("data").oid
    entry = {e.name: e for e in project.manifest(oid)}["x.bin"]
    assert project.object_bytes(entry.oid) == project.read("data/x.bin")


def test_where_the_kernel_cannot_copy_the_file_is_copied_while_hashed(
        project: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    project.write("data/x.bin", BIG)
    project.ok("add", "data")
    _consistent(project, "data", "x.bin")
    assert project.object_bytes(hash_bytes(BIG)) == BIG
