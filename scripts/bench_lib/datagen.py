"""Deterministic datasets (v1) and their seeded mutation (v2), cached under .bench/data."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_lib.config import (
    ADDED_FRACTION,
    DATASET_FORMAT,
    DELETED_FRACTION,
    GEN_CHUNK_BYTES,
    MODIFIED_FRACTION,
    PATCH_BYTES,
    Scenario,
)
from bench_lib.treehash import tree_hash

STAMP_NAME = "stamp.json"


@dataclass(frozen=True)
class Patch:
    """Bytes written over one file at an offset (the 'modified' part of a mutation)."""

    rel: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class NewFile:
    """A file the mutation adds, with the seed of its content."""

    rel: str
    size: int
    seed: str


@dataclass(frozen=True)
class Mutation:
    """The seeded v1 -> v2 change: files modified, added and deleted."""

    patches: tuple[Patch, ...]
    added: tuple[NewFile, ...]
    deleted: tuple[str, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        """Return the paths whose v2 bytes are new (modified + added)."""
        return tuple(p.rel for p in self.patches) + tuple(a.rel for a in self.added)


@dataclass(frozen=True)
class Dataset:
    """A generated scenario: the v1 and v2 reference trees, their digests and the mutation."""

    scenario: Scenario
    v1: Path
    v2: Path
    hash_v1: str
    hash_v2: str
    files_v1: int
    bytes_v1: int
    mutation: Mutation


def _size(rng: random.Random, s: Scenario) -> int:
    """Draw one file size: uniform, or log-uniform so a mixed set is not dominated by big files."""
    if s.min_size == s.max_size:
        return s.min_size
    if s.log_sizes:
        return int(math.exp(rng.uniform(math.log(s.min_size), math.log(s.max_size))))
    return rng.randint(s.min_size, s.max_size)


def file_plan(s: Scenario, seed: int) -> list[tuple[str, int]]:
    """Return the v1 (relative path, size) list, nested top_dirs x sub_dirs deep."""
    rng = random.Random(f"{seed}-{s.name}-sizes")
    plan = []
    for i in range(s.files):
        top, sub = i % s.top_dirs, (i // s.top_dirs) % s.sub_dirs
        plan.append((f"d{top:02d}/s{sub:02d}/f{i:05d}.bin", _size(rng, s)))
    return plan


def write_random(path: Path, size: int, rng: random.Random) -> None:
    """Write size seeded random bytes (incompressible, never shared between files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, GEN_CHUNK_BYTES)
            f.write(rng.randbytes(n))
            left -= n


def mutation_plan(s: Scenario, seed: int, plan: list[tuple[str, int]]) -> Mutation:
    """Pick seeded files to modify (4 KiB overwritten), delete, and new files to add."""
    rng = random.Random(f"{seed}-{s.name}-mutation")
    n = len(plan)
    k_mod = max(1, round(n * MODIFIED_FRACTION))
    k_add = max(1, round(n * ADDED_FRACTION))
    k_del = max(1, round(n * DELETED_FRACTION))
    picked = rng.sample(range(n), k_mod + k_del)
    patches = []
    for i in sorted(picked[:k_mod]):
        rel, size = plan[i]
        length = min(PATCH_BYTES, size)
        patches.append(Patch(rel, rng.randrange(size - length + 1), rng.randbytes(length)))
    deleted = tuple(sorted(plan[i][0] for i in picked[k_mod:]))
    folders = sorted({rel.rsplit("/", 1)[0] for rel, _ in plan})
    added = tuple(
        NewFile(f"{rng.choice(folders)}/n{j:05d}.bin", _size(rng, s), f"{seed}-{s.name}-add-{j}")
        for j in range(k_add)
    )
    return Mutation(tuple(patches), added, deleted)


def apply_mutation(root: Path, m: Mutation) -> None:
    """Turn a v1 tree into v2; each modified file is rewritten via temp + rename (never in place)."""
    for p in m.patches:
        target = root / p.rel
        tmp = target.with_name(target.name + ".bench-tmp")
        shutil.copyfile(target, tmp)
        with open(tmp, "r+b") as f:
            f.seek(p.offset)
            f.write(p.data)
        os.replace(tmp, target)
    for rel in m.deleted:
        (root / rel).unlink()
    for a in m.added:
        write_random(root / a.rel, a.size, random.Random(a.seed))


def _stamp_key(s: Scenario, seed: int) -> dict[str, object]:
    """Return what identifies a generated dataset; any change regenerates it."""
    return {"format": DATASET_FORMAT, "seed": seed, "scenario": asdict(s)}


def ensure_dataset(s: Scenario, seed: int, base: Path, log: Callable[[str], None] = print) -> Dataset:
    """Generate (or reuse) the v1 and v2 reference trees of a scenario and return their description."""
    plan = file_plan(s, seed)
    mutation = mutation_plan(s, seed, plan)
    v1, v2, stamp = base / "v1", base / "v2", base / STAMP_NAME
    key = _stamp_key(s, seed)
    saved = json.loads(stamp.read_text()) if stamp.exists() else {}
    if saved.get("key") != key or not v1.is_dir() or not v2.is_dir():
        shutil.rmtree(base, ignore_errors=True)
        log(f"generating {s.name}: {s.files} files into {v1}")
        content = random.Random(f"{seed}-{s.name}-content")
        for rel, size in plan:
            write_random(v1 / rel, size, content)
        subprocess.run(["cp", "-al", str(v1), str(v2)], check=True)
        apply_mutation(v2, mutation)
        log(f"hashing {s.name} reference trees")
        saved = {"key": key, "hash_v1": tree_hash(v1), "hash_v2": tree_hash(v2)}
        stamp.write_text(json.dumps(saved, indent=1))
    return Dataset(s, v1, v2, saved["hash_v1"], saved["hash_v2"], len(plan), sum(size for _, size in plan), mutation)
