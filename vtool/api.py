"""Read tracked data at any revision from Python, without a checkout: for notebooks and training scripts.

    from vtool import api
    with api.open("data/train/part-0.csv", rev="v1.0", mode="r") as f:
        header = f.readline()

Bytes come from the cache or, when it lacks them, from the default remote: only the manifests on the
path and the one file are fetched, each hash-verified. Every object is verified again before its bytes
are handed out, so corrupt data raises CorruptObjectError instead of reaching the caller.

This module is a thin front door over vtool.ops.read, as the CLI is over the other ops.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO

from vtool.errors import PathNotTrackedError
from vtool.ops.read import open_tracked

__all__ = ["PathNotTrackedError", "open", "read_bytes"]

BINARY_MODES = ("rb", "br")
TEXT_MODES = ("r", "rt", "tr")
PathLike = str | os.PathLike[str]


def open(path: PathLike, rev: str | None = None, repo: PathLike = ".", mode: str = "rb",
         *, encoding: str = "utf-8", errors: str | None = None) -> IO[bytes] | IO[str]:
    """Open a tracked file as it is at rev (default: the pointers in the work tree), read-only and verified."""
    if mode not in BINARY_MODES + TEXT_MODES:
        raise ValueError(f"vtool.api.open: unsupported mode {mode!r}; tracked data is read-only, use 'rb' or 'r'")
    handle = open_tracked(Path(path), rev, Path(repo))
    if mode in TEXT_MODES:
        return io.TextIOWrapper(handle, encoding=encoding, errors=errors)
    return handle


def read_bytes(path: PathLike, rev: str | None = None, repo: PathLike = ".") -> bytes:
    """Return a tracked file's bytes as they are at rev (default: the work tree's pointers), verified."""
    with open_tracked(Path(path), rev, Path(repo)) as handle:
        return handle.read()
