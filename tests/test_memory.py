"""Memory follows the largest folder, not the tree: status on 10x the files peaks within a fixed budget, and
the cache's lookup structures hold a few bytes per object."""

from __future__ import annotations

import random
import shutil
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.projectkit import Workdir, git_in, peak_rss
from vtool.hashing import hash_bytes
from vtool.ops import checkout
from vtool.ops.project import Dataset
from vtool.pointer import Kind, Pointer
from vtool.store import local

SMALL_FILES = 2_000
LARGE_FILES = 20_000
FILES_PER_FOLDER = 1_000  # the largest folder, equal in both trees
MIN_SIZE, MAX_SIZE = 100, 1_024
# What ten times the files may add to status's peak RSS. Before the streaming scan status added about 1.7 KB a
# file (38 -> 72 MB from 2,000 to 20,000 files); a bounded scan adds a batch, not the tree. add is not held to
# this budget: it stages up to a pack's worth (PACK_TARGET bytes) of small objects, more than 20,000 files here.
BUDGET_BYTES = 20 * 1024 * 1024
# add and verify fill their batches between 2,000 and 20,000 files (a pack's staging, FLUSH_BATCH stat rows,
# VERIFY_BATCH files): measured +28 MB (add) and +20 MB (verify); verify holding the tree grew about 2.7 KB a
# file (+48 MB here), so the batches get a budget of their own.
BATCH_BUDGET_BYTES = 36 * 1024 * 1024
# push fills a 16 MiB pack buffer and its batches between 2,000 and 20,000 files too (measured +21.5 MB; +7.2 MB
# pushing again), so it shares that budget.
BATCHED = ("add", "verify", "push", "push again")
# gc of the cache holds 16 bytes per object reached plus the cache's pack tables: measured +5.9 MB from 2,000 to
# 20,000 files; with an Obj, its oid string and a set entry per file, and the manifest memo filled, +12 MB. gc -r
# also fills the bounded manifest memo (MANIFEST_MEMO_ENTRIES) as it fetches the trees: it keeps the wider budget.
REACH_BUDGET_BYTES = 8 * 1024 * 1024
REACHING = ("gc",)
KIB = 1024
SEED = 16
# After a change in every folder (status, diff) every folder is rebuilt: holding the rebuilt tree for the
# comparison grew status by about 1 KB a file (979 MB at 1,000,000 files); compared folder by folder it holds
# one folder and the changes' counts, so ten times the files may add little.
CHANGE_BUDGET_BYTES = 8 * 1024 * 1024
# diff between commits read every changed folder's manifest through the project's memo, which holds up to
# MANIFEST_MEMO_ENTRIES (32,768) entries (+9 MB filled to 20,000 here); it now reads each once, unmemoised.
MEMO_BUDGET_BYTES = CHANGE_BUDGET_BYTES + 16 * 1024 * 1024
MEMOISED = ("diff commits",)
CHANGED_EVERY = 100  # one file in a hundred modified, one added and one deleted per two hundred: the bench's 1%


def _tree(root: Path, files: int) -> None:
    """Write files of seeded random bytes, FILES_PER_FOLDER to a folder."""
    rng = random.Random(SEED)
    for i in range(files):
        folder = root / "data" / f"d{i // FILES_PER_FOLDER:03d}"
        if i % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:06d}.bin").write_bytes(rng.randbytes(rng.randint(MIN_SIZE, MAX_SIZE)))


def _peak(root: Path, *args: str) -> int:
    """Run vtool as its own process and return its peak RSS in bytes."""
    code, kib = peak_rss(args, root)
    assert code == 0, f"vtool {' '.join(args)} exited {code}"
    return kib * KIB


def _peaks(template: Path, where: Path, files: int) -> dict[str, int]:
    """Peak RSS of add, of a status right after it (it scans and counts the cache), of one with nothing
    changed, and of verify (every object and workspace file re-hashed)."""
    shutil.copytree(template, where, symlinks=True)
    _tree(where, files)
    peaks = {"add": _peak(where, "add", "data")}
    peaks |= {"status": _peak(where, "status"), "status again": _peak(where, "status")}
    peaks["verify"] = _peak(where, "verify")
    remote = where.parent / f"{where.name}-remote"
    remote.mkdir()
    Workdir(where).add_remote(remote, default=True)
    peaks |= {"push": _peak(where, "push"), "push again": _peak(where, "push")}
    return peaks | {"gc": _peak(where, "gc", "--yes"), "gc -r": _peak(where, "gc", "-r", "origin")}


def _budget(cmd: str) -> int:
    """Return what ten times the files may add to a command's peak."""
    if cmd in REACHING:
        return REACH_BUDGET_BYTES
    return BATCH_BUDGET_BYTES if cmd in BATCHED else BUDGET_BYTES


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in kilobytes on Linux only")
def test_peaks_stay_within_a_fixed_budget_over_a_tree_ten_times_smaller(
        project_template: Path, tmp_path: Path) -> None:
    small = _peaks(project_template, tmp_path / "small", SMALL_FILES)
    large = _peaks(project_template, tmp_path / "large", LARGE_FILES)
    grown = {cmd: large[cmd] - small[cmd] for cmd in small}
    print({cmd: f"{small[cmd] / 2**20:.1f} -> {large[cmd] / 2**20:.1f} MB" for cmd in small})
    over = {cmd: f"{small[cmd] >> 20} -> {large[cmd] >> 20} MB" for cmd, extra in grown.items() if extra > _budget(cmd)}
    assert not over, f"peak RSS grew with the tree beyond its budget: {over}"


def _mutate(root: Path, files: int) -> None:
    """Change the bench's 1% of the files, spread over every folder: modified, added and deleted."""
    rng = random.Random(SEED + 1)
    for i in range(0, files, CHANGED_EVERY):
        folder = root / "data" / f"d{i // FILES_PER_FOLDER:03d}"
        (folder / f"f{i:06d}.bin").write_bytes(rng.randbytes(rng.randint(MIN_SIZE, MAX_SIZE)))
        if i % (2 * CHANGED_EVERY) == 0:
            (folder / f"f{i + 1:06d}.bin").unlink()
            (folder / f"n{i:06d}.bin").write_bytes(rng.randbytes(MIN_SIZE))


def _change_peaks(template: Path, where: Path, files: int) -> dict[str, int]:
    """Peak RSS of status and diff (against the workspace) after a change in every folder, and of diff
    between the two commits."""
    shutil.copytree(template, where, symlinks=True)
    _tree(where, files)
    _peak(where, "add", "data")
    git_in(where, "add", "-A")
    git_in(where, "commit", "-q", "-m", "v1")
    _mutate(where, files)
    peaks = {"status": _peak(where, "status"), "status again": _peak(where, "status"),
             "diff workspace": _peak(where, "diff")}
    _peak(where, "add", "data")
    git_in(where, "add", "-A")
    git_in(where, "commit", "-q", "-m", "v2")
    return {**peaks, "diff commits": _peak(where, "diff", "HEAD~1", "HEAD")}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in kilobytes on Linux only")
def test_status_and_diff_after_a_change_everywhere_stay_within_a_fixed_budget(
        project_template: Path, tmp_path: Path) -> None:
    small = _change_peaks(project_template, tmp_path / "small", SMALL_FILES)
    large = _change_peaks(project_template, tmp_path / "large", LARGE_FILES)
    over = {cmd: f"{small[cmd] >> 20} -> {large[cmd] >> 20} MB" for cmd in small
            if large[cmd] - small[cmd] > (MEMO_BUDGET_BYTES if cmd in MEMOISED else CHANGE_BUDGET_BYTES)}
    assert not over, f"peak RSS grew with the tree beyond its budget: {over}"


PACKED_OBJECTS = 20_000
SMALL_PACK = 512 * KIB  # packs of about 900 objects of up to 1 KiB: the index is read from many packs
# What the cache may hold per packed object once it has looked one up: its index record (24 bytes, with the
# fan-out and per-pack bookkeeping: measured 25). Holding every pack's table too (32 bytes more) was 58.
HELD_PER_OBJECT = 32
# What reading the index may take at its peak, per object: each record counted, then placed in one buffer of
# the final size, one pack's table at a time (measured 30 bytes). With every table read first and buffers per
# bucket joined at the end: 112.
BUILT_PER_OBJECT = 40


def test_the_cache_keeps_pack_tables_on_disk_and_holds_only_its_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "PACK_TARGET", SMALL_PACK)
    rng = random.Random(SEED)
    objects = [rng.randbytes(rng.randint(MIN_SIZE, MAX_SIZE)) for _ in range(PACKED_OBJECTS)]
    writer = local.LocalPacks(tmp_path / "packs")
    for i, data in enumerate(objects):
        writer.stage(hash_bytes(data), data, f"k{i:06d}")
    writer.flush()
    writer.close()
    reader = local.LocalPacks(tmp_path / "packs")
    tracemalloc.start()
    try:
        found = reader.read(hash_bytes(objects[-1]))
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is not None and found[0] == objects[-1]
    assert len(reader.infos()) > 10
    print(f"{held / PACKED_OBJECTS:.1f} bytes held per object, {peak / PACKED_OBJECTS:.1f} at the peak")
    assert held <= HELD_PER_OBJECT * PACKED_OBJECTS, f"{held / PACKED_OBJECTS:.0f} bytes held per object"
    assert peak <= BUILT_PER_OBJECT * PACKED_OBJECTS, f"{peak / PACKED_OBJECTS:.0f} bytes per object at the peak"
    assert [reader.read(hash_bytes(data))[0] for data in objects[::997]] == objects[::997]  # type: ignore[index]
    reader.close()


PRUNED_FILES = 20_000
# What pruning a checked-out tree may hold: one folder's names at a time. Sorting the whole walk first held
# every file name of the tree (about 2 MB for these 20,000).
PRUNE_BUDGET_BYTES = 512 * KIB


def test_checkout_prunes_folders_one_folder_at_a_time(tmp_path: Path) -> None:
    _tree(tmp_path, PRUNED_FILES)
    (tmp_path / "data" / "gone" / "deeper").mkdir(parents=True)
    target = Pointer("data", Kind.DIR, hash_bytes(b""), 0, PRUNED_FILES)
    plan = checkout.Plan(Dataset("data.vtool", "data"), target, gone={"gone", "gone/deeper"})
    tracemalloc.start()
    try:
        checkout._prune_folders(tmp_path / "data", plan)  # noqa: SLF001
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not (tmp_path / "data" / "gone").exists()
    assert sum(1 for _ in (tmp_path / "data").rglob("*.bin")) == PRUNED_FILES
    assert peak <= PRUNE_BUDGET_BYTES, f"pruning peaked at {peak / KIB:.0f} KiB"


# diff of two commits where every file changed: counted by kind (each kind spooled to disk in sorted runs), it
# holds a run of each kind, 16 bytes per deleted file and one folder. A FileChange per changed file, the sorted
# lists of them and the manifest memo grew it by 19 MB from 2,000 to 20,000 files (26.8 -> 46.0 MB).
EVERY_FILE_BUDGET_BYTES = CHANGE_BUDGET_BYTES


def _rewrite_every_file(root: Path) -> None:
    """Give every file of the tree new bytes of the same size range."""
    rng = random.Random(SEED + 2)
    for folder in sorted((root / "data").iterdir()):
        for path in sorted(folder.iterdir()):
            path.write_bytes(rng.randbytes(rng.randint(MIN_SIZE, MAX_SIZE)))


def _every_file_peak(template: Path, where: Path, files: int) -> int:
    """Peak RSS of diff between two commits that differ in every file."""
    shutil.copytree(template, where, symlinks=True)
    _tree(where, files)
    for message in ("v1", "v2"):
        if message == "v2":
            _rewrite_every_file(where)
        _peak(where, "add", "data")
        git_in(where, "add", "-A")
        git_in(where, "commit", "-q", "-m", message)
    return _peak(where, "diff", "HEAD~1", "HEAD")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in kilobytes on Linux only")
def test_diff_of_commits_that_differ_in_every_file_stays_within_a_fixed_budget(
        project_template: Path, tmp_path: Path) -> None:
    small = _every_file_peak(project_template, tmp_path / "small", SMALL_FILES)
    large = _every_file_peak(project_template, tmp_path / "large", LARGE_FILES)
    print(f"diff, every file changed: {small / 2**20:.1f} -> {large / 2**20:.1f} MB")
    assert large - small <= EVERY_FILE_BUDGET_BYTES, f"diff grew {small >> 20} -> {large >> 20} MB"
