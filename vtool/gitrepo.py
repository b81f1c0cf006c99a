"""Everything vtool asks of git: the repo root, tracked files, ignore rules, and pointers at any revision."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vtool.errors import GitError, NotARepoError
from vtool.fsutil import atomic_write, is_hex, is_temp_name
from vtool.pointer import POINTER_SUFFIX

POINTER_GLOB = f"*{POINTER_SUFFIX}"
REGULAR_MODES = ("100644", "100755")
LOG_FORMAT = "%H%x1f%aI%x1f%an%x1f%s%x1e"

GITIGNORE = ".gitignore"
MAX_REASON = 400
# Set on every git vtool runs, so vtool's own git hooks (vtool install-hooks) step aside instead of
# waiting for the lock the calling vtool holds, e.g. around `git checkout` in `vtool checkout REV`.
CALLER_ENV = "VTOOL_GIT_CALLER"
GITDIR_PREFIX = "gitdir:"
OBJECT_NAME_LENGTHS = (40, 64)  # hex digits of a SHA-1 and a SHA-256 object name


def find_root(start: Path) -> Path:
    """Return the top of the git work tree containing start, without spawning git."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    raise NotARepoError(f"not a git repository: {start}", "run: git init")


def linked_common_dir(root: Path) -> Path | None:
    """Return the repository's shared git dir when root is a linked worktree (`git worktree add`), else None.

    Read from the `.git` file and the `commondir` file git writes, without spawning git (every command calls it).
    """
    try:
        text = (root / ".git").read_text(errors="surrogateescape")
    except (IsADirectoryError, FileNotFoundError, NotADirectoryError):
        return None
    if not text.startswith(GITDIR_PREFIX):
        return None
    gitdir = root / text[len(GITDIR_PREFIX):].strip()
    try:
        common = (gitdir / "commondir").read_text(errors="surrogateescape").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None  # a submodule's git dir, not a worktree's
    return Path(os.path.realpath(gitdir / common))


def worktrees(root: Path) -> list[tuple[Path, str | None]]:
    """List every other work tree of root's repository that still exists, with the commit its HEAD names."""
    out = run_git(root, "worktree", "list", "--porcelain", "-z")
    found: list[tuple[Path, str | None]] = []
    here = os.path.realpath(root)
    for record in out.split("\0\0"):
        fields = dict((f.split(" ", 1) + [""])[:2] for f in record.split("\0") if f)
        path = fields.get("worktree")
        if not path or "bare" in fields or os.path.realpath(path) == here or not os.path.isdir(path):
            continue
        head = fields.get("HEAD", "").strip("0") and fields["HEAD"]  # all zeros: no commit yet
        found.append((Path(path), head or None))
    return found


def run_git(root: Path, *args: str, check: bool = True, globs: bool = False, stdin: str | None = None) -> str:
    """Run a git command in root and return its stdout; failures become GitError with git's own words.

    Pathspecs are literal unless globs is set, so a user's `d[1]` names that file and nothing else;
    output that is not UTF-8 (file names from any system) never crashes the decoding.
    """
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, errors="surrogateescape",
                          check=False, env=_git_env(globs), input=stdin)
    if check and proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {_reason(proc.stderr, proc.returncode)}")
    return proc.stdout


def _git_env(globs: bool) -> dict[str, str]:
    return {**os.environ, CALLER_ENV: "1", "GIT_LITERAL_PATHSPECS": "0" if globs else "1"}


def _reason(stderr: str, code: int) -> str:
    """Fold git's own explanation onto one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and line.strip() != "Aborting"]
    text = "; ".join(lines) or f"exit {code}"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."


def run_git_bytes(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run a git command and return its raw stdout (blob contents)."""
    proc = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, check=False,
                          env=_git_env(False))
    if proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {_reason(proc.stderr.decode(errors='replace'), proc.returncode)}")
    return proc.stdout


def is_pointer_path(path: str) -> bool:
    """Tell whether a repo path names a pointer, not the temp file a kill can leave while one is written."""
    return path.endswith(POINTER_SUFFIX) and not is_temp_name(path.rsplit("/", 1)[-1])


def list_pointer_files(root: Path) -> list[str]:
    """List repo-relative paths of every pointer file in the work tree, tracked or new, honouring .gitignore."""
    out = run_git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", POINTER_GLOB,
                  globs=True)
    found = {p for p in out.split("\0") if is_pointer_path(p)}
    return sorted(p for p in found if (root / p).is_file())


def is_tracked(root: Path, relpath: str) -> bool:
    """Tell whether git tracks the path itself or anything below it."""
    return bool(run_git(root, "ls-files", "-z", "--", relpath).strip("\0"))


def ignore_rules(root: Path, paths: list[str]) -> dict[str, tuple[str, int, str]]:
    """Map each untracked path git ignores to the rule doing it: (ignore file, line number, pattern)."""
    if not paths:
        return {}
    # check-ignore takes paths, not pathspecs, and refuses the literal magic vtool sets for other commands
    out = run_git(root, "check-ignore", "-v", "-z", "--stdin", check=False, globs=True, stdin="\0".join(paths) + "\0")
    fields = out.split("\0")
    rules: dict[str, tuple[str, int, str]] = {}
    for i in range(0, len(fields) - 3, 4):
        source, line, pattern, path = fields[i:i + 4]
        if not pattern.startswith("!"):  # -v also reports the negation that un-ignores a path
            rules[path] = (source, int(line), pattern)
    return rules


def ensure_ignored(folder: Path, name: str) -> bool:
    """Add `/name` to the .gitignore in folder unless an equal line is there; return True if it changed."""
    path = folder / GITIGNORE
    line = "/" + _escape(name)
    try:
        data = path.read_bytes()  # bytes: a .gitignore in another encoding is kept exactly as it is
    except FileNotFoundError:
        data = b""
    entry = line.encode("utf-8", "surrogateescape")
    if entry in data.splitlines():
        return False
    prefix = b"" if not data or data.endswith(b"\n") else b"\n"
    atomic_write(path, data + prefix + entry + b"\n")
    return True


def remove_ignored(folder: Path, name: str) -> bool:
    """Remove the `/name` line ensure_ignored wrote (a .gitignore left empty goes too); True if it changed."""
    path = folder / GITIGNORE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    entry = ("/" + _escape(name)).encode("utf-8", "surrogateescape")
    lines = data.splitlines(keepends=True)
    kept = [line for line in lines if line.rstrip(b"\r\n") != entry]
    if len(kept) == len(lines):
        return False
    if kept:
        atomic_write(path, b"".join(kept))
    else:
        os.unlink(path)
    return True


def _escape(name: str) -> str:
    out = name
    for special in ("\\", "*", "?", "[", "!", "#"):
        out = out.replace(special, "\\" + special)
    return out.replace(" ", "\\ ") if out.endswith(" ") else out


def resolve(root: Path, rev: str) -> str:
    """Return the full commit sha a revision names (any syntax git accepts), or a GitError saying it does not exist.

    Peeled in a second call: a suffix like `^{commit}` would become part of the text `:/fix labels` searches for.
    A full object name (what this returns) needs no first call: git reads it as that object whatever refs exist.
    """
    named = rev if _is_object_name(rev) else run_git(root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                                     rev, check=False).strip()
    sha = run_git(root, "rev-parse", "--verify", "--quiet", f"{named}^{{commit}}", check=False).strip() if named \
        else ""
    if not sha:
        raise GitError(f"unknown revision {rev!r}", "see: git log --oneline")
    return sha


def _is_object_name(rev: str) -> bool:
    """Tell whether rev is a full SHA-1 or SHA-256 object name, as git prints them."""
    return len(rev) in OBJECT_NAME_LENGTHS and is_hex(rev)


def is_revision(root: Path, rev: str) -> bool:
    """Tell whether git resolves rev to a commit."""
    try:
        resolve(root, rev)
    except GitError:
        return False
    return True


def head_commit(root: Path) -> str | None:
    """Return the commit HEAD names, or None in a repository with no commit yet."""
    return run_git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip() or None


def checkout(root: Path, rev: str) -> None:
    """Move HEAD and the work tree to rev; git refuses (GitError) where it would lose uncommitted work."""
    run_git(root, "checkout", "--quiet", rev, "--")


def ls_tree(root: Path, sha: str, paths: list[str] | None = None) -> list[tuple[str, str]]:
    """List (path, blob sha) of the files committed at sha, all of them or those at or below paths."""
    listing = run_git(root, "ls-tree", "-r", "-z", "--full-tree", sha, "--", *(paths or []))
    found = []
    for record in filter(None, listing.split("\0")):
        info, path = record.split("\t", 1)
        _, kind, blob = info.split()
        if kind == "blob":
            found.append((path, blob))
    return found


def read_blobs(root: Path, shas: list[str]) -> dict[str, bytes]:
    """Read blobs by sha, any number of them through one `git cat-file --batch`."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = run_git_bytes(root, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in wanted).encode())
    found, pos = {}, 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3:
            raise GitError(f"git object {sha} is missing")
        size = int(header[2])
        found[sha] = out[end + 1:end + 1 + size]
        pos = end + 2 + size  # each blob is followed by a newline
    return found


def pointers_at(root: Path, rev: str) -> list[tuple[str, bytes]]:
    """Read every pointer file committed at rev straight from git objects, without touching the work tree."""
    wanted = [(path, blob) for path, blob in ls_tree(root, resolve(root, rev)) if is_pointer_path(path)]
    found = read_blobs(root, [blob for _, blob in wanted])
    return [(path, found[blob]) for path, blob in wanted]


def all_commits(root: Path) -> list[str]:
    """List every commit reachable from any ref."""
    return run_git(root, "rev-list", "--all").split()


def branch_and_tag_tips(root: Path) -> list[str]:
    """List the commits at the tips of all branches and tags in one git call; tags of non-commits are skipped."""
    fmt = "%(objectname) %(objecttype) %(*objectname) %(*objecttype)"
    out = run_git(root, "for-each-ref", f"--format={fmt}", "refs/heads", "refs/tags")
    tips = set()
    for line in out.splitlines():
        sha, kind, *peeled = line.split()
        if kind == "commit":
            tips.add(sha)
        elif peeled[-1:] == ["commit"]:
            tips.add(peeled[0])
    return sorted(tips)


def file_at(root: Path, sha: str, path: str) -> bytes | None:
    """Return a file's bytes as committed at sha, or None when the commit has no such file."""
    found = dict(ls_tree(root, sha, [path]))
    return read_blobs(root, [found[path]])[found[path]] if path in found else None


def last_commit_time(root: Path, path: str, rev: str = "HEAD") -> int | None:
    """Return when the last commit up to rev that changed path was made (epoch seconds), None if none did."""
    if head_commit(root) is None:
        return None
    out = run_git(root, "log", "-1", "--format=%ct", rev, "--", path).strip()
    return int(out) if out else None


def has_uncommitted_change(root: Path, path: str) -> bool:
    """Tell whether path differs from HEAD in the index or the work tree (or is not committed at all)."""
    return bool(run_git(root, "status", "--porcelain", "--untracked-files=all", "--", path).strip())


def files_at(root: Path, rev: str, folder: str) -> dict[str, bytes]:
    """Return every file committed at rev below folder (or the file itself), by repo path."""
    blobs = ls_tree(root, rev, [folder])
    found = read_blobs(root, [sha for _, sha in blobs])
    return {path: found[sha] for path, sha in blobs}


def uncommitted_files(root: Path) -> list[str]:
    """List git-tracked files whose content differs from HEAD (staged or not); all of them before a first commit."""
    if head_commit(root) is None:
        return [p for p in run_git(root, "ls-files", "-z").split("\0") if p]
    out = run_git(root, "diff", "HEAD", "--name-only", "--no-renames", "-z", "--")
    return sorted(p for p in out.split("\0") if p)


def file_history(root: Path, path: str) -> list[tuple[str, str, str | None]]:
    """Walk `git log --all -- path` once: (commit, commit date, blob sha or None where deleted), newest first."""
    out = run_git(root, "log", "--all", "--no-renames", "--raw", "--no-abbrev", "--format=%x01%H %cI", "--", path)
    found: list[tuple[str, str, str | None]] = []
    for chunk in out.split("\x01")[1:]:
        lines = chunk.strip("\n").split("\n")
        commit, date = lines[0].split(" ", 1)
        blob = None
        for line in lines[1:]:
            if line.startswith(":") and line.split("\t", 1)[-1] == path:
                new = line.split()[3]
                blob = None if not new.strip("0") else new
        found.append((commit, date, blob))
    return found


def tags(root: Path) -> list[tuple[str, str]]:
    """List (tag name, commit) of every tag pointing at a commit, in name order."""
    fmt = "%(refname:short) %(objecttype) %(objectname) %(*objecttype) %(*objectname)"
    found = []
    for line in run_git(root, "for-each-ref", f"--format={fmt}", "refs/tags").splitlines():
        name, kind, sha, *peeled = line.split()
        if kind == "commit":
            found.append((name, sha))
        elif peeled[:1] == ["commit"]:
            found.append((name, peeled[1]))
    return sorted(found)


def add_worktree(root: Path, folder: Path, rev: str) -> None:
    """Check rev out, detached, in a new linked worktree at folder."""
    run_git(root, "worktree", "add", "--detach", "--quiet", str(folder), rev)


def remove_worktree(root: Path, folder: Path) -> None:
    """Remove a linked worktree and its bookkeeping, even with changes in it."""
    run_git(root, "worktree", "remove", "--force", str(folder), check=False)
    run_git(root, "worktree", "prune")


def other_tips(root: Path) -> list[str]:
    """List the commits of remote-tracking branches (a teammate's pushed work) and the stash."""
    return run_git(root, "for-each-ref", "--format=%(objectname)", "refs/remotes", "refs/stash").split()


def git_path(root: Path, name: str) -> Path:
    """Return where git keeps name (hooks, rebase-merge...), honouring core.hooksPath and linked worktrees."""
    return root / run_git(root, "rev-parse", "--git-path", name).strip()


def rebase_in_progress(root: Path) -> bool:
    """Tell whether a rebase is checking out commits one by one."""
    states = run_git(root, "rev-parse", "--git-path", "rebase-merge", "--git-path", "rebase-apply").split("\n")
    return any(s and (root / s).is_dir() for s in states)


def pointer_commits(root: Path, tips: list[str], known: list[str], git_remote: str) -> list[str]:
    """List the commits reachable from tips, but not from known or the git remote's branches, that change a pointer."""
    return run_git(root, "rev-list", "--ignore-missing", *tips, "--not", *known, f"--remotes={git_remote}",
                   "--", POINTER_GLOB, globs=True).split()


def staged_pointers(root: Path) -> list[tuple[str, str]]:
    """List (path, blob sha) of pointer files the next commit adds or changes, as staged in the index."""
    base = head_commit(root) or run_git(root, "hash-object", "-t", "tree", os.devnull).strip()
    out = run_git(root, "diff-index", "--cached", "-z", "--no-renames", "--diff-filter=ACMR", base, "--",
                  POINTER_GLOB, globs=True)
    fields = out.split("\0")
    found = []
    for info, path in zip(fields[0::2], fields[1::2], strict=False):  # output ends with a NUL
        parts = info.split()
        if len(parts) == 5 and parts[1] in REGULAR_MODES:
            found.append((path, parts[3]))
    return found


def file_log(root: Path, path: str, limit: int | None = None) -> list[list[str]]:
    """List [sha, ISO date, author, subject] of the commits that change path, newest first."""
    args = ["log", f"--format={LOG_FORMAT}"] + ([f"-n{limit}"] if limit else []) + ["--", path]
    return [r.strip("\n").split("\x1f") for r in run_git(root, *args).split("\x1e") if r.strip()]


def refs_state(root: Path) -> str:
    """Return every ref and HEAD with their commits, in one call: it changes whenever history can have changed."""
    refs = run_git(root, "for-each-ref", "--format=%(objectname) %(refname)")
    return refs + (head_commit(root) or "")


def origin_url(root: Path) -> str | None:
    """Return the URL of the `origin` git remote, if there is one."""
    return run_git(root, "config", "--get", "remote.origin.url", check=False).strip() or None


def staged_file(root: Path, path: str) -> bytes | None:
    """Return a file's bytes as staged in the index (what the next commit holds), None if the index lacks it."""
    out = run_git(root, "ls-files", "-s", "-z", "--", path).split("\0", 1)[0]
    if not out:
        return None
    info = out.split("\t", 1)[0].split()
    return read_blobs(root, [info[1]])[info[1]]
