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
    hash_tree_files,
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


def local_ceilings(ds: Dataset, scratch: Path, runs: int) -> dict[str, Ceiling]:
    """Measure walk, read, hash and ingest of the v1 tree (page cache warm) and XXH3 from memory."""
    out: dict[str, Ceiling] = {}
    specs: list[tuple[str, str, Callable[[], TreeStats]]] = [
        ("walk", "scandir+stat walk", lambda: walk_stat(ds.v1)),
        ("read", "read all files", lambda: read_tree(ds.v1)),
        ("hash_files", "read + XXH3-128 all files", lambda: hash_tree_files(ds.v1)),
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


def upload(client: Any, bucket: str, prefix: str, root: Path, rels: Sequence[str], threads: int) -> TreeStats:
    """PUT every file with a thread pool; large files go one by one as parallel multipart uploads."""
    small = [(r, root / r) for r in rels if (root / r).stat().st_size < LARGE_OBJECT_BYTES]
    large = [(r, root / r) for r in rels if (root / r).stat().st_size >= LARGE_OBJECT_BYTES]

    def put(item: tuple[str, Path]) -> int:
        data = item[1].read_bytes()
        client.put_object(Bucket=bucket, Key=f"{prefix}/{item[0]}", Body=data)
        return len(data)

    with ThreadPoolExecutor(threads) as pool:
        nbytes = sum(pool.map(put, small))
    for rel, path in large:
        client.upload_file(str(path), bucket, f"{prefix}/{rel}", Config=_transfer_config(threads))
        nbytes += path.stat().st_size
    return TreeStats(len(rels), nbytes)


def download(client: Any, bucket: str, prefix: str, dest: Path, sizes: dict[str, int], threads: int
             ) -> TreeStats:
    """GET every object into dest with a thread pool; large ones as parallel ranged downloads."""
    small = [r for r, size in sizes.items() if size < LARGE_OBJECT_BYTES]
    large = [r for r, size in sizes.items() if size >= LARGE_OBJECT_BYTES]
    for rel in sizes:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)

    def get(rel: str) -> int:
        data = client.get_object(Bucket=bucket, Key=f"{prefix}/{rel}")["Body"].read()
        (dest / rel).write_bytes(data)
        return len(data)

    with ThreadPoolExecutor(threads) as pool:
        nbytes = sum(pool.map(get, small))
    for rel in large:
        client.download_file(bucket, f"{prefix}/{rel}", str(dest / rel), Config=_transfer_config(threads))
        nbytes += sizes[rel]
    return TreeStats(len(sizes), nbytes)


def s3_ceilings(ds: Dataset, endpoint: str, aws_env: dict[str, str], bucket: str, scratch: Path,
                threads_list: Sequence[int], log: Callable[[str], None]) -> dict[str, Ceiling]:
    """Time plain boto3 upload and download of v1 at each pool size, keep the best; then the v2 delta."""
    sizes = {rel: size for rel, _, size in iter_sorted(ds.v1)}
    rels = list(sizes)
    ups: dict[int, float] = {}
    downs: dict[int, float] = {}
    for threads in threads_list:
        client = s3_client(endpoint, aws_env, threads)
        ensure_bucket(client, bucket)
        start = time.perf_counter()
        up = upload(client, bucket, f"t{threads}", ds.v1, rels, threads)
        ups[threads] = time.perf_counter() - start
        dest = scratch / f"download-t{threads}"
        start = time.perf_counter()
        download(client, bucket, f"t{threads}", dest, sizes, threads)
        downs[threads] = time.perf_counter() - start
        same = tree_hash(dest) == ds.hash_v1
        shutil.rmtree(dest)
        log(f"ceiling boto3 x{threads}: upload {ups[threads]:.1f}s, download {downs[threads]:.1f}s"
            + ("" if same else " (DOWNLOAD MISMATCH)"))
        if not same:
            raise RuntimeError("boto3 ceiling download is not byte-identical to v1")
    best_up = min(ups, key=ups.__getitem__)
    best_down = min(downs, key=downs.__getitem__)
    tried = ", ".join(f"{t}: {ups[t]:.1f}/{downs[t]:.1f}s" for t in threads_list)
    changed = list(ds.mutation.changed)
    client = s3_client(endpoint, aws_env, best_up)
    start = time.perf_counter()
    delta = upload(client, bucket, "delta", ds.v2, changed, best_up)
    delta_s = time.perf_counter() - start
    return {
        "s3_upload": Ceiling("s3_upload", f"boto3 upload x{best_up}", ups[best_up], up.files, up.nbytes,
                             f"threads up/down: {tried}"),
        "s3_download": Ceiling("s3_download", f"boto3 download x{best_down}", downs[best_down], up.files,
                               up.nbytes, f"threads up/down: {tried}"),
        "s3_upload_changed": Ceiling("s3_upload_changed", f"boto3 upload changed x{best_up}", delta_s,
                                     delta.files, delta.nbytes),
    }
