"""The one protocol every remote implements: bytes by key, nothing else (vtool/store lays objects out on top)."""

from __future__ import annotations

from vtool.config import RemoteConfig
from vtool.hashing import OID_PREFIX
from vtool.store.backend import Remote
from vtool.store.layout import object_key

__all__ = ["OID_PREFIX", "Remote", "RemoteConfig", "object_key"]
