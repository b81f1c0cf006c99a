"""`vtool remote add/list/remove/default`: remotes live in the tracked config, secrets in the local one."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vtool import config as cfg
from vtool.errors import ConfigError
from vtool.ops.project import project_root

S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")
SUPPORTED = "s3://bucket/prefix or a local folder path"


@dataclass(frozen=True)
class RemoteInfo:
    """A configured remote as shown to users: never any secret."""

    name: str
    url: str
    endpoint_url: str | None
    region: str | None
    profile: str | None
    default: bool


@dataclass(frozen=True)
class RemoteSpec:
    """What `vtool remote add` was given: the remote as it will be configured, and how to add it."""

    remote: cfg.RemoteConfig
    default: bool = False
    force: bool = False


def normalise_url(url: str, root: Path) -> str:
    """Validate a remote URL; local paths become absolute so every clone agrees."""
    if url.startswith("s3://"):
        if not S3_URL.match(url):
            raise ConfigError(f"invalid S3 URL {url!r}", "expected s3://bucket or s3://bucket/prefix")
        return url.rstrip("/")
    if "://" in url and not url.startswith("file://"):
        raise ConfigError(f"unsupported remote URL {url!r}", f"use {SUPPORTED}")
    path = url.removeprefix("file://")
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else str((Path.cwd() / expanded).resolve())


def add_remote(spec: RemoteSpec, start: Path | None = None) -> RemoteInfo:
    """Add (or with force, replace) a remote in the tracked config."""
    new = spec.remote
    if not cfg.REMOTE_NAME.match(new.name):
        raise ConfigError(f"invalid remote name {new.name!r}", "use letters, digits, '.', '_' and '-'")
    root = project_root(start)
    tracked, _ = cfg.config_paths(root)
    doc = cfg.read_doc(tracked)
    remotes = doc.setdefault("remotes", {})
    if new.name in remotes and not spec.force:
        raise ConfigError(f"remote {new.name!r} already exists", "pass --force to replace it")
    if new.endpoint_url is not None:
        cfg.check_endpoint(new.endpoint_url, "--endpoint-url")
    cfg.check_no_userinfo(new.name, new.url)
    settings = {"url": normalise_url(new.url, root), "endpoint_url": new.endpoint_url,
                "region": new.region, "profile": new.profile, "layout": new.layout}
    remotes[new.name] = {k: v for k, v in settings.items() if v}
    if spec.default or len(remotes) == 1:
        doc.setdefault("core", {})["remote"] = new.name
    cfg.write_doc(tracked, doc)
    return next(r for r in list_remotes(start) if r.name == new.name)


def list_remotes(start: Path | None = None) -> list[RemoteInfo]:
    """Every configured remote, the default marked."""
    settings = cfg.load(project_root(start))
    return [RemoteInfo(r.name, r.url, r.endpoint_url, r.region, r.profile, r.name == settings.default_remote)
            for r in sorted(settings.remotes.values(), key=lambda r: r.name)]


def remove_remote(name: str, start: Path | None = None) -> None:
    """Delete a remote from both config files, and the default if it was that one."""
    root = project_root(start)
    found = False
    for path in cfg.config_paths(root):
        doc = cfg.read_doc(path)
        if name in (doc.get("remotes") or {}):
            del doc["remotes"][name]
            found = True
        if (doc.get("core") or {}).get("remote") == name:
            del doc["core"]["remote"]
        cfg.write_doc(path, doc) if path.exists() else None
    if not found:
        raise ConfigError(f"unknown remote {name!r}", "see: vtool remote list")


def set_default(name: str, start: Path | None = None) -> None:
    """Make an existing remote the default."""
    root = project_root(start)
    cfg.load(root).remote(name)
    tracked, _ = cfg.config_paths(root)
    doc = cfg.read_doc(tracked)
    doc.setdefault("core", {})["remote"] = name
    cfg.write_doc(tracked, doc)
