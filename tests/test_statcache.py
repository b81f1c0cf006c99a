"""The stat cache: trust a remembered hash only when the file provably did not change, git's racy rule included."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from projectkit import STREAMED, hasher_changing

from vtool.hashing import hash_bytes, hash_stream
from vtool.statcache import RACY_WINDOW_NS, FolderMemo, Stamp, StatCache
from vtool.workspace import scan

OID = hash_bytes(b"x")


def _old_stamp(size: int = 1) -> Stamp:
    old = time.time_ns() - 10 * RACY_WINDOW_NS + 123  # not a whole second: a fine-grained timestamp
    return Stamp(ino=7, size=size, mtime_ns=old, ctime_ns=old)


def test_lookup_needs_every_stamp_field_to_match(tmp_path: Path) -> None:
    stats = StatCache(tmp_path / "stat.db")
    stamp = _old_stamp()
    stats.record("data/a", stamp, OID)
    stats.flush()
    assert stats.lookup("data/a", stamp) == OID
    assert stats.lookup("data/b", stamp) is None
    for changed in (
        Stamp(8, stamp.size, stamp.mtime_ns, stamp.ctime_ns),
        Stamp(stamp.ino, 2, stamp.mtime_ns, stamp.ctime_ns),
        Stamp(stamp.ino, stamp.size, stamp.mtime_ns + 1, stamp.ctime_ns),
        Stamp(stamp.ino, stamp.size, stamp.mtime_ns, stamp.ctime_ns + 1),
    ):
        assert stats.lookup("data/a", changed) is None
    stats.close()


def test_entries_persist_across_processes(tmp_path: Path) -> None:
    stats = StatCache(tmp_path / "stat.db")
    stamp = _old_stamp()
    for path in ("data", "data/a", "data/sub/b", "database/c"):
        stats.record(path, stamp, OID)
    stats.close()
    reopened = StatCache(tmp_path / "stat.db")
    assert [reopened.lookup(p, stamp) for p in ("data", "data/a", "data/sub/b", "database/c")] == [OID] * 4
    reopened.close()


def test_a_file_is_trusted_only_if_it_was_read_after_the_racy_window(tmp_path: Path) -> None:
    # git's racy-timestamp rule: a file changed in the same clock tick right after we read it keeps its
    # stamp, so a remembered hash may be trusted only if the read began a window after the file's mtime.
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "f"
    path.write_bytes(b"fresh")
    read_at: list[int] = []

    def hasher(handle: BinaryIO) -> tuple[str, int]:
        read_at.append(time.time_ns())
        return hash_stream(handle)

    stats = StatCache(tmp_path / "stat.db")
    scan(tmp_path, "data", stats, hasher)
    stats.flush()
    st = os.lstat(path)
    trusted = stats.lookup("data/f", Stamp.of(st)) is not None
    assert trusted, "a second scan right after the first should hash nothing"
    assert read_at[0] - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_WINDOW_NS
    stats.close()


def test_second_scan_hashes_nothing_and_a_change_is_seen(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a").write_bytes(b"a")
    (tmp_path / "data" / "sub" / "b").write_bytes(b"b")
    stats = StatCache(tmp_path / "stat.db")
    first = scan(tmp_path, "data", stats, hash_stream)
    stats.flush()
    second = scan(tmp_path, "data", stats, hash_stream)
    assert (first.hashed, second.hashed, second.oid) == (2, 0, first.oid)
    (tmp_path / "data" / "sub" / "b").write_bytes(b"B")
    third = scan(tmp_path, "data", stats, hash_stream)
    assert third.hashed == 1
    assert third.file_oids["sub/b"].oid == hash_bytes(b"B")
    stats.close()


def test_a_file_changing_while_it_is_hashed_is_not_remembered(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "f"
    path.write_bytes(STREAMED)

    stats = StatCache(tmp_path / "stat.db")
    scan(tmp_path, "data", stats, hasher_changing(path))
    stats.flush()
    assert stats.lookup("data/f", Stamp.of(os.lstat(path))) is None
    assert scan(tmp_path, "data", stats, hash_stream).file_oids["f"].oid == hash_bytes(b"after, longer")
    stats.close()


@pytest.mark.parametrize("change", [b"after", b"after, longer", b""])
def test_a_small_file_changed_between_the_scan_and_its_read_is_hashed_as_read_and_not_remembered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: bytes) -> None:
    # A small file is read whole with the scan's stat standing in for a stat before the read: a change
    # after the scan (same size or not) must still send it down the path that re-stats and re-reads it.
    import vtool.workspace

    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "f"
    path.write_bytes(b"befor")
    scanned = Stamp.of(os.lstat(path))
    real_settle = vtool.workspace.settle

    def settle_then_edit(changed: int) -> None:  # after the scan, before the file is opened
        real_settle(changed)
        path.write_bytes(change)

    monkeypatch.setattr(vtool.workspace, "settle", settle_then_edit)
    stats = StatCache(tmp_path / "stat.db")
    tree = scan(tmp_path, "data", stats)
    stats.flush()
    entry = tree.file_oids["f"]
    assert (entry.oid, entry.size) == (hash_bytes(change), len(change))
    assert stats.lookup("data/f", scanned) is None  # the scan's stamp never vouches for the bytes read
    assert stats.lookup("data/f", Stamp.of(os.lstat(path))) is None  # read too soon after its change
    assert stats.folders() == {}
    stats.close()


def test_a_small_unchanged_file_is_read_in_one_read_and_remembered(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "f"
    path.write_bytes(b"small")
    stats = StatCache(tmp_path / "stat.db")
    assert scan(tmp_path, "data", stats).file_oids["f"].oid == hash_bytes(b"small")
    stats.flush()
    assert stats.lookup("data/f", Stamp.of(os.lstat(path))) == hash_bytes(b"small")
    stats.close()


@pytest.mark.parametrize("future_s", [5, 3600])
def test_a_file_dated_in_the_future_is_hashed_every_time(tmp_path: Path, future_s: int) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "f"
    path.write_bytes(b"x")
    future = time.time_ns() + future_s * 1_000_000_000 + 321
    os.utime(path, ns=(future, future))
    stats = StatCache(tmp_path / "stat.db")
    started = time.monotonic()
    assert scan(tmp_path, "data", stats, hash_stream).hashed == 1
    stats.flush()
    assert scan(tmp_path, "data", stats, hash_stream).hashed == 1
    assert time.monotonic() - started < 1.0  # never sleeps until the future
    stats.close()


def test_remembering_what_the_table_already_says_writes_nothing(tmp_path: Path) -> None:
    """A no-change add re-records the version it found whole: no transaction, so closing checkpoints nothing."""
    db = tmp_path / "stat.db"
    oid = hash_bytes(b"root")
    first = StatCache(db)
    first.remember_complete(oid, "sig-1")
    first.close()
    before = (db.stat().st_mtime_ns, db.read_bytes())
    time.sleep(0.01)
    again = StatCache(db)
    again.remember_complete(oid, "sig-1")
    again.close()
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before
    changed = StatCache(db)
    changed.remember_complete(oid, "sig-2")
    changed.close()
    assert StatCache(db).complete_at(oid) == "sig-2"


def test_remembering_a_folder_the_table_already_holds_writes_nothing(tmp_path: Path) -> None:
    """status after a change rebuilds the changed folders each time: an unchanged memo is not written again."""
    db = tmp_path / "stat.db"
    memo = FolderMemo("sig-1", OID, 1, 1)
    first = StatCache(db)
    first.remember_folder("data/a", memo)
    first.close()
    before = (db.stat().st_mtime_ns, db.read_bytes())
    time.sleep(0.01)
    again = StatCache(db)
    assert again.folders() == {"data/a": memo}
    again.remember_folder("data/a", memo)
    again.close()
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before
    changed = StatCache(db)
    changed.folders()
    changed.remember_folder("data/a", FolderMemo("sig-2", OID, 1, 1))
    changed.close()
    assert StatCache(db).folders() == {"data/a": FolderMemo("sig-2", OID, 1, 1)}
