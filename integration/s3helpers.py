"""Helpers for tests that talk to the test S3 server directly: buckets, raw keys, admin client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import boto3
import botocore.config
import xxhash

from integration.s3server import S3Server
from vtool import manifest
from vtool.hashing import OID_PREFIX
from vtool.remote.base import RemoteConfig
from vtool.store import index, layout, pack

HEX = frozenset("0123456789abcdef")

TEST_PREFIX = "team/datasets"
REMOTE_NAME = "origin"
ADMIN_TIMEOUT = 5
BUCKET_PREFIX = "vt-"
BUCKET_SUFFIX_CHARS = 16


def admin_client(server: S3Server) -> Any:
    """Return a boto3 client with the server's root keys, to create buckets and plant or inspect keys."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=ADMIN_TIMEOUT,
            read_timeout=ADMIN_TIMEOUT * 4,
        ),
    )


def new_bucket_name() -> str:
    """Return a valid, unique bucket name."""
    return BUCKET_PREFIX + uuid.uuid4().hex[:BUCKET_SUFFIX_CHARS]


def drop_bucket(client: Any, name: str) -> None:
    """Empty and delete a bucket; SeaweedFS frees a bucket's volumes only when the bucket is deleted."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        entries = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
        if entries:
            client.delete_objects(Bucket=name, Delete={"Objects": entries, "Quiet": True})
    client.delete_bucket(Bucket=name)


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test server, with the remote URL and config vtool should use for it."""

    server: S3Server
    name: str
    prefix: str
    client: Any

    @property
    def url(self) -> str:
        """Return `s3://bucket/prefix`."""
        return f"s3://{self.name}/{self.prefix}" if self.prefix else f"s3://{self.name}"

    def config(self, **changes: Any) -> RemoteConfig:
        """Return a RemoteConfig with endpoint and explicit keys; keyword arguments override fields."""
        base = RemoteConfig(
            name=REMOTE_NAME,
            url=self.url,
            endpoint_url=self.server.endpoint,
            region=self.server.region,
            access_key_id=self.server.access_key,
            secret_access_key=self.server.secret_key,
        )
        return replace(base, **changes)

    def key(self, relative: str) -> str:
        """Return the full key of `relative` under the prefix."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def put_raw(self, relative: str, data: bytes) -> None:
        """Write a key under the prefix directly, bypassing vtool (stray keys, corrupt objects)."""
        self.client.put_object(Bucket=self.name, Key=self.key(relative), Body=data)

    def list_keys(self) -> list[str]:
        """List every key in the bucket, under the prefix or not, sorted."""
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            found.extend(entry["Key"] for entry in page.get("Contents", ()))
        return sorted(found)

    def sound_oids(self, prefix: str | None = None) -> set[str]:
        """Check the prefix as a reader must find it: whole loose objects and packs under final names, indexes
        naming only complete packs, no committed manifest lacking a member; return the committed oids."""
        return remote_sound(self, self.prefix if prefix is None else prefix)


def remote_sound(bucket: S3Bucket, prefix: str) -> set[str]:
    """Check what a reader may rely on under prefix (see S3Bucket.sound_oids)."""
    client = bucket.client
    listed = {item["Key"][len(prefix) + 1:]: item["Size"]
              for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, Prefix=prefix + "/")
              for item in page.get("Contents", ())}

    def read(rel: str) -> bytes:
        return client.get_object(Bucket=bucket.name, Key=f"{prefix}/{rel}")["Body"].read()

    found: set[str] = set()
    manifests: dict[str, bytes] = {}
    packs: dict[str, bytes] = {}
    for rel in listed:
        if rel == layout.FORMAT_KEY:
            assert read(rel) == layout.format_bytes()
        elif rel == layout.GC_LOCK_KEY:
            continue
        elif rel.startswith(layout.PACKS_DIR + "/"):
            name = rel[len(layout.PACKS_DIR) + 1:-len(layout.PACK_SUFFIX)]
            packs[name] = read(rel)
            pack.parse(packs[name], name)  # every object and the name check out
        elif not rel.startswith(layout.INDEX_DIR + "/"):
            digest = rel.replace("/", "")
            assert len(rel) == 33 and rel[2] == "/" and set(digest) <= HEX, f"stray key {rel}"
            data = read(rel)
            assert xxhash.xxh3_128_hexdigest(data) == digest, f"partial or corrupt remote object {digest}"
            found.add(OID_PREFIX + digest)
            if data.startswith(manifest.HEADER):
                manifests[OID_PREFIX + digest] = data
    for rel in listed:
        if rel.startswith(layout.INDEX_DIR + "/"):
            name = rel[len(layout.INDEX_DIR) + 1:-len(layout.INDEX_SUFFIX)]
            data = read(rel)
            assert xxhash.xxh3_128_hexdigest(data) == name, f"partial or corrupt index {rel}"
            for info in index.decode(data, name).packs:
                assert listed.get(layout.pack_key(info.name)) == info.size, f"index {name} names a missing pack"
                for slot in info.slots:
                    found.add(slot.oid)
                    body = packs[info.name][slot.offset:slot.end]
                    if body.startswith(manifest.HEADER):
                        manifests[slot.oid] = body
    for oid, data in manifests.items():
        lacking = [e.oid for e in manifest.decode(data, oid) if e.oid not in found]
        assert not lacking, f"remote manifest {oid} lacks its members {lacking[:3]}"
    return found
