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

    def sound_oids(self) -> set[str]:
        """Check every key under the prefix hashes to its name and no manifest lacks a member; return the oids."""
        under = self.key("")
        found: dict[str, bytes] = {}
        for key in self.list_keys():
            if key.startswith(under):
                data = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
                digest = key[len(under):].replace("/", "")
                assert xxhash.xxh3_128_hexdigest(data) == digest, f"{key} does not hash to its name"
                found[OID_PREFIX + digest] = data
        for oid, data in found.items():
            if data.startswith(manifest.HEADER):
                assert all(e.oid in found for e in manifest.decode(data, oid)), f"manifest {oid} lacks members"
        return set(found)
