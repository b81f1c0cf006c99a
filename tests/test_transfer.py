"""The transfer layer on a folder remote: planning, ordering of manifests after members, failure collection."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from vtool import transfer
from vtool.cache import Cache
from vtool.config import RemoteConfig
from vtool.errors import RemoteObjectMissingError, RemoteUnreachableError
from vtool.hashing import OID_PREFIX
from vtool.manifest import KIND_DIR, KIND_FILE, Entry, build
from vtool.remote.base import object_key
from vtool.remote.local import LocalRemote
from vtool.store import remote as store
from vtool.store.pack import PackInfo, Slot
from vtool.transfer import LIST_THRESHOLD, Obj

JOBS = 4


class Recording(LocalRemote):
    """A folder remote that remembers uploads, listings and reads, and can fail chosen objects."""

    def __init__(self, config: RemoteConfig, failing: set[str] | None = None) -> None:
        super().__init__(config)
        self.order: list[str] = []
        self.failing = failing or set()
        self.listed: list[str] = []
        self.reads: list[tuple[str, int, int | None]] = []

    def put(self, key: str, src: Path | bytes) -> None:
        oid = OID_PREFIX + key.replace("/", "")
        if oid in self.failing:
            raise RemoteObjectMissingError(oid, "test")
        super().put(key, src)
        self.order.append(oid if len(key) == 33 else key)

    def list(self, prefix: str = ""):  # type: ignore[override]
        self.listed.append(prefix)
        return super().list(prefix)

    def get(self, key: str, dest: BinaryIO, start: int = 0, length: int | None = None) -> None:
        self.reads.append((key, start, length))
        super().get(key, dest, start, length)

    def holds(self, oid: str) -> bool:
        return self.stat(object_key(oid)) is not None


def _tree(cache: Cache, count: int) -> tuple[list[Obj], list[Obj]]:
    """Store `count` files in two folders under a root; return file objects and manifests deepest first."""
    files, subs = [], []
    for half in range(2):
        entries = []
        for i in range(count // 2):
            data = f"{half}-{i}".encode()
            oid = cache.put_bytes(data)
            files.append(Obj(oid, len(data)))
            entries.append(Entry(f"f{i}", KIND_FILE, oid, len(data), 1))
        sub_oid, sub_data = build(entries)
        cache.put_manifest(sub_data)
        subs.append((Entry(f"d{half}", KIND_DIR, sub_oid, 0, len(entries)), Obj(sub_oid, len(sub_data),
                                                                                   tuple(e.oid for e in entries))))
    root_oid, root_data = build([e for e, _ in subs])
    cache.put_manifest(root_data)
    root = Obj(root_oid, len(root_data), tuple(e.oid for e, _ in subs))
    return files, [obj for _, obj in subs] + [root]


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def loose(cache: Cache, remote: LocalRemote) -> transfer.Target:
    """The remote as a loose-only target (every object its own key, as releases before packs wrote)."""
    return transfer.open_target(cache, remote, JOBS, loose_only=True)


def test_manifests_are_uploaded_only_after_all_their_members(cache: Cache, remote_dir: Path) -> None:
    files, manifests = _tree(cache, 40)
    remote = Recording(RemoteConfig("r", str(remote_dir)))
    result = transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    assert result.failed == {} and result.transferred == len(files) + len(manifests)
    position = {oid: i for i, oid in enumerate(remote.order)}
    for m in manifests:
        assert all(position[child] < position[m.oid] for child in m.children)


def test_a_failed_member_keeps_its_manifests_off_the_remote(cache: Cache, remote_dir: Path) -> None:
    files, manifests = _tree(cache, 10)
    broken = files[0].oid
    remote = Recording(RemoteConfig("r", str(remote_dir)), failing={broken})
    result = transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    sub, root = manifests[0], manifests[-1]
    assert set(result.failed) == {broken, sub.oid, root.oid}
    assert not remote.holds(sub.oid) and not remote.holds(root.oid)
    assert remote.holds(manifests[1].oid)  # the other folder is complete, so its manifest went up
    remote.failing.clear()
    again = transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    assert again.failed == {} and again.transferred == 3


def test_large_plans_list_only_the_fanouts_they_need(cache: Cache, remote_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    files, manifests = _tree(cache, LIST_THRESHOLD + 50)
    remote = Recording(RemoteConfig("r", str(remote_dir)))
    transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    remote.listed.clear()
    again = transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    assert again.transferred == 0 and again.present == len(files) + len(manifests)
    assert remote.listed == [""]  # under one listing page of keys: listed whole, in one request
    monkeypatch.setattr(transfer, "LIST_PAGE", 10)
    remote.listed.clear()
    again = transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    assert again.transferred == 0 and again.present == len(files) + len(manifests)
    wanted = {o.oid[7:9] + "/" for o in files + manifests}
    assert remote.listed[0] == "" and sorted(remote.listed[1:]) == sorted(wanted)


def test_fetch_verifies_and_reports_what_the_remote_lacks(cache: Cache, remote_dir: Path, tmp_path: Path) -> None:
    files, manifests = _tree(cache, 6)
    remote = Recording(RemoteConfig("r", str(remote_dir)))
    transfer.push(cache, loose(cache, remote), files, manifests, JOBS)
    lost, corrupt = files[0].oid, files[1].oid
    remote.remove(object_key(lost))
    (remote_dir / corrupt[7:9] / corrupt[9:]).write_bytes(b"not what the name says")
    fresh = Cache(tmp_path / "fresh")
    result = transfer.fetch(fresh, remote, files, JOBS)
    assert set(result.failed) == {lost, corrupt}
    assert "corrupt" in result.failed[corrupt]
    assert not fresh.has(lost) and not fresh.has(corrupt)
    assert all(fresh.verify(o.oid) for o in files[2:])


def test_a_packed_push_uploads_packs_then_one_index_and_fetch_reads_them_back(cache: Cache, remote_dir: Path,
                                                                           tmp_path: Path) -> None:
    files, manifests = _tree(cache, 40)
    remote = Recording(RemoteConfig("r", str(remote_dir)))
    result = transfer.push(cache, remote, files, manifests, JOBS)
    assert result.failed == {} and result.transferred == len(files) + len(manifests)
    assert remote.order[0] == "vtool-format"
    assert [k.split("/")[0] for k in remote.order[1:]] == ["packs", "packs", "index"]  # data, tree, then index
    assert (remote_dir / "vtool-format").read_bytes() == b"vtool-store 1\n"
    assert not [p for p in remote_dir.glob("??/*")]  # nothing loose
    fresh = Cache(tmp_path / "fresh")
    remote.reads.clear()
    got = transfer.fetch(fresh, remote, files + [Obj(m.oid, None) for m in manifests], JOBS)
    assert got.failed == {} and got.transferred == len(files) + len(manifests)
    pack_reads = [r for r in remote.reads if r[0].startswith("packs/")]
    assert len(pack_reads) == 2  # the whole data pack and the whole tree pack, one range each
    for o in files:
        assert fresh.read_bytes(o.oid) == cache.read_bytes(o.oid)
    again = transfer.push(cache, remote, files, manifests, JOBS)
    assert again.transferred == 0 and again.present == len(files) + len(manifests)


def test_a_corrupt_object_in_a_remote_pack_is_refused_and_the_rest_accepted(cache: Cache, remote_dir: Path,
                                                                          tmp_path: Path) -> None:
    files, manifests = _tree(cache, 6)
    remote = Recording(RemoteConfig("r", str(remote_dir)))
    transfer.push(cache, remote, files, manifests, JOBS)
    victim = files[2]
    data = cache.read_bytes(victim.oid)
    for path in remote_dir.glob("packs/*.pack"):
        raw = path.read_bytes()
        at = raw.find(data)
        if at >= 0:
            path.write_bytes(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:])
    fresh = Cache(tmp_path / "fresh")
    got = transfer.fetch(fresh, remote, files, JOBS)
    assert set(got.failed) == {victim.oid} and "corrupt" in got.failed[victim.oid]
    assert not fresh.has(victim.oid)
    assert all(fresh.read_bytes(o.oid) == cache.read_bytes(o.oid) for o in files if o is not victim)


def test_ranges_coalesce_and_split_on_gaps_and_length() -> None:
    mib = 1 << 20
    slots = tuple(Slot(f"xxh128:{i:032x}", 16 + i * mib, mib // 4) for i in range(40))
    info = PackInfo("0" * 32, 16 + 40 * mib + 32 * 40 + 24, 0, slots)
    small_gaps = store.plan_ranges(info, slots[:3])  # gaps of 3/4 MiB: one range
    assert [(r.start, r.length) for r in small_gaps] == [(16, 2 * mib + mib // 4)]
    far = store.plan_ranges(info, [slots[0], slots[5]])  # a gap of over 1 MiB splits
    assert len(far) == 2
    many = store.plan_ranges(info, slots[:39])  # 38 MiB of span: ranges capped at 32 MiB
    assert all(r.length <= 32 * mib for r in many) and len(many) == 2


def test_an_index_naming_a_missing_pack_counts_for_nothing(cache: Cache, remote_dir: Path, tmp_path: Path) -> None:
    files, manifests = _tree(cache, 6)
    remote = Recording(RemoteConfig("r", str(remote_dir)))
    transfer.push(cache, remote, files, manifests, JOBS)
    for path in remote_dir.glob("packs/*.pack"):
        path.unlink()
    target = transfer.open_target(Cache(tmp_path / "fresh"), remote, JOBS)
    assert target.view.indexes and not target.view.packs
    assert transfer.remote_has(target, files, JOBS) == set()
    again = transfer.push(cache, remote, files, manifests, JOBS)
    assert again.transferred == len(files) + len(manifests)


class Down(LocalRemote):
    """A remote whose endpoint is unreachable: every call fails the same way."""

    def put(self, key: str, src: Path | bytes) -> None:
        raise RemoteUnreachableError("cannot reach test endpoint")

    def get(self, key: str, dest: BinaryIO, start: int = 0, length: int | None = None) -> None:
        raise RemoteUnreachableError("cannot reach test endpoint")


def test_an_unreachable_remote_stops_the_transfer_with_one_error(cache: Cache, remote_dir: Path) -> None:
    files, manifests = _tree(cache, 20)
    with pytest.raises(RemoteUnreachableError):
        transfer.push(cache, Down(RemoteConfig("r", str(remote_dir))), files, manifests, JOBS)


def _manifest_order_is_post_order(manifests: list[Obj]) -> bool:
    seen: set[str] = set()
    names = {m.oid for m in manifests}
    for m in manifests:
        if any(child in names and child not in seen for child in m.children):
            return False
        seen.add(m.oid)
    return True


def test_collect_lists_shared_subtrees_before_every_parent(project) -> None:
    from vtool.ops.objects import collect, workspace_pointers
    from vtool.ops.project import open_project

    files = {"x/f": "f\n", "g": "g\n"}
    project.write_tree("a", files)  # a's root manifest is also b/inner/copy, two levels deeper
    project.write_tree("b/inner/copy", files)
    project.add("a", "b")
    with open_project(start=project.root) as opened:
        objects = collect(opened, workspace_pointers(opened, []))
    assert _manifest_order_is_post_order(objects.manifests)


def test_a_manifest_missing_from_the_cache_keeps_its_parents_off_the_remote(project, remote_dir: Path) -> None:
    project.loose_only()
    project.write_tree("d", {"sub/f": "f\n", "top": "top\n"})
    project.add("d")
    project.add_remote(remote_dir, "--loose")
    root = project.pointer("d").oid
    sub = next(e.oid for e in project.manifest(root) if e.name == "sub")
    project.object_path(sub).unlink()
    result = project.run("push", "--json")
    assert result.code == 1 and set(result.json()["failed"]) >= {sub}
    assert not (remote_dir / root[7:9] / root[9:]).exists()


def test_push_refuses_a_corrupt_cache_object(project, remote_dir: Path) -> None:
    project.loose_only()
    project.write("f.txt", "ORIGINAL\n")
    project.add("f.txt")
    project.add_remote(remote_dir, "--loose")
    oid = project.pointer("f.txt").oid
    path = project.object_path(oid)
    path.chmod(0o644)
    path.write_bytes(b"CHANGED!\n")
    result = project.run("push", "--json")
    assert result.code == 1 and oid in result.json()["failed"]
    assert not (remote_dir / oid[7:9] / oid[9:]).exists()
