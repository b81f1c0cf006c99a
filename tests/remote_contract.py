"""The contract every Remote must pass; a test class inherits RemoteContract and provides two fixtures.

    remote: the Remote under test, empty, closed by the fixture afterwards
    plant:  plant(relative_key, data) writes raw bytes at a key below the remote's root, bypassing the
            Remote API (corrupt objects)

Not collected by itself (no `Test` prefix); see tests/test_remote_local.py and integration/test_remote_s3.py.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import xxhash

from vtool.errors import RemoteObjectMissingError
from vtool.remote.base import OID_PREFIX, Remote, object_key

MiB = 1 << 20
# Above the S3 remote's 64 MiB single-PUT limit: a multipart upload of 9 parts (integration/test_remote_s3.py).
MULTIPART_SIZE = 65 * MiB
# A large value for every remote, small enough that the test process stays small.
LARGE_SIZE = 9 * MiB
THREADS = 8
CONCURRENT_OBJECTS = 32
CONCURRENT_MAX_SIZE = 64 * 1024
SEED = 20240611

Plant = Callable[[str, bytes], None]
Store = Callable[[bytes], str]


def oid_of(data: bytes) -> str:
    """Name bytes the way vtool does."""
    return OID_PREFIX + xxhash.xxh3_128_hexdigest(data)


def payload(size: int, seed: int = SEED) -> bytes:
    """Return deterministic pseudo-random bytes, so a failure reproduces."""
    return random.Random(seed + size).randbytes(size)


def fetch(remote: Remote, oid: str) -> bytes:
    """Download an object (stored loose, under its fan-out key) into memory."""
    sink = io.BytesIO()
    remote.get(object_key(oid), sink)
    return sink.getvalue()


def has(remote: Remote, oid: str) -> bool:
    return remote.stat(object_key(oid)) is not None


def keys(remote: Remote, prefix: str = "") -> list[str]:
    return sorted(e.key for e in remote.list(prefix))


def loose(oids: set[str] | list[str]) -> list[str]:
    return sorted(object_key(o) for o in oids)


class RemoteContract:
    """Behaviour the store layer relies on (bytes by key), identical for a folder and an S3 bucket."""

    @pytest.fixture
    def store(self, remote: Remote, tmp_path: Path) -> Store:
        """Return a function that puts bytes through a source file under their loose key and returns their oid."""
        counter = iter(range(1_000_000))

        def put(data: bytes) -> str:
            src = tmp_path / f"src-{next(counter)}"
            src.write_bytes(data)
            oid = oid_of(data)
            remote.put(object_key(oid), src)
            return oid

        return put

    @pytest.mark.parametrize("size", [0, 1, LARGE_SIZE], ids=["empty", "one-byte", "large-9MiB"])
    def test_put_then_stat_and_get_roundtrip(self, remote: Remote, store: Store, size: int) -> None:
        data = payload(size)
        oid = store(data)
        assert remote.stat(object_key(oid)) == size
        assert fetch(remote, oid) == data

    def test_stat_is_none_for_an_absent_key(self, remote: Remote) -> None:
        assert remote.stat(object_key(oid_of(b"never stored"))) is None
        assert remote.stat("packs/nothing.pack") is None

    def test_get_of_an_absent_key_raises_missing_and_writes_nothing(self, remote: Remote) -> None:
        sink = io.BytesIO()
        with pytest.raises(RemoteObjectMissingError) as caught:
            remote.get("packs/absent.pack", sink)
        assert caught.value.oid == "packs/absent.pack"
        assert sink.getvalue() == b""

    def test_ranged_gets_return_exactly_the_bytes_asked_for(self, remote: Remote) -> None:
        data = payload(100_000)
        remote.put("packs/p.pack", data)
        for start, length in ((0, 10), (5, 1), (99_990, 10), (40_000, 30_000), (0, 100_000)):
            sink = io.BytesIO()
            remote.get("packs/p.pack", sink, start, length)
            assert sink.getvalue() == data[start:start + length]
        sink = io.BytesIO()
        remote.get("packs/p.pack", sink, 99_000)
        assert sink.getvalue() == data[99_000:]

    def test_bytes_and_files_put_alike(self, remote: Remote, tmp_path: Path) -> None:
        remote.put("index/a.idx", b"from memory")
        src = tmp_path / "f"
        src.write_bytes(b"from a file")
        remote.put("index/b.idx", src)
        assert keys(remote, "index/") == ["index/a.idx", "index/b.idx"]
        sink = io.BytesIO()
        remote.get("index/a.idx", sink)
        assert sink.getvalue() == b"from memory"

    def test_list_of_an_empty_remote_is_empty(self, remote: Remote) -> None:
        assert list(remote.list()) == []

    def test_list_names_exactly_what_was_put_with_sizes(self, remote: Remote, store: Store) -> None:
        oids = {store(payload(size)) for size in (0, 10, 100, 1000)}
        listed = {e.key: e.size for e in remote.list()}
        assert listed == {object_key(oid_of(payload(size))): size for size in (0, 10, 100, 1000)}
        assert sorted(listed) == loose(oids)

    def test_list_of_one_folder_lists_only_that_folder(self, remote: Remote, store: Store) -> None:
        oids = {store(payload(size)) for size in range(40)}
        fanout = sorted(oids)[0][7:9]
        assert keys(remote, f"{fanout}/") == loose({o for o in oids if o[7:9] == fanout})
        assert keys(remote, "zz/") == []

    def test_objects_live_under_the_fanout_key(self, remote: Remote, plant: Plant) -> None:
        oid = oid_of(b"planted by hand")
        plant(object_key(oid), b"planted by hand")
        assert has(remote, oid)
        assert fetch(remote, oid) == b"planted by hand"
        assert keys(remote) == [object_key(oid)]

    def test_remove_deletes_and_is_idempotent(self, remote: Remote, store: Store) -> None:
        keep = store(b"keep")
        gone = store(b"gone")
        remote.remove(object_key(gone))
        remote.remove(object_key(gone))
        remote.remove(object_key(oid_of(b"never stored")))
        assert not has(remote, gone)
        assert has(remote, keep)
        assert keys(remote) == [object_key(keep)]
        with pytest.raises(RemoteObjectMissingError):
            fetch(remote, gone)

    def test_putting_the_same_object_twice_is_harmless(self, remote: Remote, store: Store) -> None:
        data = payload(4096)
        first = store(data)
        second = store(data)
        assert first == second
        assert fetch(remote, first) == data
        assert keys(remote) == [object_key(first)]

    def test_put_replaces_a_corrupt_object_whole(self, remote: Remote, store: Store, plant: Plant) -> None:
        data = payload(100_000)
        oid = oid_of(data)
        plant(object_key(oid), b"truncated garbage")
        store(data)
        assert fetch(remote, oid) == data

    def test_concurrent_puts_of_different_objects_all_land(self, remote: Remote, store: Store) -> None:
        rng = random.Random(SEED)
        # A distinct last byte per blob: no two random blobs can share an oid.
        blobs = [
            rng.randbytes(rng.randrange(CONCURRENT_MAX_SIZE)) + bytes([i]) for i in range(CONCURRENT_OBJECTS)
        ]
        with ThreadPoolExecutor(THREADS) as pool:
            oids = list(pool.map(store, blobs))
        assert keys(remote) == loose(oids)
        with ThreadPoolExecutor(THREADS) as pool:
            fetched = list(pool.map(lambda oid: fetch(remote, oid), oids))
        assert fetched == blobs

    def test_describe_is_one_line_of_text(self, remote: Remote) -> None:
        text = remote.describe()
        assert text and "\n" not in text
