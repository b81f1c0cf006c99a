"""Remotes are bytes by key; `open_remote` picks the implementation, loading boto3 only for s3:// URLs."""

from __future__ import annotations

import re

from vtool.errors import RemoteError
from vtool.remote.base import Remote, RemoteConfig, object_key
from vtool.remote.local import LocalRemote

__all__ = ["LocalRemote", "Remote", "RemoteConfig", "object_key", "open_remote"]

URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
LOCAL_SCHEMES = ("file",)
S3_SCHEME = "s3"


def open_remote(config: RemoteConfig, jobs: int) -> Remote:
    """Return the Remote for the URL: s3:// is S3, file:// or a plain path is a folder."""
    match = URL_SCHEME.match(config.url)
    scheme = match[1].lower() if match else None
    if scheme == S3_SCHEME:
        from vtool.remote.s3 import S3Remote  # boto3 takes ~0.3 s to import; local remotes never pay it

        return S3Remote(config, jobs)
    if scheme is None or scheme in LOCAL_SCHEMES:
        return LocalRemote(config)
    raise RemoteError(
        f"remote {config.name!r}: unsupported URL scheme {scheme}:// in {config.url}",
        "supported: s3://bucket/prefix, file:///path, or a local folder path",
    )
