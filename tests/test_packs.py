"""Small objects and manifests live in packs in the cache: add, checkout, damage, repair, verify and gc."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool.hashing import hash_bytes
from vtool.store import local, pack

BIG = pack.PACK_THRESHOLD  # the smallest object that stays loose
FILES = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n", "sub/deep/c.bin": b"gamma\n" * 100}


def packs(project: Workdir) -> list[Path]:
    return sorted(project.cache_dir.glob("packs/*.pack"))


def loose(project: Workdir) -> set[str]:
    return {p.parent.name + p.name for p in project.cache_dir.glob("??/*") if len(p.name) == 30}


def flip_in_pack(project: Workdir, data: bytes) -> None:
    """Flip one byte of an object inside whichever pack holds it."""
    for path in packs(project):
        raw = path.read_bytes()
        at = raw.find(data)
        if at >= 0:
            os.chmod(path, 0o644)
            path.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
            os.chmod(path, 0o444)
            return
    raise AssertionError("object not found in any pack")


def test_add_packs_small_files_and_manifests_and_keeps_large_ones_loose(project: Workdir) -> None:
    project.write_tree("data", {**FILES, "large.bin": b"L" * BIG})
    added = project.add("data")["added"][0]
    stored = packs(project)
    kinds = sorted(pack.parse(p.read_bytes(), p.name[:-5]).kind for p in stored)
    assert kinds == [pack.KIND_DATA, pack.KIND_TREE]  # one data pack, one tree pack
    for p in stored:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o444
        assert pack.parse(p.read_bytes(), p.name[:-5]).name == p.name[:-5]
    assert loose(project) == {hash_bytes(b"L" * BIG)[7:]}
    for data in FILES.values():
        assert project.object_bytes(hash_bytes(data)) == data
    assert {e.name for e in project.manifest(added["oid"])} == {"a.txt", "sub", "large.bin"}


def test_the_data_pack_holds_objects_in_path_order(project: Workdir) -> None:
    names = [f"f{i:03d}" for i in range(50)]
    project.write_tree("data", {n: n.encode() * 3 for n in reversed(names)})
    project.add("data")
    data_pack = next(pack.parse(p.read_bytes(), p.name[:-5]) for p in packs(project)
                     if pack.parse(p.read_bytes(), p.name[:-5]).kind == pack.KIND_DATA)
    assert [s.oid for s in data_pack.slots] == [hash_bytes(n.encode() * 3) for n in names]


def test_checkout_restores_packed_files_with_their_modes(project: Workdir) -> None:
    project.write_tree("data", FILES)
    project.write("data/run.sh", b"#!/bin/sh\n", executable=True)
    project.add("data")
    project.ok("config", "cache.link", "hardlink")
    import shutil

    shutil.rmtree(project.path("data"))
    project.ok("checkout")
    for rel, data in FILES.items():
        assert project.read(f"data/{rel}") == data
        st = os.stat(project.path(f"data/{rel}"))
        assert st.st_nlink == 1 and stat.S_IMODE(st.st_mode) == 0o644  # packed objects are copied, never linked
    assert stat.S_IMODE(os.stat(project.path("data/run.sh")).st_mode) == 0o755
    assert project.status()["data"]["state"] == "in sync"


def test_a_corrupt_packed_object_is_never_checked_out_and_fetch_restores_just_it(project: Workdir,
                                                                                tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.write_tree("data", FILES)
    project.add("data")
    project.ok("remote", "add", "origin", str(remote))
    project.ok("push")
    flip_in_pack(project, b"beta\n")
    os.unlink(project.path("data/sub/b.txt"))
    os.unlink(project.path("data/a.txt"))
    failed = project.fails("checkout", "data")
    assert hash_bytes(b"beta\n") in failed.err
    assert not project.path("data/sub/b.txt").exists()
    assert project.read("data/a.txt") == b"alpha\n"
    assert (project.cache_dir / "packs" / "damaged").read_text().count("\n") == 1
    fetched = project.run("pull", "--json")
    assert fetched.code == 0, fetched.err
    assert fetched.json()["fetch"]["transferred"] == 1  # just the damaged object
    assert project.read("data/sub/b.txt") == b"beta\n"


def test_verify_reports_a_corrupt_packed_object_and_sets_it_aside(project: Workdir) -> None:
    project.write_tree("data", FILES)
    project.add("data")
    flip_in_pack(project, b"alpha\n")
    result = project.run("verify", "--json")
    assert result.code == 1
    bad = result.json()["bad"]
    assert [(b["oid"], b["problem"], b["datasets"]) for b in bad] == [(hash_bytes(b"alpha\n"), "corrupt", ["data"])]
    assert hash_bytes(b"alpha\n") not in project.cache_oids()


def test_gc_deletes_dead_packs_and_repacks_sparse_ones(project: Workdir) -> None:
    project.write_tree("data", {f"f{i}": f"v1 {i}\n" * 50 for i in range(10)})
    project.add("data")
    project.commit("v1", "data.vtool", ".gitignore")
    first = set(packs(project))
    project.write_tree("data", {f"f{i}": f"v2 {i}\n" * 50 for i in range(10)})
    project.add("data")
    dry = project.run("gc", "--workspace", "--json").json()
    assert dry["removed"] == 11 and dry["dry_run"]
    assert set(packs(project)) >= first
    done = project.run("gc", "--workspace", "--yes", "--json")
    assert done.code == 0, done.err
    assert not first & set(packs(project))  # v1's packs held nothing kept
    assert project.cache_oids() == {hash_bytes(f"v2 {i}\n".encode() * 50) for i in range(10)} | set(
        project.folders(project.pointer("data").oid).values())


def test_cache_packs_false_keeps_every_object_loose(project: Workdir) -> None:
    project.loose_only()
    project.write_tree("data", FILES)
    project.add("data")
    assert not packs(project)
    assert {hash_bytes(d)[7:] for d in FILES.values()} <= loose(project)


def flip_in_remote_pack(remote: Path, data: bytes) -> None:
    for path in remote.glob("packs/*.pack"):
        raw = path.read_bytes()
        at = raw.find(data)
        if at >= 0:
            path.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
            return
    raise AssertionError("object not found in any remote pack")


def test_remote_verify_checks_packs_by_ranges_names_the_dataset_and_push_repairs(project: Workdir,
                                                                                tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.write_tree("data", FILES)
    project.write("model.bin", b"weights\n")
    project.add("data", "model.bin")
    project.add_remote(remote, default=True)
    project.ok("push")
    assert project.ok("verify", "-r", "origin", "--json").json()["ok"] is True
    flip_in_remote_pack(remote, b"beta\n")
    for extra in ((), ("--sample", "0/1")):
        report = project.run("verify", "-r", "origin", *extra, "--json")
        assert report.code == 1
        assert [(b["oid"], b["problem"], b["datasets"]) for b in report.json()["bad"]] == [
            (hash_bytes(b"beta\n"), "corrupt", ["data"])]
    assert project.fails("verify", "--sample", "0/2", code=2).err.startswith("error: --sample needs -r NAME")
    assert project.fails("verify", "-r", "origin", "--sample", "3/2", code=2).err.startswith("error: --sample")
    # verify marked the pack, so the next push no longer counts on it and uploads its objects again
    assert project.ok("push", "--json").json()["transferred"] >= 1
    assert project.run("status", "--remote", "--check").code == 0
    project.commit("data")
    fresh = tmp_path / "fresh"
    project.git("clone", "-q", str(project.root), str(fresh))
    clone = Workdir(fresh)
    clone.ok("pull")
    assert clone.read("data/sub/b.txt") == b"beta\n"


def test_an_interrupted_local_pack_write_leaves_no_pack_and_gc_clears_it(project: Workdir) -> None:
    (project.cache_dir / "packs").mkdir(parents=True)
    debris = project.cache_dir / "packs" / ".vtool-tmp-0123456789ab-.pack"
    debris.write_bytes(pack.header(pack.KIND_DATA) + b"half")
    project.write_tree("data", FILES)
    project.add("data")
    assert project.status()["data"]["state"] == "in sync"
    old = 2 * 3600
    os.utime(debris, (os.path.getmtime(debris) - old, os.path.getmtime(debris) - old))
    assert project.ok("gc", "--yes", "--json").json()["temp_files"] == 1
    assert not debris.exists()


def test_an_empty_object_sharing_an_offset_with_its_neighbour_is_cut_whole_from_a_range() -> None:
    """An empty object starts where the next one does; in either order the cutter must hand out all three intact."""
    from vtool.store.remote import Range, _Cutter

    first, last = b"neighbour bytes", b"and the object after"
    empty = pack.Slot(hash_bytes(b""), 100, 0)
    full = pack.Slot(hash_bytes(first), 100, len(first))
    after = pack.Slot(hash_bytes(last), 100 + len(first), len(last))
    for order in ((full, empty, after), (empty, full, after)):
        got: dict[str, bytes] = {}
        rng = Range("p" * 32, 100, len(first) + len(last), order)
        cutter = _Cutter(rng, lambda oid, raw, got=got: got.__setitem__(oid, raw))
        cutter.write(first + last)
        cutter.finish()
        assert cutter.failed == {}
        assert got == {empty.oid: b"", full.oid: first, after.oid: last}


def test_packs_written_while_staging_hold_no_table_in_memory_until_an_object_is_looked_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An add of a million files writes dozens of packs: their tables stay on disk while it writes, so its
    # memory is one batch; the first lookup reads them back and finds every object.
    monkeypatch.setattr(local, "PACK_TARGET", 4 * 1024)
    packs_here = local.LocalPacks(tmp_path / "packs")
    objects = [bytes([i]) * 1000 for i in range(20)]
    for i, data in enumerate(objects):
        packs_here.stage(hash_bytes(data), data, f"k{i:02d}")
    packs_here.flush()
    assert len(list((tmp_path / "packs").glob("*.pack"))) >= 4
    assert packs_here._where.nbytes == 0  # noqa: SLF001  nothing read back while writing
    assert [packs_here.read(hash_bytes(data))[0] for data in objects] == objects  # type: ignore[index]
    assert sum(len(info.slots) for info in packs_here.infos()) == len(objects)
    again = objects[0]  # already in a written pack: staged again costs one more copy, never a wrong one
    packs_here.stage(hash_bytes(again), again, "k00")
    packs_here.flush()
    assert packs_here.read(hash_bytes(again))[0] == again  # type: ignore[index]


def _packed_cache(root: Path, objects: list[bytes]) -> None:
    """Write objects into a cache's packs and close it, so a fresh Cache reads them back."""
    from vtool.cache import Cache

    writer = Cache(root)
    for i, data in enumerate(objects):
        writer.packs.stage(hash_bytes(data), data, f"k{i:03d}")
    writer.packs.flush()
    writer.packs.close()


def _counting_preads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the preads the local packs make (table reads, slot reads, object reads)."""
    calls: list[int] = []
    real = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        calls.append(length)
        return real(fd, length, offset)

    monkeypatch.setattr(local.os, "pread", pread)
    return calls


def test_counting_what_the_cache_lacks_reads_no_slot_of_a_packed_object(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # status, add and checkout ask the cache which of a tree's objects it lacks: with pack tables on disk,
    # asking each object's size read its slot, one pread per file of the tree (20,000 for many-small).
    from vtool.cache import Cache

    objects = [bytes([i % 251]) * (i + 1) for i in range(300)]
    _packed_cache(tmp_path / "cache", objects)
    cache = Cache(tmp_path / "cache")
    cache.packs.infos()  # the index built: two table reads a pack
    calls = _counting_preads(monkeypatch)
    absent = hash_bytes(b"absent")
    assert cache.missing([*(hash_bytes(d) for d in objects), absent]) == {absent}
    assert calls == []


def test_reading_a_packed_object_reads_its_slot_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # read_bytes checks a manifest's size before reading it: the second ask reuses the slot the first found.
    from vtool.cache import Cache

    objects = [bytes([i]) * 100 for i in range(10)]
    _packed_cache(tmp_path / "cache", objects)
    cache = Cache(tmp_path / "cache")
    cache.packs.infos()
    calls = _counting_preads(monkeypatch)
    assert cache.read_bytes(hash_bytes(objects[3])) == objects[3]
    assert calls == [pack.ENTRY.size, 100]  # the slot, then the bytes


def test_a_manifest_is_read_with_one_pread_its_tree_pack_table_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every walk reads manifests (checkout, status and gc read each folder's): a tree pack's table stays in
    # memory (about one manifest a thousand files), so a read is the object's bytes alone, not slot then bytes.
    from vtool.cache import Cache

    manifests = [b"tree %d" % i * 10 for i in range(20)]
    writer = Cache(tmp_path / "cache")
    for data in manifests:
        writer.packs.stage(hash_bytes(data), data, kind=pack.KIND_TREE)
    writer.packs.flush()
    writer.packs.close()
    cache = Cache(tmp_path / "cache")
    cache.packs.infos()
    calls = _counting_preads(monkeypatch)
    assert [cache.read_bytes(hash_bytes(d)) for d in manifests[::-1]] == manifests[::-1]
    assert calls == [len(d) for d in manifests[::-1]]
