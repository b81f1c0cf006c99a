"""Every credential vtool can see, and the one function that removes them (and URL passwords) from any text.

Sources: the AWS variables of the environment (and any variable named like a secret), the keys of the
shared AWS credentials and config files (every profile), and keys vtool read from its own config
(`register`). Applied at the error boundary and to everything the CLI prints, and in the S3 error
mapping, so a server that echoes a request header or a URL with `user:password@` never shows them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable

MASK = "***"
# Values of the well-known AWS variables are masked from this length on; shorter ones would mask
# ordinary words everywhere ("abc") while protecting nothing.
MIN_SECRET_CHARS = 4
# Variables that only look like secrets by name ("SOME_TOKEN=1") need a longer value.
MIN_GUESSED_CHARS = 8
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|API_KEY", re.IGNORECASE)
PROFILE_FILES = (("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), ("AWS_CONFIG_FILE", "~/.aws/config"))
MAX_PROFILE_BYTES = 1024 * 1024
# `scheme://user:password@host`: everything between `//` and the last `@` of the authority.
USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@]*@")

_registered: set[str] = set()
_snapshot: tuple[str, ...] | None = None
_masked: tuple[str, ...] | None = None  # snapshot and registered values, longest first
_lock = threading.Lock()


def register(*secrets: str | None) -> None:
    """Add values vtool itself read (keys in config.local.yaml) to what is masked."""
    global _masked
    with _lock:
        _registered.update(s for s in secrets if s and len(s) >= MIN_SECRET_CHARS)
        _masked = None


def refresh() -> None:
    """Re-read the environment and the AWS profile files (once per command; they may change in between)."""
    global _snapshot, _masked
    found = set(_from_environment())
    for variable, default in PROFILE_FILES:
        found.update(_from_profile_file(os.path.expanduser(os.environ.get(variable) or default)))
    with _lock:
        _snapshot = tuple(found)
        _masked = None


def _from_environment() -> Iterable[str]:
    for name, value in os.environ.items():
        least = MIN_SECRET_CHARS if name in CREDENTIAL_VARS else MIN_GUESSED_CHARS if SECRET_NAME.search(name) else 0
        if least and len(value) >= least:
            yield value


def _from_profile_file(path: str) -> Iterable[str]:
    """Yield the secret-looking values of every profile in an AWS ini file; an unreadable file has none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(MAX_PROFILE_BYTES)
    except OSError:
        return []
    import configparser  # only when such a file exists: startup time is part of every command

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    return [value.strip() for section in parser.sections() for key, value in parser.items(section)
            if SECRET_NAME.search(key) and len(value.strip()) >= MIN_SECRET_CHARS]


def secrets() -> tuple[str, ...]:
    """Return every value currently masked, longest first (so a key never leaves a masked key's tail)."""
    global _masked
    if _snapshot is None:
        refresh()
    with _lock:
        if _masked is None:
            _masked = tuple(sorted({*(_snapshot or ()), *_registered}, key=len, reverse=True))
        return _masked


def without_userinfo(text: str) -> str:
    """Mask the `user:password@` part of every URL in text."""
    return USERINFO.sub(rf"\g<scheme>{MASK}@", text) if "@" in text else text


def scrub(text: str) -> str:
    """Return text with every known credential and every URL's userinfo masked."""
    text = without_userinfo(text)
    for secret in secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text
