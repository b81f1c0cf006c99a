"""Memory follows the largest folder, not the tree: status on 10x the files peaks within a fixed budget."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import pytest

from tests.projectkit import Workdir, peak_rss

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
