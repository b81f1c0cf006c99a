"""The pointer file `<path>.vtool`: a Pointer dataclass, its canonical bytes and a strict loader."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vtool import flatyaml
from vtool.errors import FormatError, UnsafePathError
from vtool.hashing import Oid, parse_oid

POINTER_SUFFIX = ".vtool"
POINTER_VERSION = 1
MAX_POINTER_BYTES = 64 * 1024
KNOWN_KEYS = ("version", "type", "path", "oid", "size", "executable", "files", "meta")
EXTRA_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
RESERVED_NAMES = frozenset({".git", ".vtool"})


class Kind(StrEnum):
    """What a dataset is: a single file or a folder (the pointer's `type`, the same word in JSON output)."""

    FILE = "file"
    DIR = "dir"


@dataclass(frozen=True)
class Version:
    """One version of a dataset: its kind, root oid, total size and file count (a pointer, or a scanned tree)."""

    kind: Kind
    oid: Oid
    size: int
    files: int


@dataclass(frozen=True)
class Pointer:
    """What a pointer file says: the tracked name beside it, its kind, root oid, size and file count."""

    path: str
    kind: Kind
    oid: Oid
    size: int
    files: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    executable: bool = False  # a file dataset's exec bit (a folder's are in its manifests)

    @property
    def version(self) -> Version:
        """Return the version of the data this pointer names."""
        return Version(self.kind, self.oid, self.size, self.files)

    def same_data(self, other: Pointer | None) -> bool:
        """Tell whether two pointers name the same content, ignoring notes."""
        return other is not None and (self.kind, self.oid) == (other.kind, other.oid)


def check_component(name: str, where: str) -> None:
    """Refuse a path component that could escape its folder or hit .git/.vtool."""
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where}: empty name")
    if name.startswith("/"):
        raise UnsafePathError(f"{where}: absolute path {name!r} is not allowed")
    if re.match(r"^[A-Za-z]:", name):
        raise UnsafePathError(f"{where}: name {name!r} is refused: Windows reads it as a drive", "rename it")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UnsafePathError(f"{where}: path {name!r} must be a single name inside its folder (no '/', '..')")
    if name.lower() in RESERVED_NAMES:
        raise UnsafePathError(f"{where}: {name!r} is reserved")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise FormatError(f"{where}: name {name!r} contains control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the filesystem arrive as lone surrogates
        raise FormatError(f"{where}: name {name!r} is not valid UTF-8", "rename it") from None


def dumps(pointer: Pointer) -> bytes:
    """Encode a pointer canonically: fixed key order, then extra keys sorted, then meta."""
    doc: dict[str, Any] = {
        "version": POINTER_VERSION,
        "type": str(pointer.kind),
        "path": pointer.path,
        "oid": pointer.oid,
        "size": pointer.size,
    }
    if pointer.kind == Kind.FILE and pointer.executable:
        doc["executable"] = True
    if pointer.kind == Kind.DIR:
        doc["files"] = pointer.files
    for key in sorted(pointer.extra):
        doc[key] = pointer.extra[key]
    if pointer.meta:
        doc["meta"] = pointer.meta
    text = flatyaml.dump(doc)
    if text is None:  # a path or meta outside the flat subset: only then is PyYAML imported
        import yaml

        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1 << 16)
    return text.encode("utf-8")


def loads(data: bytes, pointer_name: str) -> Pointer:
    """Decode and validate a pointer; pointer_name is the file's own name, which must be `<path>.vtool`."""
    where = pointer_name
    if len(data) > MAX_POINTER_BYTES:
        raise FormatError(f"{where}: pointer is {len(data)} bytes, over the {MAX_POINTER_BYTES} byte limit")
    try:
        doc = flatyaml.read(data.decode("utf-8"))
    except (UnicodeDecodeError, flatyaml.YamlError) as exc:
        raise FormatError(f"{where}: not a valid pointer file ({flatyaml.describe(exc)})") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{where}: not a valid pointer file (expected a YAML mapping)")
    version = doc.get("version")
    if type(version) is not int or version != POINTER_VERSION:  # not 1.0, True or "1"
        raise FormatError(
            f"{where}: unsupported pointer version {version!r}",
            f"this vtool reads version {POINTER_VERSION}; upgrade vtool" if type(version) is int else None,
        )
    return _validated(doc, where, pointer_name)


def _validated(doc: dict[Any, Any], where: str, pointer_name: str) -> Pointer:
    kind = doc.get("type")
    if not isinstance(kind, str) or kind not in tuple(Kind):
        raise FormatError(f"{where}: type must be 'file' or 'dir', not {kind!r}")
    path = doc.get("path")
    check_component(path, where)
    if pointer_name != path + POINTER_SUFFIX:
        raise UnsafePathError(f"{where}: path {path!r} does not match the pointer's own name")
    oid = parse_oid(doc.get("oid"), where)
    size = _count(doc.get("size"), where, "size")
    files = _count(doc.get("files"), where, "files") if kind == Kind.DIR else 1
    executable = doc.get("executable", False)
    if type(executable) is not bool or (executable and kind != Kind.FILE):
        raise FormatError(f"{where}: executable must be true or false, and only for type file, not {executable!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise FormatError(f"{where}: meta must be a mapping")
    extra = {k: v for k, v in doc.items() if k not in KNOWN_KEYS}
    for key in extra:
        if not isinstance(key, str) or not EXTRA_KEY.match(key):
            raise FormatError(f"{where}: invalid key {str(key)[:40]!r}")
    return Pointer(path=path, kind=Kind(kind), oid=oid, size=size, files=files, meta=meta, extra=extra,
                   executable=executable)


def _count(value: object, where: str, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"{where}: {name} must be a non-negative integer, not {value!r}")
    return value
