"""`vtool install-hooks` and the work its git hooks do: sync on checkout, push on push, refuse stale pointers."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vtool import pointer as ptr
from vtool.config import VTOOL_DIR
from vtool.errors import ConfigError, NotARepoError, TransferError, WorkspaceError
from vtool.fsutil import atomic_write
from vtool.gitrepo import CALLER_ENV, pointers_at, run_git, run_git_bytes
from vtool.hashing import hash_file
from vtool.ops.checkout import CheckedOut, Plan, apply_plans, plan, plan_removal
from vtool.ops.objects import gather, workspace_pointers
from vtool.ops.project import Dataset, Project, open_project, project_root
from vtool.ops.sync import connected, ensure_local, push_tracked
from vtool.pointer import POINTER_SUFFIX
from vtool.progress import NULL_PROGRESS, Progress
from vtool.workspace import scan

HOOK_NAMES = ("post-checkout", "pre-push", "pre-commit")
CHAIN_SUFFIX = ".pre-vtool"
MARKER = "# vtool-hook: "
HOOK_MODE = 0o755
POINTER_GLOB = f"*{POINTER_SUFFIX}"
BRANCH_CHECKOUT = "1"
REGULAR_MODES = ("100644", "100755")

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

# The diff-index test skips starting Python for the many commits that stage no pointer.
PRE_COMMIT = """\
if [ -x "$previous" ]; then
    "$previous" "$@" || exit $?
fi
if git diff-index --cached --quiet HEAD -- '*.vtool' 2>/dev/null; then
    exit 0
fi
run_vtool git-hook pre-commit
"""

BODIES = {"post-checkout": POST_CHECKOUT, "pre-push": PRE_PUSH, "pre-commit": PRE_COMMIT}


class StalePointerError(WorkspaceError):
    """A staged pointer names other data than the workspace holds."""

    def __init__(self, paths: list[str]) -> None:
        pointers = " ".join(p + POINTER_SUFFIX for p in paths)
        super().__init__(
            f"commit refused: the staged pointer of {', '.join(paths)} does not match the data in the workspace "
            "(changed after vtool add?)",
            f"run: vtool add {' '.join(paths)} && git add {pointers}; or, to keep the pointer and restore its "
            f"data: vtool checkout {' '.join(paths)}; or commit anyway with git commit --no-verify",
        )
        self.paths = paths


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


@dataclass(frozen=True)
class PostCheckoutResult:
    """What the post-checkout hook did: nothing (and why), or the datasets it updated."""

    skipped: str | None = None
    fetched: int = 0
    fetched_bytes: int = 0
    datasets: list[CheckedOut] = field(default_factory=list)


@dataclass(frozen=True)
class PrePushResult:
    """The commits whose data the pre-push hook pushed, and what it moved."""

    commits: int = 0
    remote: str | None = None
    transferred: int = 0
    present: int = 0
    nbytes: int = 0


@dataclass(frozen=True)
class PreCommitResult:
    """The staged pointers the pre-commit hook compared with the workspace."""

    checked: list[str] = field(default_factory=list)


def hooks_dir(root: Path) -> Path:
    """Ask git where hooks live, so core.hooksPath and linked worktrees are honoured."""
    return root / run_git(root, "rev-parse", "--git-path", "hooks").strip()


def hook_script(name: str, python: str) -> bytes:
    """Return the POSIX sh script of one hook, running vtool with the given interpreter."""
    head = PREAMBLE.format(marker=MARKER, name=name, chain=CHAIN_SUFFIX, python=shlex.quote(python))
    return (head + BODIES[name]).encode()


def install_hooks(start: Path | None = None) -> InstallResult:
    """Write vtool's hooks, updating ours in place and chaining any other hook found there."""
    root = project_root(start)
    folder = hooks_dir(root)
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


def _vtool_root() -> Path | None:
    """Return the project root, or None where vtool is not set up (hooks then do nothing)."""
    try:
        return project_root()
    except NotARepoError:
        return None


def post_checkout(prev: str, new: str, flag: str, progress: Progress = NULL_PROGRESS) -> PostCheckoutResult:
    """After git checks out a branch or commit, give the workspace that commit's data, fetching only what is missing."""
    if os.environ.get(CALLER_ENV):
        return PostCheckoutResult("vtool runs this git checkout and syncs the data itself")
    if flag != BRANCH_CHECKOUT:
        return PostCheckoutResult("file checkout")
    if prev == new:
        return PostCheckoutResult("HEAD did not move")
    root = _vtool_root()
    if root is None:
        return PostCheckoutResult("not a vtool project")
    # A rebase checks out many commits in turn; syncing data for each would be wasted work.
    states = run_git(root, "rev-parse", "--git-path", "rebase-merge", "--git-path", "rebase-apply").split("\n")
    if any(s and (root / s).is_dir() for s in states):
        return PostCheckoutResult("rebase in progress")
    with open_project(progress, start=root) as project:
        tracked = workspace_pointers(project, [])
        fetched = ensure_local(project, tracked)
        plans = [plan(project, t.ds, t.pointer) for t in tracked]
        plans += _removals(project, prev, {t.ds.pointer_rel for t in tracked})
        done = apply_plans(project, plans, False, False)
        return PostCheckoutResult(None, fetched.transferred if fetched else 0, fetched.nbytes if fetched else 0, done)


def _removals(project: Project, prev: str, kept: set[str]) -> list[Plan]:
    """Plan removing the data of datasets the previous commit tracked and the new one does not."""
    if not prev.strip("0"):
        return []  # a clone or a new worktree: there was no previous commit
    out = []
    for path, data in pointers_at(project.root, prev):
        ds = Dataset(path, path[: -len(POINTER_SUFFIX)])
        if path not in kept and ds.data_rel.split("/", 1)[0] != VTOOL_DIR \
                and os.path.lexists(project.root / ds.data_rel):
            out.append(plan_removal(project, ds, ptr.loads(data, path.rsplit("/", 1)[-1])))
    return out


def parse_push_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Turn pre-push stdin into (local sha, remote sha) pairs, dropping ref deletions."""
    pairs = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        local, remote = parts[1], parts[3]
        if local.strip("0"):
            pairs.append((local, remote))
    return pairs


def commits_to_push(root: Path, git_remote: str, pairs: list[tuple[str, str]]) -> list[str]:
    """List the pushed tips plus every commit new to the remote that changes a pointer."""
    tips = list(dict.fromkeys(local for local, _ in pairs))
    if not tips:
        return []
    known = [remote for _, remote in pairs if remote.strip("0")]
    out = run_git(root, "rev-list", "--ignore-missing", *tips, "--not", *known, f"--remotes={git_remote}",
                  "--", POINTER_GLOB, globs=True)
    return list(dict.fromkeys([*tips, *out.split()]))


def pre_push(git_remote: str, lines: list[str], progress: Progress = NULL_PROGRESS) -> PrePushResult:
    """Push to the default vtool remote the data of the commits a git push sends; any failure fails the push."""
    root = _vtool_root()
    revs = commits_to_push(root, git_remote, parse_push_lines(lines)) if root else []
    if not revs:
        return PrePushResult()
    with open_project(progress, start=root) as project:
        tracked = gather(project, [], revs, workspace=False)
        if not tracked:
            return PrePushResult(len(revs))
        if not project.config.remotes:
            raise ConfigError("the pushed commits track data, but no vtool remote is configured to push it to",
                              "add one with: vtool remote add NAME URL --default, or skip with git push --no-verify")
        with connected(project, None, None) as (remote, jobs):
            result = push_tracked(project, remote, jobs, tracked)
        if result.failed:
            error = TransferError(result.failed, "pushing the data of the pushed commits", remote.name)
            error.hint = "fix the cause and push again, or skip the data with: git push --no-verify"
            raise error
        return PrePushResult(len(revs), remote.name, result.transferred, result.present, result.nbytes)


def staged_pointers(root: Path) -> list[tuple[str, str]]:
    """List (path, blob sha) of pointer files this commit adds or changes, as staged in the index."""
    head = run_git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip()
    base = head or run_git(root, "hash-object", "-t", "tree", os.devnull).strip()
    out = run_git(root, "diff-index", "--cached", "-z", "--no-renames", "--diff-filter=ACMR", base, "--",
                  POINTER_GLOB, globs=True)
    fields = out.split("\0")
    found = []
    for info, path in zip(fields[0::2], fields[1::2], strict=False):  # output ends with a NUL
        parts = info.split()
        if len(parts) == 5 and parts[1] in REGULAR_MODES and path.split("/", 1)[0] != VTOOL_DIR:
            found.append((path, parts[3]))
    return found


def pre_commit(progress: Progress = NULL_PROGRESS) -> PreCommitResult:
    """Refuse a commit whose staged pointers name other data than the workspace holds."""
    root = _vtool_root()
    staged = staged_pointers(root) if root else []
    if not staged:
        return PreCommitResult()
    stale = []
    with open_project(progress, start=root) as project:
        for path, blob in staged:
            ds = Dataset(path, path[: -len(POINTER_SUFFIX)])
            data = run_git_bytes(root, "cat-file", "blob", blob)
            pointer = ptr.loads(data, path.rsplit("/", 1)[-1])
            if not os.path.lexists(project.root / ds.data_rel):
                continue  # nothing in the workspace contradicts the pointer
            tree = scan(project.root, ds.data_rel, project.stats, hash_file, project.config.jobs, progress,
                        project.config.cache_dir)
            if (tree.kind, tree.oid) != (pointer.kind, pointer.oid):
                stale.append(ds.data_rel)
    if stale:
        raise StalePointerError(stale)
    return PreCommitResult([p for p, _ in staged])
