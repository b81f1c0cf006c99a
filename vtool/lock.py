"""An advisory lock per repo and per shared cache; the kernel drops it when its holder dies, so none goes stale."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vtool.errors import LockTimeoutError, UnsafePathError

LOCK_TIMEOUT_S = 300.0
POLL_INTERVAL_S = 0.1
LOCK_FILE_MODE = 0o644
HOLDER = re.compile(r"pid (?P<pid>[0-9]+) on (?P<host>.+)")
SOMEONE = "another vtool process"
NOTE_MAX = 256


def _holder(path: Path) -> str:
    """Name the exclusive holder from its note; a dead one's note (left by kill -9) names nobody."""
    try:
        text = path.read_text().strip()
    except OSError:
        return SOMEONE
    match = HOLDER.fullmatch(text)
    if match is None:
        return SOMEONE
    if match["host"] == _host() and not _alive(int(match["pid"])):
        return SOMEONE  # the lock is held, but shared, by processes that leave no note
    return text


def _host() -> str:
    """Return this machine's name (socket.gethostname() without importing socket on every command's path)."""
    return os.uname().nodename


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, but another user's
    return True


@contextlib.contextmanager
def locked(
    path: Path,
    shared: bool = False,
    timeout: float = LOCK_TIMEOUT_S,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold `path` locked (shared for readers of a cache, exclusive for writers), waiting up to timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open(path)
    try:
        _acquire(fd, path, shared, timeout, on_wait)
        if not shared:
            _write_note(fd)
        yield
    finally:
        os.close(fd)


def _write_note(fd: int) -> None:
    """Say who holds the lock, for whoever waits; only a courtesy, so a full disk does not fail the command.

    The note overwrites the last one in place, padded with spaces to its length (readers strip them): an
    ftruncate is a journalled metadata change that, on a busy ext4 disk, waited up to 1.7 s in `vtool status`.
    """
    note = f"pid {os.getpid()} on {_host()}\n".encode()
    with contextlib.suppress(OSError):
        os.pwrite(fd, note.ljust(os.fstat(fd).st_size, b" "), 0)


def _open(path: Path) -> int:
    """Open or create the lock file, never through a symlink, and never one holding anything but our note."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, LOCK_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # e.g. a committed `.vtool/lock -> ~/somefile` that we would truncate
            raise UnsafePathError(f"{path} is a symlink; refusing to follow it", "delete it; vtool recreates it") \
                from None
        raise
    st = os.fstat(fd)
    note = os.pread(fd, NOTE_MAX, 0).decode(errors="replace").strip() if stat.S_ISREG(st.st_mode) else "?"
    if note and HOLDER.fullmatch(note) is None:
        os.close(fd)
        raise UnsafePathError(f"{path} is not a vtool lock file; refusing to overwrite it",
                              "move it away, or point cache.dir at a folder of its own")
    return fd


def _acquire(fd: int, path: Path, shared: bool, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"{path} is locked by {_holder(path)}",
                    f"gave up after {timeout:g} s; wait for it to finish and retry",
                ) from None
            if not told and on_wait is not None:
                on_wait(f"waiting for {_holder(path)} to release {path}")
                told = True
            time.sleep(POLL_INTERVAL_S)
