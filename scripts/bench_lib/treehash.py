"""Walk, read and hash whole trees: the correctness check and the local ceilings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

from bench_lib.config import MIB

READ_CHUNK_BYTES = 4 * MIB
WHOLE_READ_LIMIT = 1 * MIB


@dataclass(frozen=True)
class TreeStats:
    """How many files and bytes a walk saw."""

    files: int
    nbytes: int


def iter_sorted(root: Path) -> Iterator[tuple[str, str, int]]:
    """Yield (relative path, absolute path, size) of every file under root in sorted order."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir)) as it:
            entries = sorted(it, key=lambda e: e.name, reverse=True)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir():
                stack.append(rel)
            else:
                yield rel, entry.path, entry.stat().st_size


def file_digest(path: str, size: int, buf: bytearray) -> bytes:
    """Return the XXH3-128 digest of one file, streamed through buf when large."""
    if size <= WHOLE_READ_LIMIT:
        with open(path, "rb") as f:
            return xxhash.xxh3_128_digest(f.read())
    hasher = xxhash.xxh3_128()
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            hasher.update(view[:n])
    return hasher.digest()


def tree_hash(root: Path) -> str:
    """Return one digest over every file's relative path, size and content (empty folders ignored)."""
    outer = xxhash.xxh3_128()
    buf = bytearray(READ_CHUNK_BYTES)
    for rel, path, size in iter_sorted(root):
        outer.update(rel.encode() + b"\0" + size.to_bytes(8, "little"))
        outer.update(file_digest(path, size, buf))
    return outer.hexdigest()


def walk_stat(root: Path) -> TreeStats:
    """Walk the tree with scandir + stat, the least any status check must do."""
    files = nbytes = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                st = entry.stat()
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    files += 1
                    nbytes += st.st_size
    return TreeStats(files, nbytes)


def read_tree(root: Path, digest: bool = False) -> TreeStats:
    """Read every file's bytes once (from the page cache when warm), and XXH3-128 them as add must at the least."""
    files = nbytes = 0
    buf = bytearray(READ_CHUNK_BYTES)
    view = memoryview(buf)
    for _, path, size in iter_sorted(root):
        if digest:
            file_digest(path, size, buf)
            nbytes += size
        else:
            with open(path, "rb", buffering=0) as f:
                while n := f.readinto(view):
                    nbytes += n
        files += 1
    return TreeStats(files, nbytes)


def ingest_tree(root: Path, dest: Path) -> TreeStats:
    """Read, hash and write a copy of every file under its hash, like a cold add into a cache."""
    files = nbytes = 0
    view = memoryview(bytearray(READ_CHUNK_BYTES))
    dest.mkdir(parents=True, exist_ok=True)
    for _, path, _ in iter_sorted(root):
        hasher = xxhash.xxh3_128()
        tmp = dest / f"tmp-{files}"
        with open(path, "rb", buffering=0) as src, open(tmp, "wb", buffering=0) as out:
            while n := src.readinto(view):
                hasher.update(view[:n])
                out.write(view[:n])
                nbytes += n
        digest = hasher.hexdigest()
        shard = dest / digest[:2]
        shard.mkdir(exist_ok=True)
        os.replace(tmp, shard / digest[2:])
        files += 1
    return TreeStats(files, nbytes)


def hash_memory(nbytes: int, repeats: int) -> float:
    """Return the seconds XXH3-128 takes to hash an in-memory buffer of nbytes, repeats times."""
    data = os.urandom(nbytes)
    start = time.perf_counter()
    for _ in range(repeats):
        xxhash.xxh3_128_digest(data)
    return time.perf_counter() - start
