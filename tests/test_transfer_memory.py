"""Pull (fetch + checkout) into an empty cache and workspace, and checkout between versions, in memory bounded by
folders, batches and changes, not files; push holding a bounded number of pack tables (it commits along the way)."""

from __future__ import annotations

import random
import shutil
import tracemalloc
from pathlib import Path

import pytest

from tests.projectkit import Workdir, peak_rss
from vtool import transfer
from vtool.config import RemoteConfig
from vtool.errors import RemoteError
from vtool.hashing import hash_bytes
from vtool.remote.local import LocalRemote
from vtool.store import index as idx
from vtool.store import remote as store
from vtool.store.pack import KIND_DATA, KIND_TREE

FOLDER_FILES = 500
SMALL_FILES = 500
LARGE_FILES = 10 * SMALL_FILES
GROWTH_BUDGET_KIB = 16 * 1024  # what 4,500 more files may add to pull's peak: measured 11.7 MiB (2.6 KiB a file)
SWITCH_SMALL_FILES = 2_000
SWITCH_LARGE_FILES = 20_000
# What 18,000 more files may add to checkout v2 -> v1: measured +8.7 MiB (the packs' tables, the batches filling);
# planned from a scan that listed every file and manifest it grew +14.8 MiB (and 142 MB at 200,000 files).
SWITCH_BUDGET_KIB = 11 * 1024


def _track_seeded(project: Workdir, remote_dir: Path, sizes: dict[str, tuple[int, int]]) -> None:
    """Write each file with seeded bytes of a size in its range, then track and commit data/ with remote_dir."""
    rng = random.Random(len(sizes))
    for rel, (low, high) in sizes.items():
        project.write(rel, rng.randbytes(rng.randint(low, high)))
    project.add_remote(remote_dir, default=True)
    project.ok("add", "data")
    project.commit("data")


def _pulled_peak(project: Workdir, remote_dir: Path, files: int) -> int:
    """Track `files` small seeded files, push them, empty the cache and workspace, and measure `pull`."""
    sizes = {f"data/d{i // FOLDER_FILES:03d}/f{i:06d}.bin": (100, 300) for i in range(files)}
    _track_seeded(project, remote_dir, sizes)
    project.ok("push")
    shutil.rmtree(project.cache_dir)
    shutil.rmtree(project.path("data"))
    code, peak = peak_rss(("pull",), project.root)
    assert code == 0
    assert len(list(project.path("data").rglob("*.bin"))) == files
    return peak


def test_pull_of_ten_times_the_files_stays_within_a_fixed_memory_budget(project_template: Path,
                                                                         tmp_path: Path) -> None:
    peaks = []
    for files in (SMALL_FILES, LARGE_FILES):
        root = tmp_path / f"p{files}"
        shutil.copytree(project_template, root, symlinks=True)
        remote = tmp_path / f"r{files}"
        remote.mkdir()
        peaks.append(_pulled_peak(Workdir(root), remote, files))
    small, large = peaks
    assert large - small <= GROWTH_BUDGET_KIB, f"pull peaked at {small} KiB on {SMALL_FILES} files, {large} KiB " \
                                               f"on {LARGE_FILES}"


def _switched_peak(project: Workdir, files: int) -> int:
    """Track v1 of `files` small seeded files, then v2 with a change in every folder (one file modified, one
    added, one deleted); return the peak of `checkout v1` over v2's workspace."""
    rng = random.Random(files)
    names = [f"data/d{i // FOLDER_FILES:03d}/f{i:06d}.bin" for i in range(files)]
    for name in names:
        project.write(name, rng.randbytes(rng.randint(100, 300)))
    project.ok("add", "data")
    project.commit("v1")
    project.git("tag", "v1")
    for first in range(0, files, FOLDER_FILES):
        project.write(names[first], b"modified")
        project.path(names[first + 1]).unlink()
        project.write(names[first].replace("/f", "/g"), b"added")
    project.ok("add", "data")
    project.commit("v2")
    code, peak = peak_rss(("checkout", "v1"), project.root)
    assert code == 0
    assert project.path(names[1]).exists() and not project.path(names[0].replace("/f", "/g")).exists()
    return peak


def test_checkout_between_versions_of_ten_times_the_files_stays_within_a_fixed_memory_budget(
        project_template: Path, tmp_path: Path) -> None:
    peaks = []
    for files in (SWITCH_SMALL_FILES, SWITCH_LARGE_FILES):
        root = tmp_path / f"c{files}"
        shutil.copytree(project_template, root, symlinks=True)
        peaks.append(_switched_peak(Workdir(root), files))
    small, large = peaks
    assert large - small <= SWITCH_BUDGET_KIB, f"checkout v2 -> v1 peaked at {small} KiB on {SWITCH_SMALL_FILES} " \
                                               f"files, {large} KiB on {SWITCH_LARGE_FILES}"


PUSHED_FILES = 600
SMALL_PACK_BYTES = 4 * 1024  # a pack every dozen files, so one push writes dozens of packs
COMMIT_EVERY = 64


def _remote_indexes(remote_dir: Path) -> list[idx.Index]:
    """Decode every index a remote holds."""
    return [idx.decode(p.read_bytes(), p.stem) for p in sorted((remote_dir / "index").glob("*.idx"))]


def _small_packed_push_setup(project: Workdir, remote_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Track PUSHED_FILES seeded files in three folders; make the push's packs small and its commits frequent."""
    _track_seeded(project, remote_dir, {f"data/d{i % 3}/f{i:04d}.bin": (200, 400) for i in range(PUSHED_FILES)})
    monkeypatch.setattr(store, "PACK_TARGET", SMALL_PACK_BYTES)
    monkeypatch.setattr(transfer, "COMMIT_OBJECTS", COMMIT_EVERY)


def test_push_commits_its_data_packs_along_the_way_and_its_manifests_last(project: Workdir, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    _small_packed_push_setup(project, remote_dir, monkeypatch)
    project.ok("push")
    indexes = _remote_indexes(remote_dir)
    data = [i for i in indexes if all(p.kind == KIND_DATA for p in i.packs)]
    last = [i for i in indexes if any(p.kind == KIND_TREE for p in i.packs)]
    assert len(last) == 1 and len(data) >= PUSHED_FILES // (2 * COMMIT_EVERY)
    largest_pack = max(len(p.slots) for i in indexes for p in i.packs)
    assert max(sum(len(p.slots) for p in i.packs) for i in indexes) < COMMIT_EVERY + largest_pack
    assert sum(len(p.slots) for i in indexes for p in i.packs) == PUSHED_FILES + 4  # three folders and the root
    clone = Workdir(tmp_path / "clone")
    project.git("clone", "-q", str(project.root), str(clone.root))
    clone.ok("pull")
    assert sorted(p.read_bytes() for p in clone.path("data").rglob("*.bin")) == \
        sorted(p.read_bytes() for p in project.path("data").rglob("*.bin"))


def test_a_push_cut_short_keeps_what_its_earlier_indexes_published(project: Workdir, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    _small_packed_push_setup(project, remote_dir, monkeypatch)
    commits = []
    real_commit = store.commit

    def dies_after_two(view: store.RemoteView, packs: list, marks: tuple = ()) -> str | None:
        if len(commits) == 2:
            raise RemoteError("the connection dropped")
        commits.append(real_commit(view, packs, marks))
        return commits[-1]

    monkeypatch.setattr(store, "commit", dies_after_two)
    project.fails("push")
    published = sum(len(p.slots) for i in _remote_indexes(remote_dir) for p in i.packs)
    assert len(commits) == 2 and published >= 2 * COMMIT_EVERY
    monkeypatch.setattr(store, "commit", real_commit)
    again = project.ok("push")
    assert f"{PUSHED_FILES + 4 - published} uploaded, {published} already present" in again.err


VIEW_OBJECTS = 60_000
VIEW_PACK_BYTES = 256 * 1024  # packs of about 2,000 objects: the view reads many tables
VIEW_INDEX_OBJECTS = 15_000  # objects an index commits (a push commits along the way), so the view loads several
# What a remote's view may hold per packed object: its index record (24 bytes, with the fan-out and per-pack
# bookkeeping). Holding every pack's table decoded from the indexes too (32 bytes more) was 57.
VIEW_HELD_PER_OBJECT = 32
# What loading the view may take at its peak per object: the records counted, then placed in one buffer of the
# final size, one table at a time from the local index copies, plus the one index being checked and, when the
# indexes are downloaded, the other workers' read buffers (measured 30-57). With the tables decoded into copies
# of the index bytes, every loader checking its own index at once and the records buffered for the build: 84.
VIEW_BUILT_PER_OBJECT = 66


def _seeded_remote(root: Path, workdir: Path) -> LocalRemote:
    """Pack small objects into a local remote, committed VIEW_INDEX_OBJECTS at a time."""
    remote = LocalRemote(RemoteConfig("nas", str(root)))
    view = store.load_view(remote, workdir / "indexes", 1)
    store.ensure_format(view)
    for first in range(0, VIEW_OBJECTS, VIEW_INDEX_OBJECTS):
        blobs = [f"object {i:08d}".encode() * 8 for i in range(first, first + VIEW_INDEX_OBJECTS)]
        store.commit(view, store.upload_packs(remote, ((hash_bytes(b), b) for b in blobs), KIND_DATA,
                                              workdir / "out", 2))
    return remote


@pytest.mark.parametrize("cached", [False, True], ids=["indexes fetched", "indexes cached"])
def test_a_remote_view_holds_its_index_not_the_pack_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           cached: bool) -> None:
    monkeypatch.setattr(store, "PACK_TARGET", VIEW_PACK_BYTES)
    (tmp_path / "remote").mkdir()
    remote = _seeded_remote(tmp_path / "remote", tmp_path)
    if cached:
        store.load_view(remote, tmp_path / "copies", 4)
    tracemalloc.start()
    try:
        view = store.load_view(remote, tmp_path / "copies", 4)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{held / VIEW_OBJECTS:.1f} bytes held per object, {peak / VIEW_OBJECTS:.1f} at the peak")
    assert len(view.indexes) == VIEW_OBJECTS // VIEW_INDEX_OBJECTS and len(view.packs) > 20
    assert held <= VIEW_HELD_PER_OBJECT * VIEW_OBJECTS, f"{held / VIEW_OBJECTS:.0f} bytes held per object"
    assert peak <= VIEW_BUILT_PER_OBJECT * VIEW_OBJECTS, f"{peak / VIEW_OBJECTS:.0f} bytes per object at the peak"
    for i in (0, VIEW_OBJECTS // 2, VIEW_OBJECTS - 1):
        blob = f"object {i:08d}".encode() * 8
        found = view.locate(hash_bytes(blob))
        assert found is not None and found[1].length == len(blob)
        assert (tmp_path / "remote" / "packs" / f"{found[0].name}.pack").read_bytes()[found[1].offset:found[1].end] \
            == blob

