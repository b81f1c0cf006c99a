"""The contract every Remote must pass; a test class inherits RemoteContract and provides two fixtures.

    remote: the Remote under test, empty, closed by the fixture afterwards
    plant:  plant(relative_key, data) writes raw bytes at `<2 hex>/<30 hex>`-style keys below the
            remote's root, bypassing the Remote API (stray files, corrupt objects)

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
# Above the S3 remote's 8 MiB multipart threshold, so S3 runs exercise a two-part upload.
MULTIPART_SIZE = 9 * MiB
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
    """Download an object into memory."""
    sink = io.BytesIO()
    remote.get(oid, sink)
    return sink.getvalue()


class RemoteContract:
    """Behaviour the transfer layer relies on, identical for a folder and an S3 bucket."""

    @pytest.fixture
    def store(self, remote: Remote, tmp_path: Path) -> Store:
        """Return a function that puts bytes through a source file and returns their oid."""
        counter = iter(range(1_000_000))

        def put(data: bytes) -> str:
            src = tmp_path / f"src-{next(counter)}"
            src.write_bytes(data)
            oid = oid_of(data)
            remote.put(oid, src)
            return oid

        return put

    @pytest.mark.parametrize("size", [0, 1, MULTIPART_SIZE], ids=["empty", "one-byte", "multipart-9MiB"])
    def test_put_then_has_and_get_roundtrip(self, remote: Remote, store: Store, size: int) -> None:
        data = payload(size)
        oid = store(data)
        assert remote.has(oid)
        assert fetch(remote, oid) == data

    def test_has_is_false_for_an_absent_object(self, remote: Remote) -> None:
        assert not remote.has(oid_of(b"never stored"))

    def test_get_of_an_absent_object_raises_missing_and_writes_nothing(self, remote: Remote) -> None:
        oid = oid_of(b"never stored")
        sink = io.BytesIO()
        with pytest.raises(RemoteObjectMissingError) as caught:
            remote.get(oid, sink)
        assert caught.value.oid == oid
        assert sink.getvalue() == b""

    def test_iter_oids_of_an_empty_remote_is_empty(self, remote: Remote) -> None:
        assert list(remote.iter_oids()) == []

    def test_iter_oids_lists_exactly_what_was_put(self, remote: Remote, store: Store) -> None:
        oids = {store(payload(size)) for size in (0, 10, 100, 1000)}
        listed = list(remote.iter_oids())
        assert sorted(listed) == sorted(oids)

    def test_iter_oids_of_one_fanout_lists_only_that_folder(self, remote: Remote, store: Store) -> None:
        oids = {store(payload(size)) for size in range(40)}
        fanout = sorted(oids)[0][7:9]
        assert sorted(remote.iter_oids(fanout)) == sorted(o for o in oids if o[7:9] == fanout)
        assert list(remote.iter_oids("zz")) == []

    def test_iter_oids_ignores_keys_that_are_not_ours(
        self, remote: Remote, store: Store, plant: Plant
    ) -> None:
        ours = store(b"ours")
        digest = xxhash.xxh3_128_hexdigest(b"stray")
        strays = [
            "junk.txt",
            "ab/short",
            f"{digest[:2]}/{digest[2:]}.tmp",
            f"{digest[:2]}/{digest[2:-1]}",
            f"{digest[:2].upper()}/{digest[2:].upper()}",
            f"zz/{digest[2:]}",
            f"{digest[:3]}/{digest[3:]}",
        ]
        for key in strays:
            plant(key, b"not an object of ours")
        assert list(remote.iter_oids()) == [ours]

    def test_objects_live_under_the_fanout_key(self, remote: Remote, plant: Plant) -> None:
        oid = oid_of(b"planted by hand")
        plant(object_key(oid), b"planted by hand")
        assert remote.has(oid)
        assert fetch(remote, oid) == b"planted by hand"
        assert list(remote.iter_oids()) == [oid]

    def test_remove_deletes_and_is_idempotent(self, remote: Remote, store: Store) -> None:
        keep = store(b"keep")
        gone = store(b"gone")
        remote.remove(gone)
        remote.remove(gone)
        remote.remove(oid_of(b"never stored"))
        assert not remote.has(gone)
        assert remote.has(keep)
        assert list(remote.iter_oids()) == [keep]
        with pytest.raises(RemoteObjectMissingError):
            fetch(remote, gone)

    def test_putting_the_same_object_twice_is_harmless(self, remote: Remote, store: Store) -> None:
        data = payload(4096)
        first = store(data)
        second = store(data)
        assert first == second
        assert fetch(remote, first) == data
        assert list(remote.iter_oids()) == [first]

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
        assert sorted(remote.iter_oids()) == sorted(oids)
        with ThreadPoolExecutor(THREADS) as pool:
            fetched = list(pool.map(lambda oid: fetch(remote, oid), oids))
        assert fetched == blobs

    def test_describe_is_one_line_of_text(self, remote: Remote) -> None:
        text = remote.describe()
        assert text and "\n" not in text
