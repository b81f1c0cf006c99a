"""What the hardware and a plain client can do: the ceilings each tool is measured against."""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_lib.config import GIB, MIB
from bench_lib.datagen import Dataset
from bench_lib.treehash import (
    TreeStats,
    hash_memory,
    ingest_tree,
    iter_sorted,
    read_tree,
    tree_hash,
    walk_stat,
)

LARGE_OBJECT_BYTES = 64 * MIB
PART_BYTES = 16 * MIB
MEMORY_HASH_BYTES = 256 * MIB
MEMORY_HASH_REPEATS = 4
S3_RETRIES = 5
DEFAULT_REGION = "us-east-1"
S3_UPLOAD = "s3_upload"


@dataclass(frozen=True)
class Ceiling:
    """One ceiling measurement: seconds for the work, and how much work it was."""

    name: str
    label: str
    seconds: float
    files: int
    nbytes: int
    detail: str = ""

    @classmethod
    def from_json(cls, name: str, doc: dict[str, Any]) -> Ceiling:
        """Rebuild a ceiling saved by to_json."""
        return cls(name, doc["label"], doc["seconds"], doc["files"], doc["bytes"], doc.get("detail", ""))

    def to_json(self) -> dict[str, object]:
        """Return the ceiling as a JSON-ready dict with throughputs."""
        return {"label": self.label, "seconds": self.seconds, "files": self.files, "bytes": self.nbytes,
                "mb_per_s": self.nbytes / MIB / self.seconds if self.seconds else None,
                "files_per_s": self.files / self.seconds if self.seconds else None, "detail": self.detail}


def _median_time(fn: Callable[[], TreeStats], runs: int, before: Callable[[], None] | None = None
                 ) -> tuple[float, TreeStats]:
    """Return the median seconds of fn over runs calls, and what it counted."""
    times, stats = [], TreeStats(0, 0)
    for _ in range(runs):
        if before:
            before()
        os.sync()
        start = time.perf_counter()
        stats = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), stats


def walk_ceiling(ds: Dataset, runs: int) -> Ceiling:
    """Time the bare scandir+stat walk of the v1 tree: the floor of every status, measured even with ceilings off."""
    seconds, stats = _median_time(lambda: walk_stat(ds.v1), runs)
    return Ceiling("walk", "scandir+stat walk", seconds, stats.files, 0)  # no content read: no MiB/s


def local_ceilings(ds: Dataset, scratch: Path, runs: int) -> dict[str, Ceiling]:
    """Measure walk, read, hash and ingest of the v1 tree (page cache warm) and XXH3 from memory."""
    out = {"walk": walk_ceiling(ds, runs)}
    specs: list[tuple[str, str, Callable[[], TreeStats]]] = [
        ("read", "read all files", lambda: read_tree(ds.v1)),
        ("hash_files", "read + XXH3-128 all files", lambda: read_tree(ds.v1, digest=True)),
    ]
    for name, label, fn in specs:
        seconds, stats = _median_time(fn, runs)
        out[name] = Ceiling(name, label, seconds, stats.files, stats.nbytes)
    dest = scratch / "ingest"
    seconds, stats = _median_time(lambda: ingest_tree(ds.v1, dest), runs,
                                  before=lambda: shutil.rmtree(dest, ignore_errors=True))
    shutil.rmtree(dest, ignore_errors=True)
    out["ingest"] = Ceiling("ingest", "read + hash + write into a cache", seconds, stats.files, stats.nbytes)
    seconds = hash_memory(MEMORY_HASH_BYTES, MEMORY_HASH_REPEATS)
    out["xxh3_memory"] = Ceiling("xxh3_memory", "XXH3-128 from memory", seconds, 0,
                                 MEMORY_HASH_BYTES * MEMORY_HASH_REPEATS,
                                 f"{MEMORY_HASH_BYTES * MEMORY_HASH_REPEATS / GIB / seconds:.1f} GiB/s")
    return out


def s3_client(endpoint: str, aws_env: dict[str, str], threads: int) -> Any:
    """Return one boto3 S3 client with a connection pool as large as the thread pool."""
    import boto3
    from botocore.config import Config

    cfg = Config(max_pool_connections=threads, retries={"max_attempts": S3_RETRIES, "mode": "standard"},
                 request_checksum_calculation="when_required",
                 response_checksum_validation="when_required")
    session = boto3.session.Session(
        aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY"),
        region_name=aws_env.get("AWS_DEFAULT_REGION") or aws_env.get("AWS_REGION") or DEFAULT_REGION,
    )
    return session.client("s3", endpoint_url=endpoint, config=cfg)


def ensure_bucket(client: Any, bucket: str) -> None:
    """Create a bucket unless it exists already."""
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)


def _transfer_config(threads: int) -> Any:
    """Return the multipart settings used for objects too large for one PUT."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=LARGE_OBJECT_BYTES, multipart_chunksize=PART_BYTES,
                          max_concurrency=threads)


def _large_files(client: Any, threads: int, jobs: list[tuple[str, str, str]], upload_dir: bool,
                 together: bool) -> None:
    """Move large objects (path, bucket, key) as multipart transfers: one file at a time, or all at once."""
    from boto3.s3.transfer import create_transfer_manager

    batches = [jobs] if together else [[job] for job in jobs]
    for batch in batches:
        with create_transfer_manager(client, _transfer_config(threads)) as manager:
            futures = [
                manager.upload(path, bucket, key) if upload_dir else manager.download(bucket, key, path)
                for path, bucket, key in batch
            ]
            for future in futures:
                future.result()


@dataclass(frozen=True)
class Strategy:
    """How the plain client moves files: pool size, and whether large files share the pool."""

    threads: int
    large_together: bool

    @property
    def label(self) -> str:
        """Return a short name such as x16 or x16+large-together."""
        return f"x{self.threads}" + ("+large-together" if self.large_together else "")


def transfer(client: Any, bucket: str, prefix: str, root: Path, sizes: dict[str, int], how: Strategy,
             upload: bool) -> TreeStats:
    """Move every file (PUT from root, or GET into it): small ones by a thread pool, then large ones multipart."""
    small = [rel for rel, size in sizes.items() if size < LARGE_OBJECT_BYTES]
    large = [rel for rel, size in sizes.items() if size >= LARGE_OBJECT_BYTES]
    if not upload:
        for rel in sizes:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)

    def one(rel: str) -> int:
        if upload:
            data = (root / rel).read_bytes()
            client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=data)
        else:
            data = client.get_object(Bucket=bucket, Key=f"{prefix}/{rel}")["Body"].read()
            (root / rel).write_bytes(data)
        return len(data)

    with ThreadPoolExecutor(how.threads) as pool:
        nbytes = sum(pool.map(one, small))
    jobs = [(str(root / rel), bucket, f"{prefix}/{rel}") for rel in large]
    _large_files(client, how.threads, jobs, upload, how.large_together)
    return TreeStats(len(sizes), nbytes + sum(sizes[rel] for rel in large))


def _round_trip(ds: Dataset, endpoint: str, aws_env: dict[str, str], bucket: str, scratch: Path,
                how: Strategy) -> tuple[float, float, TreeStats]:
    """Upload v1 then download it back with one strategy; return both times and what moved."""
    client = s3_client(endpoint, aws_env, how.threads)
    ensure_bucket(client, bucket)
    sizes = {rel: size for rel, _, size in iter_sorted(ds.v1)}
    prefix = how.label
    os.sync()
    start = time.perf_counter()
    moved = transfer(client, bucket, prefix, ds.v1, sizes, how, upload=True)
    up_s = time.perf_counter() - start
    dest = scratch / f"download-{prefix}"
    start = time.perf_counter()
    transfer(client, bucket, prefix, dest, sizes, how, upload=False)
    down_s = time.perf_counter() - start
    same = tree_hash(dest) == ds.hash_v1
    shutil.rmtree(dest)
    if not same:
        raise RuntimeError(f"boto3 ceiling download ({prefix}) is not byte-identical to v1")
    return up_s, down_s, moved


def s3_ceilings(ds: Dataset, endpoint: str, aws_env: dict[str, str], bucket: str, scratch: Path,
                threads_list: Sequence[int], log: Callable[[str], None]) -> dict[str, Ceiling]:
    """Time plain boto3 upload and download of v1 with each strategy, keep the best; then the v2 delta."""
    has_large = ds.scenario.max_size >= LARGE_OBJECT_BYTES
    strategies = [Strategy(t, together) for t in threads_list
                  for together in ((False, True) if has_large else (False,))]
    ups: dict[Strategy, float] = {}
    downs: dict[Strategy, float] = {}
    moved = TreeStats(0, 0)
    for how in strategies:
        ups[how], downs[how], moved = _round_trip(ds, endpoint, aws_env, bucket, scratch, how)
        log(f"ceiling boto3 {how.label}: upload {ups[how]:.1f}s, download {downs[how]:.1f}s")
    best_up = min(ups, key=ups.__getitem__)
    best_down = min(downs, key=downs.__getitem__)
    tried = "tried up/down: " + ", ".join(f"{h.label} {ups[h]:.1f}/{downs[h]:.1f}s" for h in strategies)
    client = s3_client(endpoint, aws_env, best_up.threads)
    start = time.perf_counter()
    changed = {rel: (ds.v2 / rel).stat().st_size for rel in ds.mutation.changed}
    delta = transfer(client, bucket, "delta", ds.v2, changed, best_up, upload=True)
    delta_s = time.perf_counter() - start
    return {
        S3_UPLOAD: Ceiling(S3_UPLOAD, f"boto3 upload {best_up.label}", ups[best_up], moved.files,
                           moved.nbytes, tried),
        "s3_download": Ceiling("s3_download", f"boto3 download {best_down.label}", downs[best_down],
                               moved.files, moved.nbytes, tried),
        "s3_upload_changed": Ceiling("s3_upload_changed", f"boto3 upload changed {best_up.label}", delta_s,
                                     delta.files, delta.nbytes),
    }
