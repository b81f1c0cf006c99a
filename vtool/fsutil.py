"""Filesystem primitives with one policy: nothing appears under a final name until it is complete."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vtool.errors import SpecialFileError, UnsafePathError

TEMP_MARK = ".vtool-tmp-"
TEMP_RANDOM_BYTES = 6  # 12 hex characters: unique enough for temp names in one folder
TEMP_NAME_CHARS = 40
# A temp file this old belongs to a write that was killed (beside a pointer or config file, or in the cache
# while gc holds it exclusively); sweeps leave younger ones to a writer that may still be live.
STALE_TEMP_S = 60
FICLONE = 0x40049409
KERNEL_COPY_CHUNK = 1 << 30  # per copy_file_range call; the kernel may copy less, the loop goes on
# copy_file_range refusals that mean "not here" (another filesystem, an old kernel, a special file system).
KERNEL_COPY_UNSUPPORTED = frozenset((errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF))
AT_FDCWD = -100
RENAME_EXCHANGE = 2
HEX_DIGITS = frozenset("0123456789abcdef")  # not string.hexdigits: importing string is 1 ms of start-up
READ_ONLY = 0o444
READ_ONLY_EXEC = 0o555
MODE_FILE = 0o644
MODE_EXEC = 0o755
EXEC_BITS = 0o111
# Never follow a symlink, never wait for a FIFO's writer: the file is checked once it is open.
READ_REGULAR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def is_hex(text: str) -> bool:
    """Tell whether text is non-empty lowercase hex."""
    return bool(text) and all(c in HEX_DIGITS for c in text)


def temp_path_for(dest: Path) -> Path:
    """Name a temp file in dest's folder, so the final rename never crosses filesystems."""
    return dest.with_name(f"{TEMP_MARK}{os.urandom(TEMP_RANDOM_BYTES).hex()}-{dest.name[:TEMP_NAME_CHARS]}")


def is_temp_name(name: str) -> bool:
    """Tell whether a file name is one of our temp files."""
    return name.startswith(TEMP_MARK)


@dataclass
class Staged:
    """A temp file on its way to dest; dest may be re-aimed, or set to None to drop the file, before the end."""

    tmp: Path
    dest: Path | None
    # Swap the temp file with the old dest (renameat2 RENAME_EXCHANGE), then unlink the old one: as atomic
    # as a rename, but ext4 (auto_da_alloc) flushes a file renamed over another to disk, ~0.3-1 s per 512 MiB.
    swap: bool = False


@contextlib.contextmanager
def staged(dest: Path) -> Iterator[Staged]:
    """The one temp-then-rename: yield a temp path beside dest, renamed over it at the end, gone on any exception."""
    stage = Staged(temp_path_for(dest), dest)
    try:
        yield stage
        swapped = stage.dest is not None and stage.swap and exchange(stage.tmp, stage.dest)
        if stage.dest is not None and not swapped:
            os.replace(stage.tmp, stage.dest)
            return
    except BaseException:
        remove_file(stage.tmp)
        raise
    remove_file(stage.tmp)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system or filesystem cannot, or b is absent."""
    import ctypes  # here, not at the top: only a checkout of a big file pays for it

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # a C library without renameat2
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


class Pending:
    """A temp file being written, and the final name it gets when the block ends (set by the writer)."""

    def __init__(self, handle: IO[bytes], dest: Path | None) -> None:
        self.handle = handle
        self.dest = dest


@contextlib.contextmanager
def renaming_writer(folder: Path, hint: str, mode: int = MODE_FILE, durable: bool = False) -> Iterator[Pending]:
    """Yield a temp file in folder that is renamed to `pending.dest` on success and vanishes on any exception.

    The final name may be chosen while writing (a pack is named by the hash of its bytes).
    """
    with staged(folder / hint) as stage:
        fd = os.open(stage.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            pending = Pending(handle, None)
            yield pending
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if pending.dest is None:
            raise AssertionError("renaming_writer: the block never named its file")
        os.chmod(stage.tmp, mode)
        stage.dest = pending.dest
    if durable:
        fsync_path(pending.dest.parent)


@contextlib.contextmanager
def atomic_writer(dest: Path, mode: int = MODE_FILE, durable: bool = False) -> Iterator[IO[bytes]]:
    """Yield a temp file that replaces `dest` on success and vanishes on any exception."""
    with renaming_writer(dest.parent, dest.name, mode, durable) as pending:
        pending.dest = dest
        yield pending.handle


def atomic_write(dest: Path, data: bytes, mode: int = MODE_FILE, durable: bool = True) -> None:
    """Write small metadata (pointers, config) durably: temp, fsync, rename, fsync folder."""
    remove_stale_temps(dest)
    with atomic_writer(dest, mode, durable) as handle:
        handle.write(data)


def remove_stale_temps(dest: Path) -> None:
    """Delete temp files a killed write of dest left beside it, so they never show up in `git status`."""
    for path in stale_temp_files(dest.parent, f"-{dest.name[:TEMP_NAME_CHARS]}"):
        remove_file(path)


def stale_temp_files(folder: Path, suffix: str = "", scratch: bool = False) -> list[Path]:
    """List our temp files in folder (ending in suffix) older than STALE_TEMP_S: no live writer owns them.

    With scratch every file in folder counts as a temp file (a folder that holds nothing else).
    """
    cutoff = time.time() - STALE_TEMP_S
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            ours = scratch or (is_temp_name(entry.name) and entry.name.endswith(suffix))
            if ours and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        found.append(Path(entry.path))
    return found


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush one file's bytes, or a folder's new names (making a rename inside it durable), to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush everything written so far on path's filesystem in one call, like git's fsyncMethod=batch."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if hasattr(os, "syncfs"):
            os.syncfs(fd)  # type: ignore[attr-defined]
        else:
            os.sync()
    finally:
        os.close(fd)


def kernel_copy_rest(src: IO[bytes], dest: IO[bytes]) -> bool:
    """Copy src from its position to its end onto dest's position inside the kernel (no bytes through Python,
    a clone where the filesystem shares blocks); False, with nothing copied, where the kernel cannot."""
    copied = 0
    try:
        while n := os.copy_file_range(src.fileno(), dest.fileno(), KERNEL_COPY_CHUNK):
            copied += n
    except OSError as exc:
        if copied or exc.errno not in KERNEL_COPY_UNSUPPORTED:
            raise
        return False
    return True


def try_reflink(src: Path, dest: Path) -> bool:
    """Clone src into the new file dest sharing blocks (btrfs, xfs); False where unsupported."""
    with open(src, "rb") as fin:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE_FILE)
        try:
            fcntl.ioctl(fd, FICLONE, fin.fileno())
        except OSError as exc:
            os.close(fd)
            os.unlink(dest)
            if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS):
                return False
            raise
        os.close(fd)
    return True


def atomic_copy(src: Path, dest: Path, mode: int = MODE_FILE) -> None:
    """Copy src to dest through a temp file (kernel copy where possible)."""
    with staged(dest) as stage:
        kernel_copy(src, stage.tmp, mode)


def kernel_copy(src: Path, dest: Path, mode: int = MODE_FILE) -> None:
    """Copy src into the new file dest inside the kernel where it can (kernel_copy_rest), else through Python."""
    with open(src, "rb", buffering=0) as fin, open(dest, "xb", buffering=0) as out:
        if not kernel_copy_rest(fin, out):
            shutil.copyfileobj(fin, out)
    os.chmod(dest, mode)


def open_regular(path: str | os.PathLike[str], shown: str) -> IO[bytes]:
    """Open a file for reading only if it is a regular file: not through a symlink, not a FIFO, socket or device.

    O_NONBLOCK makes the open of a FIFO return at once (a plain open waits forever for a writer);
    fstat then judges the very file that was opened, so a swap after the check changes nothing.
    """
    try:
        fd = os.open(path, READ_REGULAR_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpecialFileError(f"{shown} is a symlink; refusing to follow it") from None
        if exc.errno == errno.ENXIO:  # a socket (or a device without its driver) cannot be opened at all
            raise SpecialFileError(f"{shown} is not a regular file (it is {file_kind(os.lstat(path).st_mode)})") \
                from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SpecialFileError(f"{shown} is not a regular file (it is {file_kind(mode)})")
    handle = os.fdopen(fd, "rb", buffering=0)  # unbuffered: hash loops read straight into their own buffer
    handle.name = os.fspath(path)  # not the descriptor's number: callers name and order files by it
    return handle


def file_kind(mode: int) -> str:
    """Name what a non-regular file is, for messages."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symlink"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def remove_file(path: Path) -> None:
    """Unlink a file, even a read-only one; absent is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def make_dirs_inside(root: Path, folder: Path) -> None:
    """Create folder and its parents, refusing any existing component that is a symlink or not a folder."""
    rel = folder.relative_to(root)
    current = root
    for part in rel.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(f"refusing to write through symlinked folder {current}")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"{current} is a file where a folder is needed")


def check_real_folder(root: Path, path: Path) -> None:
    """Refuse a path below root whose folders include a symlink: containment is judged on real paths."""
    real_root = os.path.realpath(root)
    rel = os.path.relpath(path.parent, root)
    expected = real_root if rel == "." else os.path.join(real_root, rel)
    if os.path.realpath(path.parent) != expected:
        shown = os.path.relpath(path, root)
        raise UnsafePathError(f"{shown}: a folder on its path is a symlink; refusing to follow it",
                              "replace the symlink with a real folder")


def check_inside(root: Path, path: Path) -> None:
    """Refuse a path whose real location is outside root (symlinked parents included)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise UnsafePathError(f"{path} resolves outside the repository")
