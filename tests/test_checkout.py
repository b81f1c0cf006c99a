"""`vtool checkout`: restore from the cache byte for byte, never lose uncached data, every link mode, corruption."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool import fsutil, workspace
from vtool.fsutil import TEMP_MARK, exchange, kernel_copy, staged
from vtool.hashing import hash_bytes

FILES = {
    "a.txt": b"alpha\n",
    "b.txt": b"beta\n",
    "same.txt": b"alpha\n",  # duplicate content: one object, two workspace files
    "sub/c.txt": b"gamma\n",
    "sub/deep/d.bin": bytes(range(256)) * 64,
    "espace é/nom avec espaces.txt": "é\n".encode(),
    "empty.txt": b"",
}
BETA = hash_bytes(b"beta\n")
GAMMA = hash_bytes(b"gamma\n")


@pytest.fixture
def tracked(project: Workdir) -> Workdir:
    """A project tracking `data` (nested, duplicates, empty file and folder, an executable) and `model.bin`.

    Loose objects only: these tests link and corrupt object files (tests/test_packs.py covers packed ones).
    """
    project.loose_only()
    project.write_tree("data", FILES)
    project.write("data/run.sh", b"#!/bin/sh\necho hi\n", executable=True)
    (project.path("data") / "empty dir").mkdir()
    project.write("model.bin", b"weights")
    project.add("data", "model.bin")
    return project


def mode(project: Workdir, rel: str) -> int:
    return stat.S_IMODE(os.stat(project.path(rel)).st_mode)


def assert_restored(project: Workdir) -> None:
    for rel, data in FILES.items():
        assert project.read(f"data/{rel}") == data, rel
    assert project.read("data/run.sh") == b"#!/bin/sh\necho hi\n"
    assert mode(project, "data/run.sh") & 0o111
    assert project.path("data/empty dir").is_dir()
    assert list(project.path("data/empty dir").iterdir()) == []
    assert project.read("model.bin") == b"weights"


def test_checkout_restores_deleted_datasets_byte_for_byte(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    os.unlink(tracked.path("model.bin"))
    result = tracked.ok("checkout")
    assert_restored(tracked)
    assert "data: 8 written, 0 deleted, 0 unchanged" in result.err
    assert "model.bin: 1 written, 0 deleted, 0 unchanged" in result.err
    assert mode(tracked, "data/a.txt") == 0o644  # copies are the user's own, writable files
    assert mode(tracked, "data/run.sh") == 0o755
    assert tracked.status()["data"]["state"] == "in sync"


def test_checkout_restores_deleted_and_modified_cached_files(tracked: Workdir) -> None:
    os.unlink(tracked.path("data/sub/c.txt"))
    tracked.write("data/a.txt", b"beta\n")  # modified, but to content the cache holds
    os.chmod(tracked.path("data/run.sh"), 0o644)  # exec bit lost
    result = tracked.ok("checkout", "data", "--json").json()
    assert result == {"datasets": [{"path": "data", "written": 3, "deleted": 0, "unchanged": 5}]}
    assert_restored(tracked)


def test_checkout_json_and_nothing_to_do(tracked: Workdir) -> None:
    before = tracked.snapshot("data")
    assert tracked.ok("checkout", "--json").json() == {"datasets": [
        {"path": "data", "written": 0, "deleted": 0, "unchanged": 8},
        {"path": "model.bin", "written": 0, "deleted": 0, "unchanged": 1},
    ]}
    assert tracked.snapshot("data") == before


def test_checkout_of_one_target_leaves_others_alone(tracked: Workdir) -> None:
    os.unlink(tracked.path("model.bin"))
    os.unlink(tracked.path("data/a.txt"))
    tracked.ok("checkout", "data")
    assert tracked.read("data/a.txt") == b"alpha\n"
    assert not tracked.path("model.bin").exists()


def test_checkout_removes_files_and_folders_the_cache_holds(tracked: Workdir) -> None:
    tracked.write("data/copy of a.txt", b"alpha\n")  # content the cache holds
    tracked.write("data/extra/b again.txt", b"beta\n")
    (tracked.path("data") / "stray empty").mkdir()
    result = tracked.ok("checkout", "data", "--json").json()
    assert result["datasets"][0]["deleted"] == 2
    assert not tracked.path("data/copy of a.txt").exists()
    assert not tracked.path("data/extra").exists()
    assert not tracked.path("data/stray empty").exists()
    assert_restored(tracked)


def test_checkout_refuses_to_lose_uncached_data_and_changes_nothing(tracked: Workdir) -> None:
    tracked.write("data/a.txt", b"precious edit")
    tracked.write("data/sub/new.txt", b"precious new file")
    os.unlink(tracked.path("data/b.txt"))
    os.unlink(tracked.path("model.bin"))  # another dataset that could be restored safely
    before = tracked.snapshot()
    result = tracked.fails("checkout")
    assert "error: checkout would lose 2 file(s) not in the cache: data/a.txt, data/sub/new.txt" in result.err
    assert "add them first, or pass --force to discard them" in result.err
    assert tracked.snapshot() == before


def test_checkout_refuses_to_replace_an_uncached_file_dataset(tracked: Workdir) -> None:
    tracked.write("model.bin", b"retrained, not added")
    result = tracked.fails("checkout", "model.bin")
    assert "would lose 1 file(s) not in the cache: model.bin" in result.err
    assert tracked.read("model.bin") == b"retrained, not added"


def test_checkout_refuses_to_replace_an_uncached_file_with_a_folder(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    tracked.write("data", b"a file where the folder was")
    result = tracked.fails("checkout", "data")
    assert "would lose 1 file(s) not in the cache: data" in result.err
    assert tracked.read("data") == b"a file where the folder was"
    tracked.ok("checkout", "data", "--force")
    assert_restored(tracked)


def test_force_discards_uncached_data(tracked: Workdir) -> None:
    tracked.write("data/a.txt", b"precious edit")
    tracked.write("data/sub/new.txt", b"precious new file")
    tracked.ok("checkout", "--force")
    assert_restored(tracked)
    assert not tracked.path("data/sub/new.txt").exists()
    assert tracked.status()["data"]["state"] == "in sync"


def test_checkout_of_a_folder_that_replaced_a_tracked_file(tracked: Workdir) -> None:
    os.unlink(tracked.path("model.bin"))
    tracked.write("model.bin/inner", b"weights")  # content the cache holds: safe to remove
    tracked.ok("checkout", "model.bin")
    assert tracked.read("model.bin") == b"weights"


def test_checkout_refuses_missing_objects_before_touching_anything(tracked: Workdir) -> None:
    os.unlink(tracked.path("data/a.txt"))
    os.unlink(tracked.path("data/b.txt"))
    os.unlink(tracked.object_path(hash_bytes(b"beta\n")))
    tracked.write("data/c extra", b"alpha\n")  # would be deleted: cached content
    before = tracked.snapshot()
    result = tracked.fails("checkout", "data")
    assert f"1 object(s) missing from the cache (run: vtool fetch, or vtool pull): {BETA}" in result.err
    assert tracked.snapshot() == before


def test_checkout_with_the_cache_gone_says_so(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data"))
    shutil.rmtree(tracked.cache_dir)
    result = tracked.fails("checkout", "data")
    assert "is not in the cache" in result.err
    assert "vtool fetch" in result.err
    assert not tracked.path("data").exists()


def _corrupt(project: Workdir, content: bytes, new: bytes | None = None) -> None:
    """Replace an object's bytes in place: flip its first byte, or write `new`."""
    path = project.object_path(hash_bytes(content))
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(new if new is not None else bytes([data[0] ^ 0xFF]) + data[1:])
    os.chmod(path, 0o444)


@pytest.mark.parametrize("link", ["copy", "auto", "hardlink", "symlink"])
def test_a_corrupt_object_is_never_checked_out(tracked: Workdir, link: str) -> None:
    tracked.ok("config", "cache.link", link)
    os.unlink(tracked.path("data/sub/c.txt"))
    os.unlink(tracked.path("data/b.txt"))
    _corrupt(tracked, b"gamma\n")
    result = tracked.fails("checkout", "data")
    assert f"1 corrupt cache object(s) not checked out and moved to the cache's quarantine/: {GAMMA}" in result.err
    assert "vtool pull" in result.err
    assert GAMMA not in tracked.cache_oids()  # quarantined, so a fetch can restore it
    assert not tracked.path("data/sub/c.txt").exists()
    assert tracked.read("data/b.txt") == b"beta\n"  # intact objects are still restored
    assert not [p for p in tracked.path("data").rglob("*") if ".vtool-tmp-" in p.name]


def test_a_corrupt_object_does_not_overwrite_a_workspace_file(tracked: Workdir) -> None:
    tracked.write("data/a.txt", b"beta\n")  # cached content, so checkout may replace it
    _corrupt(tracked, b"alpha\n")
    tracked.fails("checkout", "data")
    assert tracked.read("data/a.txt") == b"beta\n"


def test_a_truncated_object_is_reported_as_a_size_mismatch(tracked: Workdir) -> None:
    os.unlink(tracked.path("model.bin"))
    _corrupt(tracked, b"weights", new=b"wei")
    result = tracked.fails("checkout", "model.bin")
    assert f"cache object {hash_bytes(b'weights')} has 3 bytes, expected 7" in result.err
    assert not tracked.path("model.bin").exists()


@pytest.mark.parametrize("link", ["copy", "auto"])
def test_a_copy_hashes_each_object_once_and_then_copies_it_in_the_kernel(tracked: Workdir, link: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tracked.ok("config", "cache.link", link)
    os.unlink(tracked.path("data/sub/c.txt"))
    tracked.ok("checkout", "data")  # hashed on the way: its stamp is remembered
    copies: list[str] = []
    real_copy = workspace.kernel_copy
    monkeypatch.setattr(workspace, "kernel_copy", lambda src, dest, mode: (copies.append(src.name),
                                                                              real_copy(src, dest, mode)))
    monkeypatch.setattr(workspace, "_copy_verified", _no_hashing)
    os.unlink(tracked.path("data/sub/c.txt"))
    tracked.ok("checkout", "data")
    assert tracked.read("data/sub/c.txt") == b"gamma\n"
    assert copies == [tracked.object_path(GAMMA).name]
    assert mode(tracked, "data/sub/c.txt") == 0o644


def _no_hashing(*args: object) -> None:
    pytest.fail("a known-good object was hashed again")


def test_an_object_rewritten_after_it_was_hashed_is_hashed_again_and_refused(tracked: Workdir) -> None:
    tracked.ok("config", "cache.link", "copy")
    os.unlink(tracked.path("data/sub/c.txt"))
    tracked.ok("checkout", "data")  # remembered as good
    os.unlink(tracked.path("data/sub/c.txt"))
    _corrupt(tracked, b"gamma\n")  # a new stamp: the memory no longer vouches for it
    result = tracked.fails("checkout", "data")
    assert f"not checked out and moved to the cache's quarantine/: {GAMMA}" in result.err
    assert not tracked.path("data/sub/c.txt").exists()
    assert not [p for p in tracked.path("data").rglob("*") if ".vtool-tmp-" in p.name]


def test_checkout_verify_hashes_even_a_known_good_object(tracked: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    tracked.ok("config", "cache.link", "copy")
    os.unlink(tracked.path("data/sub/c.txt"))
    tracked.ok("checkout", "data")
    hashed: list[str] = []
    real = workspace._copy_verified
    monkeypatch.setattr(workspace, "_copy_verified", lambda src, *rest: (hashed.append(src.name), real(src, *rest))[1])
    os.unlink(tracked.path("data/sub/c.txt"))
    tracked.ok("checkout", "--verify", "data")
    assert hashed == [tracked.object_path(GAMMA).name]
    assert tracked.read("data/sub/c.txt") == b"gamma\n"


def _link_mode_checkout(project: Workdir, link: str) -> None:
    project.ok("config", "cache.link", link)
    shutil.rmtree(project.path("data"))
    os.unlink(project.path("model.bin"))
    project.ok("checkout")
    assert_restored(project)


@pytest.mark.parametrize("link", ["copy", "auto"])
def test_copy_modes_write_independent_writable_files(tracked: Workdir, link: str) -> None:
    _link_mode_checkout(tracked, link)
    for rel in ("data/a.txt", "data/sub/deep/d.bin", "model.bin"):
        st = os.lstat(tracked.path(rel))
        assert stat.S_ISREG(st.st_mode)
        if st.st_ino == os.stat(tracked.object_path(hash_bytes(tracked.read(rel)))).st_ino:
            pytest.fail(f"{rel} shares the cache object's inode")
        assert stat.S_IMODE(st.st_mode) == 0o644


def test_hardlink_mode_links_read_only_cache_objects(tracked: Workdir) -> None:
    _link_mode_checkout(tracked, "hardlink")
    for rel in ("data/a.txt", "data/same.txt", "data/sub/deep/d.bin", "model.bin"):
        st = os.lstat(tracked.path(rel))
        assert st.st_ino == os.stat(tracked.object_path(hash_bytes(tracked.read(rel)))).st_ino
        assert stat.S_IMODE(st.st_mode) == 0o444, rel
    # An executable cannot share a 0o444 object: it is copied with its exec bits.
    assert mode(tracked, "data/run.sh") == 0o755
    assert os.stat(tracked.path("data/run.sh")).st_nlink == 1


def test_symlink_mode_links_into_the_cache(tracked: Workdir) -> None:
    _link_mode_checkout(tracked, "symlink")
    for rel in ("data/a.txt", "data/sub/deep/d.bin", "model.bin"):
        path = tracked.path(rel)
        assert path.is_symlink()
        target = tracked.object_path(hash_bytes(path.read_bytes()))
        assert os.path.realpath(path) == os.path.realpath(target)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert not tracked.path("data/run.sh").is_symlink()
    assert mode(tracked, "data/run.sh") == 0o755


def test_reflink_mode_clones_or_says_the_filesystem_cannot(tracked: Workdir) -> None:
    tracked.ok("config", "cache.link", "reflink")
    os.unlink(tracked.path("model.bin"))
    result = tracked.run("checkout", "model.bin")
    if result.code == 0:
        assert tracked.read("model.bin") == b"weights"
        assert mode(tracked, "model.bin") == 0o644
    else:
        assert result.code == 1
        assert "cache.link is 'reflink' but this filesystem cannot clone files" in result.err
        assert "vtool config cache.link auto" in result.err
        assert not tracked.path("model.bin").exists()


@pytest.mark.parametrize("link", ["copy", "auto", "hardlink", "symlink"])
def test_status_right_after_checkout_hashes_nothing(tracked: Workdir, link: str) -> None:
    _link_mode_checkout(tracked, link)
    states = tracked.status()
    assert {p: (s["state"], s["hashed"]) for p, s in states.items()} == {
        "data": ("in sync", 0), "model.bin": ("in sync", 0),
    }


@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_readd_after_a_link_mode_checkout_is_a_no_op(tracked: Workdir, link: str) -> None:
    oid = tracked.pointer("data").oid
    _link_mode_checkout(tracked, link)
    added = tracked.add("data")["added"][0]
    assert (added["oid"], added["hashed"], added["changed"]) == (oid, 0, False)


@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_switching_back_to_copy_replaces_links_with_files(tracked: Workdir, link: str) -> None:
    _link_mode_checkout(tracked, link)
    tracked.ok("config", "cache.link", "copy")
    shutil.rmtree(tracked.path("data"))
    tracked.ok("checkout", "data")
    assert not tracked.path("data/a.txt").is_symlink()
    assert mode(tracked, "data/a.txt") == 0o644


def test_checkout_recreates_empty_folders_and_the_empty_file(tracked: Workdir) -> None:
    shutil.rmtree(tracked.path("data/empty dir"))
    os.unlink(tracked.path("data/empty.txt"))
    tracked.ok("checkout", "data")
    assert tracked.path("data/empty dir").is_dir()
    assert tracked.read("data/empty.txt") == b""


def test_checkout_refuses_to_write_through_a_symlinked_folder(tracked: Workdir) -> None:
    outside = tracked.root.parent / "outside"
    outside.mkdir()
    shutil.rmtree(tracked.path("data/sub"))
    os.symlink(outside, tracked.path("data/sub"))
    result = tracked.fails("checkout", "data")
    assert "symlink" in result.err
    assert list(outside.iterdir()) == []


def test_checkout_with_no_pointers_does_nothing(project: Workdir) -> None:
    assert project.ok("checkout", "--json").json() == {"datasets": []}


def test_targets_through_a_symlinked_folder_outside_the_repo_are_refused(tracked: Workdir) -> None:
    outside = tracked.root.parent / "outside"
    outside.mkdir()
    (outside / "data.vtool").write_bytes(tracked.read("data.vtool"))
    os.symlink(outside, tracked.path("ext"))
    for command in ("checkout", "status", "add"):
        result = tracked.fails(command, "ext/data")
        assert "outside the repository" in result.err
    assert sorted(p.name for p in outside.iterdir()) == ["data.vtool"]


def test_checkout_planned_by_folder_oids_keeps_unchanged_folders_and_clears_debris(tracked: Workdir) -> None:
    """Only a changed folder is rewritten, yet an empty folder stays and a killed run's temp file goes."""
    tracked.status()  # folders remembered with their oids: the checkout below reuses them
    (tracked.path("data") / "sub" / f"{TEMP_MARK}0123456789ab-c.txt").write_bytes(b"half of c")
    os.unlink(tracked.path("data/a.txt"))
    (tracked.path("data") / "stray dir" / "deeper").mkdir(parents=True)
    result = tracked.ok("checkout", "data", "--json").json()
    assert result == {"datasets": [{"path": "data", "written": 1, "deleted": 0, "unchanged": 7}]}
    assert_restored(tracked)
    assert not list(tracked.path("data").rglob(f"{TEMP_MARK}*"))
    assert not tracked.path("data/stray dir").exists()
    assert tracked.run("status", "--check").code == 0


@pytest.mark.parametrize("refusal", [None, errno.EXDEV, errno.ENOSYS])
def test_kernel_copy_copies_bytes_and_mode_even_where_copy_file_range_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int | None) -> None:
    src = tmp_path / "src"
    data = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(data)
    if refusal is not None:
        def refuse(*args: object) -> int:
            raise OSError(refusal, os.strerror(refusal))
        monkeypatch.setattr(os, "copy_file_range", refuse)
    kernel_copy(src, tmp_path / "dest", 0o755)
    assert (tmp_path / "dest").read_bytes() == data
    assert stat.S_IMODE(os.stat(tmp_path / "dest").st_mode) == 0o755


def test_kernel_copy_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"new")
    (tmp_path / "dest").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        kernel_copy(tmp_path / "src", tmp_path / "dest")
    assert (tmp_path / "dest").read_bytes() == b"old"


@pytest.mark.parametrize("swap", [False, True])
def test_staged_with_swap_replaces_the_file_and_keeps_it_when_the_write_fails(tmp_path: Path, swap: bool) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(OSError), staged(dest) as stage:
        stage.swap = swap
        raise OSError("the copy failed")
    assert dest.read_bytes() == b"old"  # a failed write never costs the old file
    with staged(dest) as stage:
        stage.tmp.write_bytes(b"new")
        stage.swap = swap
    assert dest.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_a_big_file_is_swapped_in_whole_by_checkout(tracked: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    swaps: list[bool] = []
    real = fsutil.exchange
    monkeypatch.setattr(fsutil, "exchange", lambda a, b: swaps.append(real(a, b)) or swaps[-1])
    big = os.urandom(workspace.SWAP_BYTES + 1)
    tracked.write("big.bin", big)
    tracked.add("big.bin")
    tracked.write("big.bin", b"edited, uncached")
    tracked.fails("checkout", "big.bin")  # the edit is not in the cache: refused, the file kept
    assert tracked.read("big.bin") == b"edited, uncached"
    tracked.ok("checkout", "--force", "big.bin")
    assert tracked.read("big.bin") == big
    assert swaps == [True]  # renamed over the old file by an atomic exchange, the old one then unlinked
    assert sorted(os.listdir(tracked.root)) == sorted(n for n in os.listdir(tracked.root) if TEMP_MARK not in n)


def test_exchange_swaps_two_files_and_refuses_an_absent_one(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").write_bytes(b"B")
    assert exchange(tmp_path / "a", tmp_path / "b")
    assert ((tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()) == (b"B", b"A")
    assert not exchange(tmp_path / "a", tmp_path / "absent")
    assert (tmp_path / "a").read_bytes() == b"B"
    assert not (tmp_path / "absent").exists()
