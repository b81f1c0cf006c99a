"""add's durability order: every object it stores is flushed (its file, then its folder) before the pointer
naming it is renamed into place, and only the cache's own files are flushed while they are few."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool import cache as cache_mod
from vtool.hashing import hash_bytes
from vtool.store.pack import PACK_THRESHOLD

LARGE = b"L" * (PACK_THRESHOLD + 5)  # stored loose


@pytest.fixture()
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record (what, path) for every fsync, filesystem-wide sync and rename, in order."""
    log: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    monkeypatch.setattr(os, "sync", lambda: log.append(("sync", "")))

    def replace(src: str | Path, dest: str | Path) -> None:
        real_replace(src, dest)
        log.append(("rename", os.path.realpath(dest)))

    monkeypatch.setattr(os, "replace", replace)
    return log


def _index(log: list[tuple[str, str]], what: str, path: Path) -> int:
    """Position of the first event what on path (a missing one fails the test)."""
    return log.index((what, os.path.realpath(path)))


def test_loose_and_packed_objects_are_flushed_before_the_pointer(project: Workdir,
                                                                 events: list[tuple[str, str]]) -> None:
    project.write_tree("data", {"big.bin": LARGE, "a.txt": b"a\n", "sub/b.txt": b"b\n"})
    project.ok("add", "data")
    pointer = _index(events, "rename", project.path("data.vtool"))
    loose = project.object_path(hash_bytes(LARGE))
    for path in (loose, loose.parent, project.cache_dir, project.cache_dir.parent):
        assert _index(events, "fsync", path) < pointer, path
    packs = sorted(project.cache_dir.glob("packs/*.pack"))
    assert packs
    for pack in packs:  # each pack fsynced as a temp file, then renamed, then its folder fsynced
        renamed = _index(events, "rename", pack)
        assert ("fsync", os.path.realpath(pack.parent)) in events[renamed:pointer]
        assert any(what == "fsync" and ".vtool-tmp-" in path for what, path in events[:renamed])
    assert ("sync", "") not in events  # nothing but the cache's own files is flushed


def test_an_object_found_already_in_the_cache_is_flushed_again(project: Workdir,
                                                               events: list[tuple[str, str]]) -> None:
    """A copy left by an add killed before its flush may still be only in memory: it is flushed before use."""
    project.write("one/big.bin", LARGE)
    project.write("two/big.bin", LARGE)
    project.ok("add", "one")
    events.clear()
    project.ok("add", "two")
    loose = project.object_path(hash_bytes(LARGE))
    assert _index(events, "fsync", loose) < _index(events, "rename", project.path("two.vtool"))


def test_many_loose_objects_take_one_filesystem_sync(project: Workdir, events: list[tuple[str, str]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "SYNC_EACH_MAX", 3)
    project.loose_only()
    project.write_tree("data", {f"f{i}.txt": f"{i}\n".encode() for i in range(5)})
    project.ok("add", "data")
    pointer = _index(events, "rename", project.path("data.vtool"))
    assert events.index(("sync", "")) < pointer
    assert not any(what == "fsync" and "/cache/" in path and ".vtool-tmp-" not in path for what, path in events)


def test_an_add_that_stores_nothing_flushes_nothing(project: Workdir, events: list[tuple[str, str]]) -> None:
    """A re-add with no change names only objects already flushed: no folder fsync (a journal commit on ext4)."""
    project.write_tree("data", {"big.bin": LARGE, "a.txt": b"a\n"})
    project.ok("add", "data")
    events.clear()
    project.ok("add", "data")
    cache = os.path.realpath(project.cache_dir)
    assert [path for what, path in events if what == "fsync" and path.startswith(os.path.dirname(cache))] == []
    assert ("sync", "") not in events
