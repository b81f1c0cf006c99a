"""Folders remembered by signature: an unchanged folder is taken as it was, a changed or racy one never is."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from projectkit import STREAMED, Workdir, hasher_changing

from vtool import workspace
from vtool.cache import Cache
from vtool.hashing import hash_bytes, hash_stream
from vtool.manifest import Entry
from vtool.statcache import COARSE_WINDOW_NS, NS_PER_SECOND, RACY_WINDOW_NS, StatCache
from vtool.workspace import Baseline, Tree, scan

OLD_NS = 10 * COARSE_WINDOW_NS + 123  # age of "old" files: settled whatever the clock's resolution
YOUNG_AHEAD_NS = 60 * NS_PER_SECOND  # a "fresh" file dated this far ahead is racy for the whole test


def _files(root: Path, files: dict[str, bytes], age_ns: int = OLD_NS) -> None:
    """Write files dated age_ns in the past (mtime; ctime is now, so callers wait it out or keep it fresh)."""
    when = time.time_ns() - age_ns
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(when, when))


def _settle() -> None:
    """Let every ctime written so far age past the racy window."""
    time.sleep(2 * RACY_WINDOW_NS / 1e9)


def _scanned(root: Path, files: dict[str, bytes]) -> tuple[StatCache, Tree]:
    """Write settled files and scan data once into a new stat cache: the remembered state most tests start from."""
    _files(root, files)
    _settle()
    stats = StatCache(root / "stat.db")
    return stats, scan(root, "data", stats, hash_stream)


def _against(tree: Tree) -> Baseline:
    return Baseline(tree.oid, tree.load)


def _counting_hasher(calls: list[str]):
    def hasher(handle: BinaryIO) -> tuple[str, int]:
        calls.append(str(handle.name))
        return hash_stream(handle)
    return hasher


def test_an_unchanged_folder_is_reused_without_reading_its_files(tmp_path: Path) -> None:
    stats, full = _scanned(tmp_path, {"data/a": b"a", "data/sub/b": b"b", "data/sub/deeper/c": b"c"})
    stats.flush()
    assert set(stats.folders()) == {"data", "data/sub", "data/sub/deeper"}
    calls: list[str] = []
    reused = scan(tmp_path, "data", stats, _counting_hasher(calls), baseline=_against(full))
    assert (reused.oid, reused.size, reused.files) == (full.oid, full.size, full.files)
    assert (reused.complete, reused.hashed, reused.manifests, reused.file_oids, calls) == (False, 0, {}, {}, [])
    assert full.complete
    stats.close()


def test_a_folder_remembered_with_another_oid_than_the_baseline_is_rebuilt(tmp_path: Path) -> None:
    # The second status after an edit: data/sub is remembered (as edited) but differs from the pointer's,
    # so it is listed in full, as a comparison with the pointer needs, while data/other is reused.
    stats, pointer_side = _scanned(tmp_path, {"data/sub/b": b"b", "data/other/c": b"c"})
    _files(tmp_path, {"data/sub/b": b"B, longer"})
    _settle()
    scan(tmp_path, "data", stats, hash_stream)
    stats.flush()
    assert stats.folders()["data/sub"].oid != pointer_side.load(pointer_side.oid)[1].oid
    again = scan(tmp_path, "data", stats, hash_stream, baseline=_against(pointer_side))
    assert set(again.file_oids) == {"sub/b"}
    assert again.hashed == 0
    stats.close()


def test_a_change_deep_down_rebuilds_only_the_folders_on_its_path(tmp_path: Path) -> None:
    stats, before = _scanned(tmp_path, {"data/a": b"a", "data/sub/b": b"b", "data/other/c": b"c"})
    stats.flush()
    _files(tmp_path, {"data/sub/b": b"B, longer"})
    reused = scan(tmp_path, "data", stats, hash_stream, baseline=_against(before))
    full = scan(tmp_path, "data", StatCache(tmp_path / "fresh.db"), hash_stream)
    assert reused.oid == full.oid
    assert set(reused.file_oids) == {"a", "sub/b"}  # data/other was taken as remembered
    assert reused.file_oids["sub/b"].oid == hash_bytes(b"B, longer")
    stats.close()


@pytest.mark.parametrize("change", ["same size, same mtime", "renamed", "removed", "added", "chmod +x",
                                    "new empty folder"])
def test_every_kind_of_change_is_seen_through_a_remembered_folder(tmp_path: Path, change: str) -> None:
    stats, before = _scanned(tmp_path, {"data/a": b"aaaa", "data/sub/b": b"bbbb"})
    stats.flush()
    target = tmp_path / "data" / "sub" / "b"
    if change == "same size, same mtime":
        st = os.stat(target)
        target.write_bytes(b"BBBB")
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "renamed":
        target.rename(target.with_name("b2"))
    elif change == "removed":
        target.unlink()
    elif change == "added":
        _files(tmp_path, {"data/sub/new": b"n"})
    elif change == "chmod +x":
        target.chmod(0o755)
    else:
        (tmp_path / "data" / "sub" / "empty").mkdir()
    reused = scan(tmp_path, "data", stats, hash_stream, baseline=_against(before))
    assert reused.oid == scan(tmp_path, "data", StatCache(tmp_path / "fresh.db"), hash_stream).oid
    stats.close()


def test_a_folder_with_a_file_inside_the_racy_window_is_never_remembered(tmp_path: Path) -> None:
    # git's racy rule at folder level: a same-size edit in the same clock tick as our walk keeps every
    # stamp field, so a folder whose newest stamp is that young must not be vouched for by its signature.
    _files(tmp_path, {"data/old/a": b"a"})
    _settle()
    # Dated ahead of the clock, the file stays inside the window however long a loaded machine takes to scan.
    _files(tmp_path, {"data/fresh/b": b"b"}, age_ns=-YOUNG_AHEAD_NS)
    stats = StatCache(tmp_path / "stat.db")
    before = scan(tmp_path, "data", stats, hash_stream)
    stats.flush()
    assert set(stats.folders()) == {"data/old"}  # neither the fresh folder nor any folder above it
    target = tmp_path / "data" / "fresh" / "b"
    st = os.stat(target)
    target.write_bytes(b"B")  # same size, mtime put back: only the content differs
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert scan(tmp_path, "data", stats, hash_stream, baseline=_against(before)).oid == scan(
        tmp_path, "data", StatCache(tmp_path / "fresh.db"), hash_stream).oid
    stats.close()


def test_a_file_changing_while_it_is_hashed_keeps_its_folder_unremembered(tmp_path: Path) -> None:
    _files(tmp_path, {"data/f": STREAMED})
    _settle()
    path = tmp_path / "data/f"

    stats = StatCache(tmp_path / "stat.db")
    before = scan(tmp_path, "data", stats, hasher_changing(path))
    stats.flush()
    assert stats.folders() == {}
    after = scan(tmp_path, "data", stats, hash_stream, baseline=_against(before))
    assert after.file_oids["f"].oid == hash_bytes(b"after, longer")
    stats.close()


def test_folders_that_are_gone_are_forgotten(tmp_path: Path) -> None:
    stats, before = _scanned(tmp_path, {"data/keep/a": b"a", "data/gone/b": b"b", "database/c": b"c"})
    scan(tmp_path, "database", stats, hash_stream)
    stats.flush()
    (tmp_path / "data" / "gone" / "b").unlink()
    (tmp_path / "data" / "gone").rmdir()
    scan(tmp_path, "data", stats, hash_stream, baseline=_against(before))
    stats.close()
    assert set(StatCache(tmp_path / "stat.db").folders()) == {"data", "data/keep", "database"}


def test_a_failed_write_leaves_files_and_folders_as_they_were(tmp_path: Path) -> None:
    # One transaction: a kill (here, an error) between the two tables never leaves folder rows that
    # vouch for files whose rows were not written, nor the reverse.
    _files(tmp_path, {"data/a": b"a"})
    _settle()
    warnings: list[str] = []
    stats = StatCache(tmp_path / "stat.db", warn=warnings.append)
    scan(tmp_path, "data", stats, hash_stream)
    real = stats._db

    class Failing:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def __enter__(self):
            return real.__enter__()

        def __exit__(self, *exc):
            return real.__exit__(*exc)

        def executemany(self, sql: str, rows):
            if "INTO folder" in sql:
                raise sqlite3.OperationalError("disk I/O error")
            return real.executemany(sql, rows)

    stats._db = Failing()  # type: ignore[assignment]
    stats.flush()  # only a cache: a failed write is a warning, never an error
    assert len(warnings) == 1 and "disk I/O error" in warnings[0]
    reopened = sqlite3.connect(tmp_path / "stat.db")
    assert reopened.execute("SELECT count(*) FROM stat").fetchone() == (0,)
    assert reopened.execute("SELECT count(*) FROM folder").fetchone() == (0,)
    reopened.close()
    real.close()


def _status_without_listing_the_cache(project: Workdir, monkeypatch: pytest.MonkeyPatch) -> dict:
    def refuse(self: Cache, oids: object) -> set[str]:
        raise AssertionError("status listed the cache although nothing could be missing")
    with monkeypatch.context() as patch:
        patch.setattr(Cache, "missing", refuse)
        return project.status()


def test_status_lists_the_cache_only_when_an_object_may_have_left_it(project: Workdir,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    project.loose_only()  # removes an object file by hand
    _files(project.root, {"data/a.txt": b"a", "data/sub/b.txt": b"b"})
    project.add("data")
    _settle()
    assert project.status()["data"]["state"] == "in sync"  # lists the cache once, then remembers it whole
    assert _status_without_listing_the_cache(project, monkeypatch)["data"]["state"] == "in sync"
    project.object_path(hash_bytes(b"b")).unlink()
    _settle()
    after = project.status()["data"]
    assert (after["state"], after["missing_from_cache"]) == ("not in cache", 1)


def test_add_after_a_change_stores_the_changed_folders_and_reuses_the_rest(project: Workdir,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _files(project.root, {"data/a/1": b"1", "data/b/2": b"2", "data/c/3": b"3"})
    project.add("data")
    _settle()
    assert project.status()["data"]["state"] == "in sync"  # remembers the cache holds all of v1
    _files(project.root, {"data/b/2": b"two", "data/d/4": b"4"})
    looked_up: list[str] = []
    real_lookup = StatCache.lookup
    monkeypatch.setattr(StatCache, "lookup", lambda self, path, stamp: looked_up.append(path) or real_lookup(
        self, path, stamp))
    added = project.add("data")["added"][0]
    assert added["hashed"] == 2
    assert sorted(looked_up) == ["data/b/2", "data/d/4"]  # data/a and data/c were taken as remembered
    fresh = scan(project.root, "data", StatCache(project.root / "fresh.db"), hash_stream)
    assert project.pointer("data").oid == fresh.oid
    objects = {*fresh.manifests, *(e.oid for e in fresh.file_oids.values())}
    assert objects <= project.cache_oids()


def test_checkout_of_a_revision_walks_the_cache_again_once_an_object_left_it(project: Workdir,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _files(project.root, {"data/a": b"1", "data/b/c": b"2"})
    project.add("data")
    project.commit("v1")
    project.git("tag", "v1")
    _files(project.root, {"data/b/c": b"3"})
    project.add("data")
    project.commit("v2")
    project.git("tag", "v2")
    _settle()
    project.ok("checkout", "v1")  # walks v1's manifests and lists the cache once, then remembers v1 whole
    project.ok("checkout", "v2")
    _settle()

    def refuse(*args: object) -> None:
        raise AssertionError("checkout walked the cache although nothing could have left it")
    with monkeypatch.context() as patch:
        patch.setattr("vtool.ops.sync.tally", refuse)
        project.ok("checkout", "v1")
    assert project.path("data/b/c").read_bytes() == b"2"
    project.ok("checkout", "v2")
    project.drop_object(hash_bytes(b"2"))
    _settle()
    result = project.fails("checkout", "v1")
    assert hash_bytes(b"2") in result.err
    assert project.path("data/b/c").read_bytes() == b"3"


def _listing_counter(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count how often the scan lists each folder (by its repo-relative path)."""
    listed: dict[str, int] = {}
    real = workspace._list

    def counting(path: str, rel: str, cache_root: Path | None) -> Any:
        listed[rel] = listed.get(rel, 0) + 1
        return real(path, rel, cache_root)

    monkeypatch.setattr(workspace, "_list", counting)
    return listed


def _reading_baseline(tree: Tree, reads: list[str]) -> Baseline:
    def load(oid: str) -> list[Entry]:
        reads.append(oid)
        return tree.load(oid)
    return Baseline(tree.oid, load)


FOLDERS = {"data", "data/a", "data/a/x", "data/a/y", "data/b"}


def test_every_folder_is_listed_once_whether_it_changed_or_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The signature and the build share one listing (two listings of each changed folder were a stat more
    # per file of a status after a change in every folder); only changed folders read the baseline's manifests.
    files = {"data/top": b"t", "data/a/x/1": b"1", "data/a/y/2": b"2", "data/b/3": b"3"}
    stats, pointer_side = _scanned(tmp_path, files)
    stats.flush()
    listed = _listing_counter(monkeypatch)
    reads: list[str] = []
    same = scan(tmp_path, "data", stats, hash_stream, baseline=_reading_baseline(pointer_side, reads))
    assert (same.oid, listed, reads) == (pointer_side.oid, dict.fromkeys(FOLDERS, 1), [])
    _files(tmp_path, {"data/a/x/1": b"one", "data/b/3": b"three"})
    _settle()
    for _ in ("first status after the change", "again: remembered as changed, not as the pointer has it"):
        listed.clear()
        changed = scan(tmp_path, "data", stats, hash_stream, baseline=_reading_baseline(pointer_side, reads))
        stats.flush()
        assert listed == dict.fromkeys(FOLDERS, 1)
        assert changed.oid == scan(tmp_path, "data", StatCache(tmp_path / "fresh.db"), hash_stream).oid
        assert changed.oid != pointer_side.oid
    stats.close()
