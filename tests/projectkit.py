"""The pytest plugin of tests/ and integration/: real git repos built once per session and copied per test,
and helpers to drive the vtool CLI on them (in-process or as a process) and inspect the result.

Loaded by the `pytest_plugins` line of the root conftest.py; tests import the helpers from here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import xxhash

from vtool import manifest
from vtool import pointer as ptr
from vtool.cache import Cache
from vtool.fsutil import TEMP_MARK
from vtool.hashing import OID_PREFIX, Oid, hash_bytes, hash_stream
from vtool.store import layout, pack
from vtool.workspace import WHOLE_READ_MAX

# Deterministic git and terminal: no user config, fixed identity, no colours, no debug tracebacks.
os.environ.update({
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "NO_COLOR": "1",
})
for _name in ("VTOOL_DEBUG", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "GIT_DIR", "GIT_WORK_TREE"):
    os.environ.pop(_name, None)


PRIVATE_STATE = (".vtool/state", ".vtool/lock", ".vtool/cache/lock")
HEX_DIGITS = frozenset("0123456789abcdef")
DIGEST_HEX_CHARS = 32


@dataclass(frozen=True)
class Result:
    """What one vtool invocation printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Parse stdout as the one JSON document --json promises."""
        return json.loads(self.out)


def git_in(root: Path, *args: str) -> str:
    """Run git in root and return its stdout; a failure fails the test with git's stderr."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def cache_sound(folder: Path) -> set[str]:
    """Check every loose object and every pack in a cache folder is whole and hashes to its name; temp files are
    allowed, nothing else; return the oids.

    Temp files are what a writer has not renamed yet (or a killed one left): a reader never takes them for objects.
    """
    found: set[str] = set()
    if not folder.is_dir():
        return found
    for fanout in folder.iterdir():
        if fanout.name == layout.PACKS_DIR:
            found |= _packs_sound(fanout)
        if len(fanout.name) != 2 or not set(fanout.name) <= HEX_DIGITS:
            continue  # the lock, temp files, quarantine/, remotes/, outgoing/: never objects
        assert fanout.is_dir(), f"stray {fanout}"
        for path in fanout.iterdir():
            if path.name.startswith(TEMP_MARK):
                continue
            digest = fanout.name + path.name
            assert len(digest) == DIGEST_HEX_CHARS and set(digest) <= HEX_DIGITS, f"stray {path}"
            assert xxhash.xxh3_128_hexdigest(path.read_bytes()) == digest, f"partial or corrupt object {digest}"
            found.add(OID_PREFIX + digest)
    return found


def _packs_sound(folder: Path) -> set[str]:
    """Parse every pack under its final name in full (objects and name): a kill never leaves a partial one there."""
    found: set[str] = set()
    for path in folder.iterdir():
        if path.name.startswith(TEMP_MARK) or path.name == "damaged":
            continue
        assert path.name.endswith(layout.PACK_SUFFIX), f"stray {path}"
        found |= {slot.oid for slot in pack.parse(path.read_bytes(), path.name[:-len(layout.PACK_SUFFIX)]).slots}
    return found


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def invoke(args: tuple[str, ...], cwd: Path) -> Result:
    """Run the CLI in this process (about 50x faster than a subprocess), through its real error boundary."""
    from vtool.cli import app as cli_app
    from vtool.cli.ui import ui

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_argv = os.getcwd(), sys.argv
    # The UI is a process-wide singleton: give every call a fresh verbosity, as a new process would have.
    ui.quiet, ui.verbose = False, os.environ.get("VTOOL_DEBUG") == "1"
    code = 0
    try:
        os.chdir(cwd)
        sys.argv = ["vtool", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_app.main()
            except SystemExit as exc:
                code = _exit_code(exc)
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    return Result(code, out.getvalue(), err.getvalue())


def invoke_process(args: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> Result:
    """Run the CLI as a real process: true exit codes, stderr and tracebacks, at ~0.3 s a call."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "vtool", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


SPAWN = Path(__file__).resolve().parents[1] / "scripts" / "bench_lib" / "spawn.py"


def peak_rss(args: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, int]:
    """Run the CLI as a process forked from a tiny launcher; return its exit code and its own peak RSS in KiB.

    Forked from pytest itself, a child's ru_maxrss would start at pytest's peak (see scripts/bench_lib/spawn.py).
    """
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rss"
        proc = subprocess.run([sys.executable, "-S", "-I", str(SPAWN), str(result), sys.executable, "-m", "vtool",
                               *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, check=False)
        assert "Traceback" not in proc.stderr.decode(), proc.stderr.decode()
        return proc.returncode, int(result.read_text().split()[1])


class Workdir:
    """A temporary git repository (vtool initialised or not), and helpers to drive it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def vtool_dir(self) -> Path:
        """Return the project's `.vtool` folder."""
        return self.root / ".vtool"

    @property
    def cache_dir(self) -> Path:
        """Return the default cache folder (tests that move the cache track it themselves)."""
        return self.vtool_dir / "cache"

    def path(self, rel: str) -> Path:
        """Return the absolute path of a repo-relative path."""
        return self.root / rel

    def write(self, rel: str, data: bytes | str = b"", executable: bool = False) -> Path:
        """Write a file (parents created), optionally with the exec bits; return its path."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        os.chmod(path, 0o755 if executable else 0o644)
        return path

    def write_tree(self, base: str, files: dict[str, bytes | str]) -> Path:
        """Write several files below base, keyed by base-relative path."""
        for rel, data in files.items():
            self.write(f"{base}/{rel}", data)
        return self.root / base

    def replace_tree(self, base: str, files: dict[str, bytes | str]) -> Path:
        """Write base afresh: whatever it held removed, then these files written."""
        if self.path(base).exists():
            shutil.rmtree(self.path(base))
        return self.write_tree(base, files)

    def commit_two_versions(self, base: str, v1: dict[str, bytes | str], v2: dict[str, bytes | str]) -> None:
        """Track base as v1, commit it tagged v1, then as v2 and commit: a dataset with one older version."""
        for version, files in (("v1", v1), ("v2", v2)):
            self.replace_tree(base, files)
            self.add(base)
            self.commit(version)
            if version == "v1":
                self.git("tag", "v1")

    def read(self, rel: str) -> bytes:
        """Return a file's bytes."""
        return (self.root / rel).read_bytes()

    def snapshot(self, rel: str = ".") -> dict[str, tuple[bytes | str, int]]:
        """Map every entry below rel to (bytes or link target, mode), to prove nothing changed.

        Skips .git and vtool's private bookkeeping (stat cache, locks), which any command may refresh.
        """
        base = self.root / rel
        out: dict[str, tuple[bytes | str, int]] = {}
        paths = [base] if not base.is_dir() or base.is_symlink() else sorted(base.rglob("*"))
        for path in paths:
            key = path.relative_to(self.root).as_posix()
            if key.split("/", 1)[0] == ".git" or key.startswith(PRIVATE_STATE):
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[key] = (os.readlink(path), st.st_mode)
            elif stat.S_ISREG(st.st_mode):
                out[key] = (path.read_bytes(), st.st_mode)
            else:
                out[key] = (b"<dir>", st.st_mode)
        return out

    def run(self, *args: str, cwd: str | Path | None = None) -> Result:
        """Run `vtool ARGS` in-process from the repo root (or cwd, relative to it)."""
        return invoke(args, self.root / cwd if cwd is not None else self.root)

    def run_process(self, *args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> Result:
        """Run `python -m vtool ARGS` as a subprocess, for exit codes, env vars and tracebacks."""
        return invoke_process(args, self.root / cwd if cwd is not None else self.root, env)

    def ok(self, *args: str, cwd: str | Path | None = None) -> Result:
        """Run vtool and require success, showing its stderr otherwise."""
        result = self.run(*args, cwd=cwd)
        assert result.code == 0, f"vtool {' '.join(args)} exited {result.code}: {result.err}"
        return result

    def fails(self, *args: str, code: int = 1, cwd: str | Path | None = None) -> Result:
        """Run vtool and require it to fail with code; return the result for its message."""
        result = self.run(*args, cwd=cwd)
        assert result.code == code, f"vtool {' '.join(args)} exited {result.code}, not {code}: {result.err}"
        return result

    def add_remote(self, url: str | Path, *options: str, name: str = "origin", endpoint: str | None = None,
                   default: bool = False) -> Result:
        """Run `vtool remote add NAME URL [--endpoint-url E] [--default] OPTIONS` and require success."""
        endpoint_args = ("--endpoint-url", endpoint) if endpoint is not None else ()
        return self.ok("remote", "add", name, str(url), *endpoint_args, *(("--default",) if default else ()), *options)

    def add(self, *paths: str) -> dict[str, Any]:
        """Run `vtool add --json PATHS` and return the JSON result."""
        return self.ok("add", *paths, "--json").json()

    def status(self, *targets: str) -> dict[str, dict[str, Any]]:
        """Run `vtool status --json` and return each dataset's status by path."""
        return {ds["path"]: ds for ds in self.ok("status", *targets, "--json").json()["datasets"]}

    def git(self, *args: str) -> str:
        """Run git in the repo and return its stdout."""
        return git_in(self.root, *args)

    def commit(self, message: str = "commit", *paths: str) -> str:
        """Stage paths (everything when none) and commit; return the new commit's sha."""
        self.git("add", "--", *paths) if paths else self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def pointer(self, data_rel: str) -> ptr.Pointer:
        """Load the pointer of a tracked path."""
        path = self.root / (data_rel + ptr.POINTER_SUFFIX)
        return ptr.loads(path.read_bytes(), path.name)

    def object_path(self, oid: str) -> Path:
        """Return where the default cache keeps an object."""
        digest = oid[len(OID_PREFIX):]
        return self.cache_dir / digest[:2] / digest[2:]

    def cache_oids(self) -> set[str]:
        """Return every object in the default cache, loose or packed."""
        return set(Cache(self.cache_dir).iter_oids())

    def object_bytes(self, oid: str) -> bytes:
        """Return an object's bytes from the default cache, loose or packed (hash-checked)."""
        return Cache(self.cache_dir).read_bytes(oid)

    def drop_object(self, oid: str) -> None:
        """Remove one object from the default cache, loose (unlink) or packed (its pack rewritten without it)."""
        path = self.object_path(oid)
        if path.exists():
            os.chmod(path, 0o644)
            path.unlink()
            return
        cache = Cache(self.cache_dir)
        cache.packs.drop({oid}, repack_below=2.0)  # any pack holding it is rewritten with the rest
        cache.close()

    def loose_only(self) -> None:
        """Keep every object loose in this project's cache (cache.packs false), for tests of loose files."""
        self.ok("config", "cache.packs", "false")

    def manifest(self, oid: str) -> list[manifest.Entry]:
        """Read and decode a manifest from the default cache."""
        return manifest.decode(self.object_bytes(oid), oid)

    def file_oid(self, rel: str, dataset: str = "data") -> str:
        """Return the oid of a file of a cached folder dataset (rel is dataset-relative), from its manifests."""
        folders = self.folders(self.pointer(dataset).oid)
        folder, _, name = rel.rpartition("/")
        return next(e.oid for e in self.manifest(folders[folder]) if e.name == name)

    def folders(self, root_oid: str) -> dict[str, str]:
        """Map every folder of a cached tree ("" for the root) to its manifest oid."""
        out = {"": root_oid}
        out.update({path: e.oid for path, e in manifest.walk(self.manifest, root_oid) if e.is_dir})
        return out


# Content big enough to be hashed as a stream (smaller files are read whole in one read, then hashed).
STREAMED = b"before" + bytes(WHOLE_READ_MAX)


def hasher_changing(path: Path) -> Callable[[BinaryIO], tuple[str, int]]:
    """A scan's hasher that rewrites path, longer, during its first read: a file changing while it is hashed
    (write STREAMED to it: a file read whole is never in a stream hasher's hands while it is read)."""

    def hasher(handle: BinaryIO) -> tuple[str, int]:
        result = hash_stream(handle)
        if not path.read_bytes().startswith(b"after"):  # changed once, while the first read is under way
            path.write_bytes(b"after, longer")
        return result

    return hasher


class ManifestStore:
    """Manifests by oid, built from nested dicts: bytes are files, ("x", bytes) executables, dicts folders."""

    def __init__(self) -> None:
        self.data: dict[Oid, bytes] = {}

    def tree(self, folder: dict[str, object]) -> manifest.Entry:
        """Store the manifests of a folder and everything below it; return the folder's entry (unnamed)."""
        entries = []
        for name, value in folder.items():
            if isinstance(value, dict):
                sub = self.tree(value)
                entries.append(manifest.Entry(name, manifest.KIND_DIR, sub.oid, sub.size, sub.files))
            else:
                kind, data = (manifest.KIND_EXEC, value[1]) if isinstance(value, tuple) else (manifest.KIND_FILE, value)
                entries.append(manifest.Entry(name, kind, hash_bytes(data), len(data), 1))
        oid, data = manifest.build(entries)
        self.data[oid] = data
        return manifest.Entry("", manifest.KIND_DIR, oid, sum(e.size for e in entries), sum(e.files for e in entries))

    def load(self, oid: Oid) -> list[manifest.Entry]:
        """Return a stored manifest's entries (the loader manifest's walks take)."""
        return manifest.decode(self.data[oid], oid)


def _make_git_repo(root: Path) -> None:
    root.mkdir(parents=True)
    git_in(root, "init", "-q", "-b", "main")
    git_in(root, "config", "user.name", "Test User")
    git_in(root, "config", "user.email", "test@example.com")
    git_in(root, "config", "commit.gpgsign", "false")
    for sample in (root / ".git" / "hooks").glob("*.sample"):
        sample.unlink()  # fewer files to copy per test


@pytest.fixture(scope="session")
def git_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare-bones git repo (no vtool), built once."""
    root = tmp_path_factory.mktemp("template") / "git"
    _make_git_repo(root)
    return root


@pytest.fixture(scope="session")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with `vtool init` run and committed, built once."""
    root = tmp_path_factory.mktemp("template") / "project"
    _make_git_repo(root)
    result = invoke(("init",), root)
    assert result.code == 0, result.err
    git_in(root, "add", ".vtool")
    git_in(root, "commit", "-q", "-m", "vtool init")
    return root


@pytest.fixture
def git_repo(git_template: Path, tmp_path: Path) -> Workdir:
    """A fresh git repo where vtool is not initialised."""
    root = tmp_path / "repo"
    shutil.copytree(git_template, root, symlinks=True)
    return Workdir(root)


@pytest.fixture
def project(project_template: Path, tmp_path: Path) -> Workdir:
    """A fresh copy of the initialised project template."""
    root = tmp_path / "repo"
    shutil.copytree(project_template, root, symlinks=True)
    return Workdir(root)


@pytest.fixture
def remote_dir(tmp_path: Path) -> Path:
    """An empty folder to use as a local remote."""
    folder = tmp_path / "remote"
    folder.mkdir()
    return folder
