"""The VtoolError tree: each error's str() is the user's message, with the fix when there is one.

Errors are classified by behaviour, not by type (as git-lfs's IsFatalError/IsRetriableError and
restic's IsPermanentError do): `fatal` means every other object of a transfer would fail alike, so the
transfer stops at once instead of collecting one failure per object (transfer.py reads it);
`retriable` means running the same command again later may succeed (for callers of vtool.api, and
scripts deciding whether to retry).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class VtoolError(Exception):
    """Base of every error a user can cause or fix; the CLI prints it as one line."""

    exit_code = EXIT_FAILURE
    retriable = False
    fatal = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(VtoolError):
    """The command line itself is wrong."""

    exit_code = EXIT_USAGE


class NotARepoError(VtoolError):
    """Run outside a git repository or outside an initialised vtool project."""


class ConfigError(VtoolError):
    """A setting is unknown, malformed or missing."""


class FormatError(VtoolError):
    """A pointer, manifest or config file is malformed or hostile."""


class UnsafePathError(FormatError):
    """A path escapes the repository or points into .git/ or .vtool/."""


class SpecialFileError(UnsafePathError):
    """A path vtool must read as a regular file is a symlink, a FIFO, a socket or a device."""


class WorkspaceError(VtoolError):
    """The workspace holds something vtool refuses to track or overwrite."""


class WouldLoseDataError(WorkspaceError):
    """An operation would destroy data the cache does not hold."""

    def __init__(self, paths: list[str], action: str) -> None:
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        super().__init__(
            f"{action} would lose {len(paths)} file(s) not in the cache: {shown}",
            "add them first, or pass --force to discard them",
        )
        self.paths = paths


class StalePointerError(WorkspaceError):
    """A staged pointer names other data than the workspace holds (the pre-commit hook)."""

    def __init__(self, paths: list[str], pointers: list[str]) -> None:
        super().__init__(
            f"commit refused: the staged pointer of {', '.join(paths)} does not match the data in the workspace "
            "(changed after vtool add?)",
            f"run: vtool add {' '.join(paths)} && git add {' '.join(pointers)}; or, to keep the pointer and restore "
            f"its data: vtool checkout {' '.join(paths)}; or commit anyway with git commit --no-verify",
        )
        self.paths = paths


class PathNotTrackedError(VtoolError, FileNotFoundError):
    """The path is not tracked by vtool at that revision (also a FileNotFoundError, as open() users expect)."""


class CacheError(VtoolError):
    """An object is missing from or corrupt in the cache."""


class CorruptObjectError(CacheError):
    """An object's bytes do not hash to its name."""


class LockTimeoutError(VtoolError):
    """Another vtool process held the lock for too long."""

    retriable = True


class GitError(VtoolError):
    """git refused an operation or a revision does not exist."""


class RemoteError(VtoolError):
    """A remote failed as a whole (endpoint, bucket, credentials, format): every object would fail alike."""

    fatal = True


class RemoteUnreachableError(RemoteError):
    """The remote endpoint did not answer after bounded retries; it may later."""

    retriable = True


class RemoteAuthError(RemoteError):
    """The remote refused our credentials."""


class MissingObjectsError(VtoolError):
    """Objects needed for an operation are neither in the cache nor on the remote."""

    def __init__(self, oids: list[str], where: str, count: int | None = None) -> None:
        total = len(oids) if count is None else count  # a count given with the first few oids of a streamed walk
        shown = ", ".join(oids[:3]) + (f" and {total - 3} more" if total > 3 else "")
        super().__init__(f"{total} object(s) missing from {where}: {shown}")
        self.oids = oids


class RemoteObjectMissingError(RemoteError):
    """The remote does not hold an object we asked for: that object fails, the others may not."""

    fatal = False

    def __init__(self, oid: str, where: str) -> None:
        super().__init__(f"object {oid} is missing from remote {where}")
        self.oid = oid


class TransferError(VtoolError):
    """Some objects could not be moved; the others were."""

    def __init__(self, failed: dict[str, str], action: str, remote: str) -> None:
        first = next(iter(failed.items()))
        super().__init__(
            f"{action}: {len(failed)} object(s) failed on remote {remote!r}; first: {first[0]}: {first[1]}",
            "fix the cause and run the command again; objects already moved are kept",
        )
        self.failed = failed
