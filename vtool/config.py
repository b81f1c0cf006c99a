"""`.vtool/config.yaml` (tracked) merged with `.vtool/config.local.yaml` (ignored, secrets) into frozen settings."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vtool import flatyaml, scrub
from vtool.errors import ConfigError
from vtool.fsutil import atomic_write, check_real_folder

VTOOL_DIR = ".vtool"
CONFIG_NAME = "config.yaml"
LOCAL_CONFIG_NAME = "config.local.yaml"
MAX_CONFIG_BYTES = 1024 * 1024
LINK_MODES = ("auto", "reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK = "auto"
DEFAULT_JOBS = 8
MAX_JOBS = 256
REMOTE_FIELDS = ("url", "endpoint_url", "region", "profile", "layout")
LOOSE_LAYOUT = "loose"  # write only loose objects, readable by releases before packs
LAYOUTS = ("packs", LOOSE_LAYOUT)
SECRET_FIELDS = ("access_key_id", "secret_access_key")
REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SETTINGS = ("cache.dir", "cache.link", "cache.packs", "core.jobs", "core.remote", "gc.grace")
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
DEFAULT_GRACE_S = 24 * 3600
DURATION = re.compile(r"^(\d+)([smhd]?)$")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
ENDPOINT_SCHEMES = ("http", "https")
ENDPOINT_HINT = "expected http://host:port or https://host"
MAX_URL_SHOWN = 120


@dataclass(frozen=True)
class RemoteConfig:
    """A remote as configured: URL and connection settings; secrets only from the local file."""

    name: str
    url: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    layout: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Config:
    """Effective settings of one project."""

    root: Path
    cache_dir: Path
    link: str = DEFAULT_LINK
    jobs: int = DEFAULT_JOBS
    default_remote: str | None = None
    remotes: dict[str, RemoteConfig] = field(default_factory=dict)
    packs: bool = True
    grace_s: int = DEFAULT_GRACE_S

    def remote(self, name: str | None) -> RemoteConfig:
        """Resolve a remote by name, or the default one, with a message saying how to fix a miss."""
        if name is None:
            if self.default_remote is None:
                if len(self.remotes) == 1:
                    return next(iter(self.remotes.values()))
                raise ConfigError(
                    "no default remote configured",
                    "run: vtool remote add NAME URL --default, or pass -r NAME",
                )
            name = self.default_remote
        if name not in self.remotes:
            known = ", ".join(sorted(self.remotes)) or "none"
            raise ConfigError(f"unknown remote {name!r} (configured: {known})", "see: vtool remote list")
        return self.remotes[name]


def config_paths(root: Path) -> tuple[Path, Path]:
    """Return the tracked and the local config file of a project."""
    base = root / VTOOL_DIR
    return base / CONFIG_NAME, base / LOCAL_CONFIG_NAME


def read_doc(path: Path) -> dict[str, Any]:
    """Load one YAML config file safely; absent is empty."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file is too large")
    try:
        doc = flatyaml.read(data.decode("utf-8")) or {}
    except (UnicodeDecodeError, flatyaml.YamlError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({flatyaml.describe(exc)})", "fix or delete the file") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a YAML mapping")
    return doc


def write_doc(path: Path, doc: dict[str, Any]) -> None:
    """Save a config document atomically and durably, never through a symlinked `.vtool/` folder."""
    check_real_folder(path.parent.parent, path)
    text = flatyaml.dump(doc, sort_keys=True)
    if text is None:  # a value outside the flat subset: only then is PyYAML imported
        import yaml

        text = yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True)
    atomic_write(path, text.encode("utf-8"))


def _section(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = doc.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{name}' must be a mapping")
    return value


def merged(root: Path) -> dict[str, Any]:
    """Overlay the local config on the tracked one, section by section."""
    tracked_path, local_path = config_paths(root)
    tracked, local = read_doc(tracked_path), read_doc(local_path)
    out: dict[str, Any] = {}
    for name in ("cache", "core", "gc"):
        out[name] = {**_section(tracked, name, tracked_path), **_section(local, name, local_path)}
    remotes: dict[str, Any] = {}
    for doc, path in ((tracked, tracked_path), (local, local_path)):
        for rname, settings in _section(doc, "remotes", path).items():
            if not isinstance(settings, dict):
                raise ConfigError(f"{path}: remote {rname!r} must be a mapping")
            scrub.register(*(str(settings[key]) for key in SECRET_FIELDS if settings.get(key)))
            leaked = [key for key in SECRET_FIELDS if key in settings and path == tracked_path]
            if leaked:  # never echo the value: the message itself may end up in a CI log
                raise ConfigError(f"{path}: remote {rname!r} has {leaked[0]} in the tracked config",
                                  f"move it to {LOCAL_CONFIG_NAME} (ignored by git); if it was ever committed, "
                                  "rotate the key")
            remotes[rname] = {**remotes.get(rname, {}), **settings}
    out["remotes"] = remotes
    return out


def load(root: Path, default_cache: Path | None = None) -> Config:
    """Build the effective, validated settings of the project at root (cache.dir defaults to default_cache)."""
    doc = merged(root)
    cache, core, gc = doc["cache"], doc["core"], doc.get("gc") or {}
    link = str(cache.get("link", DEFAULT_LINK))
    if link not in LINK_MODES:
        raise ConfigError(f"cache.link: unknown mode {link!r}", f"use one of {', '.join(LINK_MODES)}")
    cache_dir = Path(os.path.expanduser(str(cache.get("dir") or default_cache or f"{VTOOL_DIR}/cache")))
    cache_dir = cache_dir if cache_dir.is_absolute() else root / cache_dir
    _refuse_own_folders(root, cache_dir, "cache.dir")
    remotes = {name: _remote(name, settings) for name, settings in doc["remotes"].items()}
    for remote in remotes.values():
        if "://" not in remote.url or remote.url.startswith("file://"):
            _refuse_own_folders(root, Path(os.path.expanduser(remote.url.removeprefix("file://"))),
                                f"remote {remote.name!r}")
    default = core.get("remote")
    return Config(
        root=root,
        cache_dir=cache_dir,
        link=link,
        jobs=parse_jobs(core.get("jobs", DEFAULT_JOBS)),
        default_remote=str(default) if default else None,
        remotes=remotes,
        packs=parse_bool("cache.packs", cache.get("packs", True)),
        grace_s=parse_duration("gc.grace", gc.get("grace", DEFAULT_GRACE_S)),
    )


def parse_bool(key: str, value: object) -> bool:
    """Validate an on/off setting (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    found = BOOLEANS.get(str(value).strip().lower())
    if found is None:
        raise ConfigError(f"{key}: {value!r} is not true or false")
    return found


def parse_duration(key: str, value: object) -> int:
    """Validate a duration: seconds, or a number with s, m, h or d (`24h`)."""
    match = DURATION.match(str(value).strip())
    if match is None:
        raise ConfigError(f"{key}: {value!r} is not a duration", "use e.g. 3600, 90m, 24h or 7d")
    return int(match[1]) * DURATION_UNITS[match[2]]


def _refuse_own_folders(root: Path, folder: Path, what: str) -> None:
    """Refuse a folder vtool would write objects and a lock into that is .git/ (or in it), .vtool/ or the root."""
    real, real_root = os.path.realpath(root / folder), os.path.realpath(root)
    git = os.path.realpath(root / ".git")
    if real == git or real.startswith(git + os.sep) or real in (real_root, os.path.join(real_root, VTOOL_DIR)):
        raise ConfigError(f"{what}: {folder} is inside .git/, or is .vtool/ or the repository itself",
                          "choose another folder; vtool never writes there")


def parse_jobs(value: object) -> int:
    """Validate a parallelism setting."""
    try:
        jobs = int(str(value))
    except ValueError:
        raise ConfigError(f"core.jobs: {value!r} is not a number") from None
    if not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"core.jobs: {jobs} is out of range 1..{MAX_JOBS}")
    return jobs


def _remote(name: str, settings: dict[str, Any]) -> RemoteConfig:
    url = settings.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"remote {name!r} has no url", f"run: vtool remote add {name} URL")
    known = {k: str(settings[k]) for k in (*REMOTE_FIELDS, *SECRET_FIELDS) if settings.get(k)}
    if known.get("layout", "packs") not in LAYOUTS:
        raise ConfigError(f"remote {name!r}: unknown layout {known['layout']!r}", f"use one of {', '.join(LAYOUTS)}")
    if "endpoint_url" in known:
        check_endpoint(known["endpoint_url"], f"remote {name!r}")
    check_no_userinfo(name, url)
    return RemoteConfig(name=name, **known)


def check_no_userinfo(name: str, url: str | None) -> None:
    """Refuse `user:password@` in a remote URL: it would sit in a tracked file and in every error message."""
    if url and "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        raise ConfigError(f"remote {name!r}: credentials inside a URL are not allowed",
                          "remove 'user:password@' and use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")


def check_endpoint(url: str, where: str) -> str:
    """Validate an S3 endpoint URL once, where it is read (config, --endpoint-url, AWS_ENDPOINT_URL); return it.

    Afterwards nothing can fail to parse it: `http://[::1` would otherwise crash whatever touched it first.
    """
    if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        raise ConfigError(f"{where}: credentials inside a URL are not allowed",
                          "remove 'user:password@' and use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")
    shown = scrub.without_userinfo(url)[:MAX_URL_SHOWN]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: `:99999` and `:x` raise ValueError
    except ValueError as exc:
        raise ConfigError(f"{where}: malformed endpoint URL {shown!r} ({exc})", ENDPOINT_HINT) from None
    if parts.scheme not in ENDPOINT_SCHEMES or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(f"{where}: malformed endpoint URL {shown!r}", ENDPOINT_HINT)
    return url
