"""The environment fingerprint a stage runs in: python, platform, packages, lock files, container image."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from vtool.errors import ConfigError
from vtool.hashing import Oid, hash_bytes, hash_file
from vtool.pipeline.lockfile import canonical_json

# Replaces components of the fingerprint, as JSON (`{"python": "CPython 3.12.3"}`): to simulate another
# interpreter or package set in tests, or to pin what a build container reports.
OVERRIDE_ENV = "VTOOL_ENV_FINGERPRINT"
IMAGE_ENV = "VTOOL_IMAGE_DIGEST"
LOCKFILE_GLOBS = ("uv.lock", "poetry.lock", "Pipfile.lock", "requirements*.txt", "environment.yml",
                  "environment.yaml")
NONE = "none"
OVERRIDABLE = ("python", "platform", "packages", "lockfiles", "image")


@dataclass(frozen=True)
class Environment:
    """Everything the fingerprint knows; the lock keeps one short string per component, a run record all of it."""

    python: str
    platform: str
    packages: tuple[str, ...]
    lockfiles: dict[str, Oid] = field(default_factory=dict)
    image: str | None = None

    def components(self) -> dict[str, str]:
        """Return one comparable string per component (lists and files as a hash)."""
        return {
            "python": self.python,
            "platform": self.platform,
            "packages": hash_bytes("\n".join(self.packages).encode()),
            "lockfile": hash_bytes(canonical_json(self.lockfiles)) if self.lockfiles else NONE,
            "image": self.image or NONE,
        }

    def doc(self) -> dict[str, Any]:
        """Return the full environment as a run record stores it."""
        return {"python": self.python, "platform": self.platform, "packages": list(self.packages),
                "lockfiles": self.lockfiles, "image": self.image}


def normalise(name: str) -> str:
    """Normalise a distribution name the PEP 503 way (`Foo_Bar.baz` -> `foo-bar-baz`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """List installed distributions as sorted `name==version`, read from metadata (no pip subprocess)."""
    found = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.add(f"{normalise(name)}=={dist.version}")
    return tuple(sorted(found))


def lockfiles(root: Path) -> dict[str, Oid]:
    """Hash the dependency lock files at the repo root (uv.lock, poetry.lock, requirements*.txt...)."""
    found: dict[str, Oid] = {}
    for pattern in LOCKFILE_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                found[path.name] = hash_file(path)[0]
    return found


def fingerprint(root: Path, image: str | None = None) -> Environment:
    """Fingerprint this process's environment, then apply the VTOOL_ENV_FINGERPRINT override if set."""
    env = Environment(
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=f"{sys.platform}-{platform.machine()}",
        packages=installed_packages(),
        lockfiles=lockfiles(root),
        image=image or os.environ.get(IMAGE_ENV) or None,
    )
    return _overridden(env, os.environ.get(OVERRIDE_ENV, ""))


def _overridden(env: Environment, text: str) -> Environment:
    if not text.strip():
        return env
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not set(doc) <= set(OVERRIDABLE):
        raise ConfigError(f"{OVERRIDE_ENV} must be a JSON object with keys among {', '.join(OVERRIDABLE)}",
                          'e.g. {"python": "CPython 3.12.3"}')
    if "packages" in doc:
        doc["packages"] = tuple(sorted(str(p) for p in doc["packages"]))
    return replace(env, **doc)
