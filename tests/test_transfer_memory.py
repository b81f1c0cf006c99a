"""Pull (fetch + checkout) into an empty cache and workspace in memory bounded by folders and batches, not files."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from tests.projectkit import Workdir, peak_rss

FOLDER_FILES = 500
SMALL_FILES = 500
LARGE_FILES = 10 * SMALL_FILES
GROWTH_BUDGET_KIB = 16 * 1024  # what 4,500 more files may add to pull's peak: measured 11.7 MiB (2.6 KiB a file)


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
