"""`vtool config`: read and write one setting in the tracked or local config file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vtool import config as cfg
from vtool.errors import ConfigError, UsageError
from vtool.fsutil import atomic_write
from vtool.ops.project import load_settings, project_root


@dataclass(frozen=True)
class ConfigValue:
    """A setting's effective value (None when unset)."""

    key: str
    value: str | None


def _validate(key: str, value: str) -> object:
    if key == "cache.link" and value not in cfg.LINK_MODES:
        raise ConfigError(f"cache.link: unknown mode {value!r}", f"use one of {', '.join(cfg.LINK_MODES)}")
    if key == "core.jobs":
        return cfg.parse_jobs(value)
    if key == "cache.packs":
        return cfg.parse_bool(key, value)
    if key == "gc.grace":
        cfg.parse_duration(key, value)
    return value


def _effective(settings: cfg.Config, key: str) -> str | None:
    """The value a setting has in effect, defaults included."""
    values = {"cache.dir": str(settings.cache_dir), "cache.link": settings.link, "core.jobs": str(settings.jobs),
              "core.remote": settings.default_remote, "cache.packs": str(settings.packs).lower(),
              "gc.grace": f"{settings.grace_s}s"}
    return values[key]


def config_value(key: str, value: str | None = None, local: bool = False, unset: bool = False,
                 start: Path | None = None) -> ConfigValue:
    """Get a setting, or set/unset it in config.yaml (config.local.yaml with local=True)."""
    if key not in cfg.SETTINGS:
        raise UsageError(f"unknown setting {key!r}", f"known settings: {', '.join(cfg.SETTINGS)}")
    root = project_root(start)
    section, name = key.split(".", 1)
    if value is None and not unset:
        return ConfigValue(key, _effective(load_settings(root), key))
    tracked, local_path = cfg.config_paths(root)
    path = local_path if local else tracked
    doc = cfg.read_doc(path)
    part = doc.setdefault(section, {})
    if unset:
        part.pop(name, None)
        if not part:
            del doc[section]
    else:
        part[name] = _validate(key, value or "")
    before = path.read_bytes() if path.exists() else None
    cfg.write_doc(path, doc)
    try:
        settings = load_settings(root)
        if key == "core.remote" and not unset:
            settings.remote(value)
    except ConfigError:  # a value the whole configuration rejects is never left behind
        if before is None:
            path.unlink()
        else:
            atomic_write(path, before)
        raise
    return ConfigValue(key, None if unset else str(value))
