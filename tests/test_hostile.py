"""Hostile pointers, manifests and config, planted the way a user or an attacker would, each refused end to end.

Every row plants one file (a pointer in the work tree, a pointer committed at a revision, a manifest in the
cache or in a remote, a config file, a symlink), runs one vtool command through the real CLI, and requires:
exit 1 with one `error:` line naming the problem, no traceback, and nothing written where it must not be:
the folder outside the repo, the remote, `.git/hooks`, `.git/config`, HEAD and the workspace are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from projectkit import Workdir, git_in, invoke

from vtool.hashing import hash_bytes
from vtool.manifest import MAX_DEPTH

ALPHA = b"alpha\n"
A_OID = hash_bytes(ALPHA)
FAST_S = 3.0  # bombs and deep chains must be refused at once, not after expanding
MAX_DIGITS = 100
HANG_S = 10.0  # a command blocked on a FIFO's open is woken then, and fails its row instead of hanging the suite
REV = "evil"
HEADER = "vtool-manifest 1\n"
SCRATCH = (".vtool/cache", ".vtool/state", ".vtool/lock")  # may change: objects fetched or quarantined


@dataclass(frozen=True)
class Scene:
    """A tracked project (data/, model.bin, sub/inner.bin, pushed to a local remote) beside a sentinel folder."""

    project: Workdir
    outside: Path
    remote: Path

    @property
    def root(self) -> Path:
        return self.project.root


def _build(base: Path, template: Path) -> None:
    root = base / "repo"
    shutil.copytree(template, root, symlinks=True)
    project = Workdir(root)
    project.write_tree("data", {"a.txt": ALPHA, "sub/b.txt": "bee\n"})
    project.write("model.bin", b"\0model\1")
    project.write("sub/inner.bin", b"inner\n")
    (base / "remote").mkdir()
    outside = base / "outside"
    project.write("../outside/victim/a.txt", "the user's own file outside the repo\n")
    project.write("../outside/precious", "precious\n")
    project.write("../outside/appdir/lock", "another program's lock file\n")
    _use_remote(Scene(project, outside, base / "remote"))
    project.add("data", "model.bin", "sub/inner.bin")
    project.commit("data v1")
    project.ok("push")


def _use_remote(scene: Scene) -> None:
    """Point the (ignored) local config at this copy's remote folder (loose: tests plant objects by key)."""
    (scene.root / ".vtool/config.local.yaml").write_text(f"remotes:\n  local:\n    url: {scene.remote}\n"
                                                         "    layout: loose\ncore:\n  remote: local\n")


@pytest.fixture(scope="module")
def scene_template(tmp_path_factory: pytest.TempPathFactory, project_template: Path) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    _build(base, project_template)
    return base


@pytest.fixture
def scene(scene_template: Path, tmp_path: Path) -> Scene:
    base = tmp_path / "w"
    shutil.copytree(scene_template, base, symlinks=True)
    made = Scene(Workdir(base / "repo"), base / "outside", base / "remote")
    _use_remote(made)
    return made


# --- what a row plants ---------------------------------------------------------------------------------------

def pointer(path: str = "evil", kind: str = "file", oid: str = A_OID, size: int | str = len(ALPHA), extra: str = "",
            version: str = "1", files: int = 1) -> str:
    count = f"files: {files}\n" if kind == "dir" else ""
    return f"version: {version}\ntype: {kind}\npath: {path}\noid: {oid}\nsize: {size}\n{count}{extra}"


def bomb(indent: str = "") -> str:
    """Billion laughs: nine levels of nine aliases each, a few hundred bytes that expand to 9**9 strings."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def in_tree(rel: str, text: str | bytes) -> Callable[[Scene], None]:
    """Plant a file in the work tree, as a user would save it or a pull would bring it."""
    def plant(scene: Scene) -> None:
        scene.project.write(rel, text)
    return plant


def at_rev(files: dict[str, str | bytes]) -> Callable[[Scene], None]:
    """Commit files on branch `evil` (ignored ones forced in), then come back to main."""
    def plant(scene: Scene) -> None:
        p = scene.project
        p.git("checkout", "-q", "-b", REV)
        for rel, text in files.items():
            p.write(rel, text)
            p.git("add", "-f", "--", rel)
        p.git("commit", "-q", "-m", "hostile")
        p.git("checkout", "-q", "main")
    return plant


def manifest_bytes(lines: list[str]) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def store(folder: Path, data: bytes, oid: str | None = None) -> str:
    """Put bytes under an object name (their own hash unless told) in a cache or remote folder."""
    oid = oid or hash_bytes(data)
    digest = oid.split(":", 1)[1]
    path = folder / digest[:2] / digest[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return oid


def manifest_at(where: str, lines: list[str]) -> Callable[[Scene], None]:
    """Plant a manifest in the cache or the remote, and a work-tree pointer `evil.vtool` naming it.

    The pointer states the totals the lines add up to, so each row meets the problem it plants.
    """
    def plant(scene: Scene) -> None:
        oid = store(_folder(scene, where), manifest_bytes(lines))
        size, files = _line_totals(lines)
        scene.project.write("evil.vtool", pointer(kind="dir", oid=oid, size=size, files=files))
    return plant


def _line_totals(lines: list[str]) -> tuple[int, int]:
    fields = [line.split(" ", 4) for line in lines]
    counts = [(int(f[2]), int(f[3])) for f in fields
              if len(f) == 5 and f[2].isdigit() and f[3].isdigit() and len(f[2]) < MAX_DIGITS]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _folder(scene: Scene, where: str) -> Path:
    return scene.project.cache_dir if where == "cache" else scene.remote


def deep_chain(where: str) -> Callable[[Scene], None]:
    """A chain of tiny manifests nested deeper than any tree vtool accepts."""
    def plant(scene: Scene) -> None:
        folder = _folder(scene, where)
        oid = store(folder, manifest_bytes([f"f {A_OID} {len(ALPHA)} 1 a.txt"]))
        for _ in range(MAX_DEPTH + 50):
            oid = store(folder, manifest_bytes([f"d {oid} {len(ALPHA)} 1 d"]))
        scene.project.write("evil.vtool", pointer(kind="dir", oid=oid))
    return plant


def entry(name: str, kind: str = "f", oid: str = A_OID, size: int | str = len(ALPHA), files: int = 1) -> str:
    return f"{kind} {oid} {size} {files} {name}"


def symlinked_parent(target: str, pointer_home: str) -> Callable[[Scene], None]:
    """Replace the committed folder sub/ (with sub/inner.bin.vtool) by a symlink; the pointer waits at its target."""
    def plant(scene: Scene) -> None:
        home = scene.root / pointer_home
        shutil.copy(scene.root / "sub/inner.bin.vtool", home / "inner.bin.vtool")
        shutil.rmtree(scene.root / "sub")
        os.symlink(target, scene.root / "sub")
    return plant


def replace_with_symlink(rel: str, target: str) -> Callable[[Scene], None]:
    def plant(scene: Scene) -> None:
        path = scene.root / rel
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        os.symlink(target, path)
    return plant


def config(text: str | bytes, name: str = "config.yaml") -> Callable[[Scene], None]:
    """Write the tracked config, or append to the local one (which keeps naming the remote)."""
    def plant(scene: Scene) -> None:
        path = scene.root / ".vtool" / name
        data = text.encode() if isinstance(text, str) else text
        path.write_bytes((path.read_bytes() if name == "config.local.yaml" else b"") + data)
    return plant


def config_with_root(make: Callable[[Scene], str]) -> Callable[[Scene], None]:
    def plant(scene: Scene) -> None:
        (scene.root / ".vtool/config.yaml").write_text(make(scene))
    return plant


def bomb_tree(levels: int, honest: bool) -> Callable[[Scene], None]:
    """Manifests in the remote whose every folder names the next one twice: 2**levels files behind `files: 2`.

    Honest manifests give each folder its true totals (only the pointer lies); dishonest ones claim one
    file per folder, so every level looks like two files.
    """
    def plant(scene: Scene) -> None:
        oid = store(scene.remote, manifest_bytes([entry("a.txt")]))
        size, files = len(ALPHA), 1
        for _ in range(levels):
            claimed = (size, files) if honest else (len(ALPHA), 1)
            oid = store(scene.remote, manifest_bytes([entry(n, "d", oid, *claimed) for n in ("l", "r")]))
            size, files = 2 * size, 2 * files
        scene.project.write("evil.vtool", pointer(kind="dir", oid=oid, size=2 * len(ALPHA), files=2))
    return plant


BIG_OID = "xxh128:" + "b1" * 16
BIG_BYTES = 200 * 1024 * 1024


def big_object(as_subfolder: bool) -> Callable[[Scene], None]:
    """A 200 MiB (sparse) object in the cache that a pointer, or a manifest entry, calls a folder."""
    def plant(scene: Scene) -> None:
        digest = BIG_OID.split(":", 1)[1]
        path = scene.project.cache_dir / digest[:2] / digest[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.truncate(BIG_BYTES)
        if as_subfolder:
            manifest_at("cache", [entry("sub", "d", BIG_OID)])(scene)
        else:
            scene.project.write("evil.vtool", pointer(kind="dir", oid=BIG_OID))
    return plant


GOOD = b"good bytes\n"
SUB_OID = hash_bytes(manifest_bytes([entry("a")]))


def special_in_remote(kind: str) -> Callable[[Scene], None]:
    """Plant a FIFO, a socket or a symlink under an object's name in the local remote; evil.vtool names it."""
    def plant(scene: Scene) -> None:
        digest = hash_bytes(GOOD).split(":", 1)[1]
        path = scene.remote / digest[:2] / digest[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "socket":
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            sock.close()
        else:
            os.symlink(scene.outside / "precious", path)
        scene.project.write("evil.vtool", pointer(oid=hash_bytes(GOOD), size=len(GOOD)))
    return plant


def s3_remote(extra: str = "") -> Callable[[Scene], None]:
    """A tracked config with an S3 remote (no server needed: the command must stop before connecting)."""
    return config(f"remotes:\n  s3:\n    url: s3://bucket/p\n{extra}")


# --- the table -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    plant: Callable[[Scene], None]
    command: tuple[str, ...]
    fragment: str
    env: tuple[tuple[str, str], ...] = ()
    secret: str = ""  # must appear nowhere in the output


CHECKOUT = ("checkout",)
FORCE = ("checkout", "--force")
TO_REV = ("checkout", REV)
PULL = ("pull",)
STATUS = ("status",)
PYTHON_TAG = "meta: !!python/object/apply:os.system ['touch ../outside/pwned']\n"
NESTED = "meta:\n  x: " + "[" * 5000 + "]" * 5000 + "\n"

CASES = [
    # pointers in the work tree
    Case("ptr-path-dotdot", in_tree("evil.vtool", pointer(path="..")), CHECKOUT, "'..' must be a single name"),
    Case("ptr-path-absolute", in_tree("evil.vtool", pointer(path="/etc/passwd")), CHECKOUT, "absolute path"),
    Case("ptr-path-nested", in_tree("evil.vtool", pointer(path="a/b")), CHECKOUT, "must be a single name"),
    Case("ptr-path-dot-git", in_tree(".git.vtool", pointer(path=".git", kind="dir")), FORCE, "'.git' is reserved"),
    Case("ptr-name-mismatch", in_tree("evil.vtool", pointer(path="data")), CHECKOUT, "does not match the pointer"),
    Case("ptr-inside-dot-vtool", in_tree(".vtool/cache.vtool", pointer(path="cache", kind="dir")), FORCE,
         "a pointer inside .vtool/ is refused"),
    Case("ptr-version-2", in_tree("evil.vtool", pointer(version="2")), CHECKOUT, "unsupported pointer version 2"),
    Case("ptr-oid-uppercase", in_tree("evil.vtool", pointer(oid=A_OID.upper())), CHECKOUT, "invalid oid"),
    Case("ptr-oid-sha256", in_tree("evil.vtool", pointer(oid="sha256:" + "ab" * 32)), CHECKOUT, "invalid oid"),
    Case("ptr-negative-size", in_tree("evil.vtool", pointer(size=-1)), CHECKOUT, "size must be a non-negative"),
    Case("ptr-huge", in_tree("evil.vtool", pointer(extra="meta:\n  note: " + "x" * 70_000 + "\n")), CHECKOUT,
         "over the 65536 byte limit"),
    Case("ptr-yaml-bomb", in_tree("evil.vtool", pointer() + bomb()), CHECKOUT, "aliases (*name) are not allowed"),
    Case("ptr-deep-nesting", in_tree("evil.vtool", pointer(extra=NESTED)), CHECKOUT, "nested deeper than"),
    Case("ptr-python-tag", in_tree("evil.vtool", pointer(extra=PYTHON_TAG)), CHECKOUT,
         "could not determine a constructor"),
    Case("ptr-not-yaml", in_tree("evil.vtool", "version: 1\npath: [\n"), CHECKOUT, "not a valid pointer file"),
    Case("ptr-not-mapping", in_tree("evil.vtool", "- version\n- 1\n"), CHECKOUT, "expected a YAML mapping"),
    Case("ptr-duplicate-key", in_tree("evil.vtool", pointer() + f"oid: {A_OID}\n"), CHECKOUT, "duplicate key 'oid'"),
    Case("ptr-not-utf8", in_tree("evil.vtool", pointer().encode() + b"meta: {a: \xff}\n"), CHECKOUT,
         "UnicodeDecodeError"),
    Case("ptr-is-symlink-outside", lambda s: os.symlink("../outside/victim/a.txt", s.root / "evil.vtool"), CHECKOUT,
         "evil.vtool is a symlink"),
    Case("ptr-parent-symlink-outside", symlinked_parent("../outside", "../outside"), CHECKOUT,
         "a folder on its path is a symlink"),
    Case("ptr-parent-symlink-git-hooks", symlinked_parent(".git/hooks", ".git/hooks"), CHECKOUT,
         "a folder on its path is a symlink"),
    Case("status-parent-symlink-git-hooks", symlinked_parent(".git/hooks", ".git/hooks"), STATUS,
         "a folder on its path is a symlink"),
    Case("data-became-symlink", replace_with_symlink("data", "../outside/victim"), FORCE, "data is a symlink"),
    Case("data-subfolder-became-symlink", replace_with_symlink("data/sub", "../../outside/victim"), FORCE,
         "data/sub is a symlink"),
    Case("file-dataset-became-symlink", replace_with_symlink("model.bin", "../outside/precious"), FORCE,
         "model.bin is a symlink"),
    Case("rollback-through-symlinked-parent", symlinked_parent("../outside", "../outside"),
         ("checkout", "HEAD", "--", "sub/inner.bin"), "outside the repository"),
    # pointers committed at a revision: refused before git moves HEAD
    Case("rev-path-dot-git", at_rev({".git.vtool": pointer(path=".git", kind="dir")}), TO_REV, "'.git' is reserved"),
    Case("rev-inside-dot-vtool", at_rev({".vtool/cache.vtool": pointer(path="cache", kind="dir")}), TO_REV,
         "a pointer inside .vtool/ is refused"),
    Case("rev-version-2", at_rev({"evil.vtool": pointer(version="2")}), TO_REV, "unsupported pointer version 2"),
    Case("rev-bad-oid", at_rev({"evil.vtool": pointer(oid="xxh128:1234")}), TO_REV, "invalid oid"),
    Case("rev-yaml-bomb", at_rev({"evil.vtool": pointer() + bomb()}), TO_REV, "aliases (*name) are not allowed"),
    Case("rev-python-tag", at_rev({"evil.vtool": pointer(extra=PYTHON_TAG)}), TO_REV,
         "could not determine a constructor"),
    Case("rev-huge", at_rev({"evil.vtool": pointer(extra="meta:\n  note: " + "x" * 70_000 + "\n")}), TO_REV,
         "byte limit"),
    Case("rev-name-mismatch", at_rev({"sub/evil.vtool": pointer(path="inner.bin")}), TO_REV,
         "does not match the pointer"),
    # manifests planted in the cache
    Case("manifest-dotdot", manifest_at("cache", [entry("..")]), CHECKOUT, "'..' must be a single name"),
    Case("manifest-dot-git", manifest_at("cache", [entry(".git")]), CHECKOUT, "'.git' is reserved"),
    Case("manifest-dot-vtool-any-case", manifest_at("cache", [entry(".VTOOL")]), CHECKOUT, "is reserved"),
    Case("manifest-slash", manifest_at("cache", [entry("a/b")]), CHECKOUT, "must be a single name"),
    Case("manifest-backslash", manifest_at("cache", [entry("..\\hooks")]), CHECKOUT, "must be a single name"),
    Case("manifest-absolute", manifest_at("cache", [entry("/etc")]), CHECKOUT, "absolute path"),
    Case("manifest-drive", manifest_at("cache", [entry("C:evil")]), CHECKOUT, "Windows reads it as a drive"),
    Case("manifest-not-nfc", manifest_at("cache", [entry("cafe\u0301")]), CHECKOUT, "not in Unicode NFC"),
    Case("manifest-control-char", manifest_at("cache", [entry("a\tb")]), CHECKOUT, "control characters"),
    Case("manifest-duplicate", manifest_at("cache", [entry("a"), entry("a")]), CHECKOUT, "sorted and unique"),
    Case("manifest-unsorted", manifest_at("cache", [entry("b"), entry("a")]), CHECKOUT, "sorted and unique"),
    Case("manifest-bad-oid", manifest_at("cache", [entry("a", oid="xxh128:zz")]), CHECKOUT, "malformed manifest"),
    Case("manifest-file-count", manifest_at("cache", [entry("a", files=2)]), CHECKOUT, "bad size or file count"),
    Case("manifest-size-lies", manifest_at("cache", [entry("a", size=999)]), CHECKOUT,
         f"says object {A_OID} has 999 bytes, but it has {len(ALPHA)}"),
    Case("manifest-too-deep", deep_chain("cache"), CHECKOUT, f"nested deeper than {MAX_DEPTH} folders"),
    Case("manifest-bad-header", in_tree("evil.vtool", pointer(kind="dir")), CHECKOUT, "not a vtool manifest"),
    Case("manifest-bytes-not-its-name", lambda s: (store(s.project.cache_dir, manifest_bytes([entry("a")]),
                                                         oid="xxh128:" + "ab" * 16),
                                                   s.project.write("evil.vtool", pointer(kind="dir",
                                                                                         oid="xxh128:" + "ab" * 16))),
         CHECKOUT, "was corrupt and has been moved to quarantine/"),
    # manifests and objects planted in the remote, then pulled
    Case("remote-manifest-dotdot", manifest_at("remote", [entry("..")]), PULL, "'..' must be a single name"),
    Case("remote-manifest-dot-git", manifest_at("remote", [entry(".git", kind="d", files=1)]), PULL,
         "'.git' is reserved"),
    Case("remote-manifest-too-deep", deep_chain("remote"), PULL, f"nested deeper than {MAX_DEPTH} folders"),
    Case("remote-object-not-its-name", lambda s: (store(s.remote, b"evil bytes\n", oid=hash_bytes(b"good bytes\n")),
                                                  s.project.write("evil.vtool",
                                                                  pointer(oid=hash_bytes(b"good bytes\n"), size=11))),
         PULL, "is corrupt (its bytes hash to"),
    # config, tracked and local
    Case("config-yaml-bomb", config(bomb()), STATUS, "aliases (*name) are not allowed"),
    Case("config-local-yaml-bomb", config(bomb(), "config.local.yaml"), STATUS, "aliases (*name) are not allowed"),
    Case("config-python-tag", config("core: !!python/object/apply:os.system ['touch ../outside/pwned']\n"), STATUS,
         "could not determine a constructor"),
    Case("config-not-mapping", config("- cache\n- core\n"), STATUS, "expected a YAML mapping"),
    Case("config-section-not-mapping", config("cache: [dir, link]\n"), STATUS, "'cache' must be a mapping"),
    Case("config-remote-not-mapping", config("remotes:\n  origin: 5\n"), STATUS, "remote 'origin' must be a mapping"),
    Case("config-remote-no-url", config("remotes:\n  origin:\n    region: x\n"), STATUS, "has no url"),
    Case("config-remote-bad-scheme", config("remotes:\n  ftp:\n    url: ftp://example.com/x\n"), ("push", "-r", "ftp"),
         "unsupported URL scheme ftp://"),
    Case("config-jobs", config("core:\n  jobs: -3\n"), STATUS, "core.jobs: -3 is out of range"),
    Case("config-link", config("cache:\n  link: hack\n"), STATUS, "cache.link: unknown mode 'hack'"),
    Case("config-duplicate-key", config("core:\n  jobs: 2\n  jobs: 3\n"), STATUS, "duplicate key 'jobs'"),
    Case("config-not-utf8", config(b"core:\n  remote: \xff\n"),
         STATUS, "not valid YAML"),
    Case("config-huge", config("# " + "x" * (1024 * 1024 + 10) + "\n"), STATUS, "config file is too large"),
    Case("config-cache-dir-in-git", config("cache:\n  dir: .git/hooks\n"), STATUS, "/.git/hooks is inside .git/"),
    Case("config-cache-dir-is-dot-vtool", config("cache:\n  dir: .vtool\n"), STATUS, "is inside .git/, or is .vtool/"),
    Case("config-local-remote-in-git",
         config_with_root(lambda s: f"remotes:\n  git:\n    url: {s.root / '.git/objects'}\n"), ("push", "-r", "git"),
         "objects is inside .git/"),
    Case("config-cache-dir-foreign-lock",
         config_with_root(lambda s: f"cache:\n  dir: {s.outside / 'appdir'}\n"), ("gc", "--yes"),
         "is not a vtool lock file"),
    # values YAML parses but Python cannot build: a malformed file, with its line, never a traceback
    Case("ptr-5000-digit-size", in_tree("evil.vtool", pointer(size="1" * 5000)), CHECKOUT,
         "cannot read '1111111111111111111111111111111111111111' as int"),
    Case("ptr-impossible-date", in_tree("evil.vtool", pointer(extra="meta:\n  made: 2024-13-45\n")), CHECKOUT,
         "cannot read '2024-13-45' as timestamp: month must be in 1..12 at line 7"),
    Case("ptr-hex-underscore", in_tree("evil.vtool", pointer(extra="meta: {n: 0x_}\n")), STATUS,
         "cannot read '0x_' as int"),
    Case("ptr-timestamp-tag", in_tree("evil.vtool", pointer(extra="meta: {when: !!timestamp yesterday}\n")),
         CHECKOUT, "cannot read 'yesterday' as timestamp"),
    Case("ptr-bool-tag", in_tree("evil.vtool", pointer(extra="meta: {ok: !!bool maybe}\n")), CHECKOUT,
         "cannot read 'maybe' as bool"),
    Case("ptr-set-of-scalar", in_tree("evil.vtool", pointer(extra="meta: {s: !!set 1}\n")), CHECKOUT,
         "expected a mapping node, but found scalar"),
    Case("ptr-float-tag-on-re-add", lambda s: (in_tree("evil", ALPHA)(s),
                                               in_tree("evil.vtool", pointer(extra="meta: {f: !!float pi}\n"))(s)),
         ("add", "evil"), "cannot update evil.vtool: evil.vtool: not a valid pointer file (ConstructorError: "
         "cannot read 'pi' as float"),
    Case("rev-impossible-date", at_rev({"evil.vtool": pointer(extra="meta:\n  made: 2024-02-30\n")}), TO_REV,
         "cannot read '2024-02-30' as timestamp: day is out of range for month"),
    Case("rev-5000-digit-size-read-by-gc", at_rev({"evil.vtool": pointer(size="9" * 5000)}), ("gc",),
         "cannot read '9999999999999999999999999999999999999999' as int"),
    Case("rev-timestamp-tag-read-by-gc", at_rev({"evil.vtool": pointer(extra="meta: !!timestamp soon\n")}),
         ("gc", "--yes"), "cannot read 'soon' as timestamp"),
    Case("config-hex-underscore", config("core:\n  jobs: 0x_\n"), STATUS,
         "cannot read '0x_' as int: invalid literal for int() with base 16: '' at line 2"),
    Case("config-impossible-date", config("cache:\n  link: 2024-13-45\n"), STATUS,
         "cannot read '2024-13-45' as timestamp"),
    Case("config-local-5000-digits", config("cache:\n  dir: " + "7" * 5000 + "\n", "config.local.yaml"), STATUS,
         "as int: Exceeds the limit"),
    Case("remote-manifest-5000-digit-size", manifest_at("remote", [entry("a", size="9" * 5000)]), PULL,
         "bad size or file count"),
    Case("manifest-20-digit-size", manifest_at("cache", [entry("a", size=10**19)]), CHECKOUT,
         "bad size or file count"),
    # endpoint URLs: validated once, where they are read
    Case("config-endpoint-unclosed-ipv6", s3_remote("    endpoint_url: http://[::1\n"), STATUS,
         "malformed endpoint URL 'http://[::1' (Invalid IPv6 URL)"),
    Case("config-endpoint-bad-port", s3_remote("    endpoint_url: http://localhost:99999\n"), STATUS,
         "malformed endpoint URL 'http://localhost:99999' (Port out of range"),
    Case("config-endpoint-no-scheme", s3_remote("    endpoint_url: localhost:9000\n"), STATUS,
         "malformed endpoint URL 'localhost:9000'"),
    Case("remote-add-endpoint-unclosed-ipv6", lambda s: None,
         ("remote", "add", "x", "s3://bucket/p", "--endpoint-url", "http://[::1"), "--endpoint-url: malformed"),
    Case("env-endpoint-unclosed-ipv6", s3_remote(), ("push", "-r", "s3"),
         "AWS_ENDPOINT_URL: malformed endpoint URL 'http://[::1'", env=(("AWS_ENDPOINT_URL", "http://[::1"),)),
    Case("env-endpoint-bad-port", s3_remote(), ("fetch", "-r", "s3"), "AWS_ENDPOINT_URL_S3: malformed endpoint URL",
         env=(("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:0x50"),)),
    # credentials in URLs: refused, and never quoted
    Case("env-endpoint-password", s3_remote(), ("push", "-r", "s3"),
         "AWS_ENDPOINT_URL: credentials inside a URL are not allowed",
         env=(("AWS_ENDPOINT_URL", "http://user:Pw-Zq81xK0pLm@127.0.0.1:9"),), secret="Pw-Zq81xK0pLm"),
    Case("remote-add-url-password", lambda s: None, ("remote", "add", "x", "s3://KEY:Sk-3vQ9TmWz@bucket/p"),
         "credentials inside a URL are not allowed", secret="Sk-3vQ9TmWz"),
    Case("remote-add-endpoint-password", lambda s: None,
         ("remote", "add", "x", "s3://bucket/p", "--endpoint-url", "https://u:Ep-77Hq2RzX@[::1"),
         "credentials inside a URL are not allowed", secret="Ep-77Hq2RzX"),
    # folder totals: every folder held to what its parent entry and its pointer claim, before writing
    Case("manifest-subfolder-claims-nothing", lambda s: (store(s.project.cache_dir, manifest_bytes([entry("a")])),
                                                         manifest_at("cache", [entry("s", "d", SUB_OID, 0, 0)])(s)),
         CHECKOUT,
         "holds 0 file(s) and 0 bytes, but its manifest"),
    Case("remote-bomb-behind-files-2", bomb_tree(10, honest=True), PULL,
         "evil.vtool says folder"),
    Case("remote-bomb-of-lying-folders", bomb_tree(10, honest=False), PULL,
         "holds 1 file(s) and 6 bytes, but its manifest holds 2 file(s) and 12 bytes"),
    Case("ptr-understates-files", lambda s: (manifest_at("cache", [entry("a"), entry("b")])(s),
                                             s.project.write("evil.vtool", s.project.read("evil.vtool")
                                                             .replace(b"files: 2", b"files: 1"))),
         CHECKOUT, "evil.vtool says folder"),
    # a huge object named as a manifest: refused from its size, before reading it
    Case("ptr-names-huge-object-as-folder", big_object(as_subfolder=False), STATUS, "more than any manifest"),
    Case("manifest-names-huge-object-as-folder", big_object(as_subfolder=True), CHECKOUT, "more than any manifest"),
    # special files in a local-folder remote: never opened blocking, never followed
    Case("remote-object-is-fifo", special_in_remote("fifo"), PULL, "is not a regular file (it is a FIFO)"),
    Case("remote-object-is-socket", special_in_remote("socket"), PULL, "is not a regular file"),
    Case("remote-object-is-symlink", special_in_remote("symlink"), PULL, "is a symlink; refusing to follow it"),
    # vtool's own files replaced by symlinks (a clone of a repo that commits them)
    Case("lock-is-symlink", lambda s: (os.unlink(s.root / ".vtool/lock"),
                                       os.symlink("../../outside/precious", s.root / ".vtool/lock")), STATUS,
         "lock is a symlink; refusing to follow it"),
    Case("state-is-symlink", lambda s: (shutil.rmtree(s.root / ".vtool/state"),
                                        os.symlink("../../outside/victim", s.root / ".vtool/state")), STATUS,
         "a folder on its path is a symlink"),
]


def _tree(path: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[str, int]]:
    """Fingerprint everything below path (symlinks as their target, never followed), pruning the skip folders."""
    out: dict[str, tuple[str, int]] = {}
    if not path.exists():
        return out
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if Path(folder, d).relative_to(path).as_posix() not in skip]
        for name in dirs + files:
            full = Path(folder, name)
            st = os.lstat(full)
            rel = full.relative_to(path).as_posix()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("-> " + os.readlink(full), st.st_mode)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = (hashlib.sha256(full.read_bytes()).hexdigest(), st.st_mode)
            else:
                out[rel] = ("<dir>", st.st_mode)
    return out


def _fingerprint(scene: Scene) -> dict[str, object]:
    workspace = {k: v for k, v in _tree(scene.root, (".git", *SCRATCH)).items()
                 if not k.startswith(".git/") and k != ".git" and not k.startswith(SCRATCH)}
    return {
        "outside": _tree(scene.outside),
        "remote": _tree(scene.remote),
        "hooks": _tree(scene.root / ".git/hooks"),
        "git config": (scene.root / ".git/config").read_bytes(),
        "HEAD": git_in(scene.root, "rev-parse", "HEAD"),
        "workspace": workspace,
    }


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


def _wake_fifo_readers(scene: Scene) -> None:
    """Give every FIFO planted in the scene a writer: a reader blocked on one wakes up (and its row fails on time)."""
    for folder in (scene.remote, scene.project.cache_dir):
        for path in folder.rglob("*"):
            if stat.S_ISFIFO(os.lstat(path).st_mode):
                with contextlib.suppress(OSError):
                    os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))  # Linux: counts as a writer, never blocks


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_and_nothing_is_touched(scene: Scene, case: Case,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    case.plant(scene)
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    before = _fingerprint(scene)
    started = time.monotonic()
    watchdog = threading.Timer(HANG_S, _wake_fifo_readers, (scene,))
    watchdog.start()
    try:
        result = invoke(case.command, scene.root)
    finally:
        watchdog.cancel()
    elapsed = time.monotonic() - started
    if case.secret:
        assert case.secret not in result.out + result.err

    assert result.code == 1, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert case.fragment in errors[0], result.err
    assert elapsed < FAST_S, f"took {elapsed:.1f} s"
    after = _fingerprint(scene)
    for part, value in before.items():
        assert after[part] == value, f"{part} changed"
    assert not (scene.outside / "pwned").exists()


def test_a_corrupt_download_never_enters_the_cache(scene: Scene) -> None:
    good = hash_bytes(b"good bytes\n")
    store(scene.remote, b"evil bytes\n", oid=good)
    scene.project.write("evil.vtool", pointer(oid=good, size=11))
    assert invoke(PULL, scene.root).code == 1
    assert good not in scene.project.cache_oids()
    assert not [p for p in scene.project.cache_dir.rglob("*") if ".vtool-tmp-" in p.name]
    assert not scene.root.joinpath("evil").exists()


def test_a_lying_manifest_never_costs_the_cache_or_remote_a_good_object(scene: Scene) -> None:
    """A manifest giving the user's real object the wrong size: fetch, verify and verify -r keep the object."""
    model = scene.project.pointer("model.bin").oid
    manifest_at("cache", [entry("m", oid=model, size=999)])(scene)
    invoke(("fetch",), scene.root)  # may download the same bytes again; must never lose them
    for command in (("verify",), ("verify", "-r", "local")):
        result = invoke(command, scene.root)
        assert result.code == 1 and f"size mismatch: file {model}" in result.out, result
    assert scene.project.object_bytes(model) == b"\0model\1"
    digest = model.split(":", 1)[1]
    assert (scene.remote / digest[:2] / digest[2:]).read_bytes() == b"\0model\1"
    assert invoke(("checkout", "model.bin"), scene.root).code == 0
