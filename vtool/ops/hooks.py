"""`vtool install-hooks`: the hook scripts, and installing them beside (never over) a user's own hooks.

What each hook does lives with the command it resembles: post-checkout in switch.py, pre-push in
sync.py, pre-commit in status.py.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vtool.errors import WorkspaceError
from vtool.fsutil import atomic_write
from vtool.gitrepo import git_path
from vtool.ops.project import project_root

HOOK_NAMES = ("post-checkout", "pre-push", "pre-commit")
CHAIN_SUFFIX = ".pre-vtool"
MARKER = "# vtool-hook: "
HOOK_MODE = 0o755

INSTALLED, UPDATED, UNCHANGED, CHAINED = "installed", "updated", "unchanged", "chained"

# Every hook finds vtool through the interpreter that installed it, falling back to PATH,
# and runs the hook that was there before (moved to NAME.pre-vtool) first.
PREAMBLE = """\
#!/bin/sh
{marker}{name}
# Installed by `vtool install-hooks`, which rewrites this file: do not edit it.
# If another hook was here before, it was kept as {name}{chain} beside this file and runs first.
VTOOL_PYTHON={python}
run_vtool() {{
    if [ -x "$VTOOL_PYTHON" ]; then
        "$VTOOL_PYTHON" -m vtool "$@"
    elif command -v vtool >/dev/null 2>&1; then
        command vtool "$@"
    else
        echo "vtool hook: cannot find vtool ($VTOOL_PYTHON is gone and vtool is not on PATH)" >&2
        return 127
    fi
}}
previous="$(dirname "$0")/{name}{chain}"
"""

# post-checkout cannot undo a checkout: a failure to sync data is reported, never turned into an error.
POST_CHECKOUT = """\
status=0
if [ -x "$previous" ]; then
    "$previous" "$@" || status=$?
fi
if [ "$3" = 1 ] && [ "$1" != "$2" ]; then
    run_vtool git-hook post-checkout "$@" ||
        echo "vtool hook: the git checkout is done, but the data was not updated (see above);" \\
            "fix that, then run: vtool pull (or, with no remote, vtool checkout)" >&2
fi
exit "$status"
"""

# git writes the refs being pushed on stdin: read them once, hand the same lines to both hooks.
PRE_PUSH = """\
input=$(cat)
if [ -x "$previous" ]; then
    { [ -z "$input" ] || printf '%s\\n' "$input"; } | "$previous" "$@" || exit $?
fi
if [ -n "$input" ]; then
    printf '%s\\n' "$input" | run_vtool git-hook pre-push "$@" || exit $?
fi
exit 0
"""

# The diff-index test skips starting Python for the many commits that stage no pointer and no vtool.lock.
PRE_COMMIT = """\
if [ -x "$previous" ]; then
    "$previous" "$@" || exit $?
fi
if git diff-index --cached --quiet HEAD -- '*.vtool' vtool.lock 2>/dev/null; then
    exit 0
fi
run_vtool git-hook pre-commit
"""

BODIES = {"post-checkout": POST_CHECKOUT, "pre-push": PRE_PUSH, "pre-commit": PRE_COMMIT}


@dataclass(frozen=True)
class InstalledHook:
    """One hook file: what install did to it, and where a user's previous hook now lives."""

    name: str
    path: str
    action: str
    previous: str | None


@dataclass(frozen=True)
class InstallResult:
    """The hooks folder git uses and every hook vtool manages in it."""

    hooks_dir: str
    hooks: list[InstalledHook]


def hook_script(name: str, python: str) -> bytes:
    """Return the POSIX sh script of one hook, running vtool with the given interpreter."""
    head = PREAMBLE.format(marker=MARKER, name=name, chain=CHAIN_SUFFIX, python=shlex.quote(python))
    return (head + BODIES[name]).encode()


def install_hooks(start: Path | None = None) -> InstallResult:
    """Write vtool's hooks, updating ours in place and chaining any other hook found there."""
    root = project_root(start)
    folder = git_path(root, "hooks")
    folder.mkdir(parents=True, exist_ok=True)
    return InstallResult(str(folder), [_install_one(folder, n, hook_script(n, sys.executable)) for n in HOOK_NAMES])


def _install_one(folder: Path, name: str, script: bytes) -> InstalledHook:
    path, previous = folder / name, folder / (name + CHAIN_SUFFIX)
    current = _read_hook(path)
    if current == script:
        action = UNCHANGED
    elif current is None or _is_ours(current):
        action = INSTALLED if current is None else UPDATED
        atomic_write(path, script, HOOK_MODE)
    else:
        if os.path.lexists(previous):
            raise WorkspaceError(f"{path} is not vtool's hook, and {previous} is taken by an older one",
                                 "merge the two into one hook by hand, then run: vtool install-hooks")
        # A kill between the rename and the write leaves the user's hook safe under its new name.
        os.rename(path, previous)
        atomic_write(path, script, HOOK_MODE)
        action = CHAINED
    return InstalledHook(name, str(path), action, str(previous) if os.path.lexists(previous) else None)


def _read_hook(path: Path) -> bytes | None:
    if not os.path.lexists(path):
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""  # a dangling symlink: someone else's hook, to be chained like any other


def _is_ours(script: bytes) -> bool:
    return f"\n{MARKER}".encode() in script[:200]
