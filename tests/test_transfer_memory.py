"""Pull (fetch + checkout) into an empty cache and workspace, and checkout between versions, in memory bounded by
folders, batches and changes, not files."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from tests.projectkit import Workdir, peak_rss

FOLDER_FILES = 500
SMALL_FILES = 500
LARGE_FILES = 10 * SMALL_FILES
GROWTH_BUDGET_KIB = 16 * 1024  # what 4,500 more files may add to pull's peak: measured 11.7 MiB (2.6 KiB a file)
SWITCH_SMALL_FILES = 2_000
SWITCH_LARGE_FILES = 20_000
# What 18,000 more files may add to checkout v2 -> v1: measured +8.7 MiB (the packs' tables, the batches filling);
# planned from a scan that listed every file and manifest it grew +14.8 MiB (and 142 MB at 200,000 files).
SWITCH_BUDGET_KIB = 11 * 1024


def _pulled_peak(project: Workdir, remote_dir: Path, files: int) -> int:
    """Track `files` small seeded files, push them, empty the cache and workspace, and measure `pull`."""
    rng = random.Random(files)
    for i in range(files):
        project.write(f"data/d{i // FOLDER_FILES:03d}/f{i:06d}.bin", rng.randbytes(rng.randint(100, 300)))
    project.add_remote(remote_dir, default=True)
    project.ok("add", "data")
    project.commit("data")
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
