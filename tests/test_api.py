"""`vtool.api`: a tracked file's bytes at any revision, from the cache or the remote, verified, without a checkout."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from projectkit import Workdir, git_in

from vtool import api, manifest
from vtool import pointer as ptr
from vtool.errors import CacheError, CorruptObjectError, GitError, UnsafePathError, UsageError, VtoolError
from vtool.hashing import hash_bytes

V1 = {"a.csv": "alpha 1\n", "sub/b.csv": "beta 1\n", "sub/deep/c.csv": "gamma\n", "other/x.csv": "x\n"}
V2 = {**V1, "a.csv": "alpha 2\n", "sub/b.csv": "beta 2 ünïcode\n"}


@dataclass
class Versions:
    """A project with two committed, pushed versions of `data` and `model.bin`, and its remote folder."""

    project: Workdir
    store: Path
    c1: str
    c2: str


def _commit(project: Workdir, files: dict[str, str], model: bytes, message: str) -> str:
    for path in sorted(project.path("data").rglob("*"), reverse=True) if project.path("data").exists() else []:
        path.unlink() if path.is_file() else path.rmdir()
    project.write_tree("data", files)
    project.write("model.bin", model)
    project.ok("add", "data", "model.bin")
    return project.commit(message)


@pytest.fixture
def versions(project: Workdir, tmp_path: Path) -> Versions:
    store = tmp_path / "store"
    store.mkdir()
    project.loose_only()  # these tests damage cache and remote objects by hand
    project.add_remote(store, "--loose", default=True)
    c1 = _commit(project, V1, b"weights 1\n", "v1")
    project.ok("push")
    c2 = _commit(project, V2, b"weights 2\n", "v2")
    project.ok("push")
    return Versions(project, store, c1, c2)


def fresh_clone(source: Workdir, dest: Path) -> Workdir:
    git_in(source.root.parent, "clone", "-q", str(source.root), str(dest))
    return Workdir(dest)


def manifests_on_path(project: Workdir, rev: str, parts: list[str]) -> set[str]:
    """The oids of the dataset's root manifest and of each folder manifest down to the file's folder."""
    raw = project.git("show", f"{rev}:data.vtool").encode()
    oid = ptr.loads(raw, "data.vtool").oid
    out = {oid}
    for name in parts[:-1]:
        oid = {e.name: e for e in project.manifest(oid)}[name].oid
        out.add(oid)
    return out


def test_old_revision_in_a_fresh_clone_fetches_only_what_the_path_needs(versions: Versions, tmp_path: Path) -> None:
    copy = fresh_clone(versions.project, tmp_path / "clone")
    assert not copy.cache_oids() and not copy.path("data").exists()

    data = api.read_bytes("data/sub/deep/c.csv", rev=versions.c1, repo=copy.root)
    assert data == b"gamma\n"
    expected = manifests_on_path(versions.project, versions.c1, ["sub", "deep", "c.csv"]) | {hash_bytes(data)}
    assert expected <= copy.cache_oids()
    # Tree packs come whole (a revision's tree is one read), but the only file object fetched is c.csv's.
    files = {o for o in copy.cache_oids() if not copy.object_bytes(o).startswith(b"vtool-manifest 1\n")}
    assert files == {hash_bytes(data)}

    with api.open("data/sub/b.csv", rev=versions.c1, repo=copy.root) as handle:
        assert handle.read() == b"beta 1\n"
    assert api.read_bytes("data/sub/b.csv", rev=versions.c2, repo=copy.root) == V2["sub/b.csv"].encode()
    assert not copy.path("data").exists()  # no checkout happened
    assert copy.git("status", "--porcelain") == ""


def test_a_tracked_file_itself_and_its_pointer_name(versions: Versions, tmp_path: Path) -> None:
    copy = fresh_clone(versions.project, tmp_path / "clone")
    assert api.read_bytes("model.bin", rev=versions.c1, repo=copy.root) == b"weights 1\n"
    assert api.read_bytes("model.bin.vtool", rev="HEAD", repo=copy.root) == b"weights 2\n"


def test_open_gives_a_read_only_binary_handle_or_text(versions: Versions) -> None:
    root = versions.project.root
    with api.open("data/a.csv", repo=root) as handle:
        assert handle.mode == "rb" and not handle.writable()
        with pytest.raises(io.UnsupportedOperation):
            handle.write(b"no")
        assert handle.read() == b"alpha 2\n"
    with api.open("data/sub/b.csv", repo=root, mode="r") as text:
        assert text.read() == "beta 2 ünïcode\n"
    for mode in ("w", "wb", "rb+", "a", "x"):
        with pytest.raises(ValueError, match="unsupported mode"):
            api.open("data/a.csv", repo=root, mode=mode)


def test_without_rev_the_work_tree_pointers_are_read(versions: Versions) -> None:
    project = versions.project
    project.write("data/a.csv", "alpha 3, added but not committed\n")
    project.ok("add", "data")
    assert api.read_bytes("data/a.csv", repo=project.root) == b"alpha 3, added but not committed\n"
    assert api.read_bytes("data/a.csv", rev="HEAD", repo=project.root) == b"alpha 2\n"
    project.write("data/a.csv", "alpha 4, not even added\n")
    assert api.read_bytes("data/a.csv", repo=project.root) == b"alpha 3, added but not committed\n"


def test_paths_are_relative_to_repo_or_absolute(versions: Versions, monkeypatch: pytest.MonkeyPatch) -> None:
    root = versions.project.root
    assert api.read_bytes(root / "data" / "a.csv", repo=root / "data") == b"alpha 2\n"
    assert api.read_bytes("sub/b.csv", repo=root / "data", rev=versions.c1) == b"beta 1\n"
    monkeypatch.chdir(root / "data" / "sub")
    assert api.read_bytes("b.csv") == V2["sub/b.csv"].encode()


def test_untracked_paths_are_clear_errors(versions: Versions) -> None:
    root = versions.project.root
    cases = [
        ("README.md", None, "README.md is not tracked by vtool at the workspace"),
        ("data/nope.csv", None, "data/nope.csv is not in dataset data at the workspace"),
        ("data/a.csv/deeper", None, "data/a.csv/deeper is not in dataset data"),
        ("data/sub/deep/c.csv/x", versions.c1, "is not in dataset data at revision"),
        ("model.bin/inside", None, "model.bin is a file"),
        ("data/a.csv", "HEAD~2", "data/a.csv is not tracked by vtool at revision HEAD~2"),
    ]
    for path, rev, message in cases:
        with pytest.raises(api.PathNotTrackedError, match=message) as caught:
            api.read_bytes(path, rev=rev, repo=root)
        assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, VtoolError)
    with pytest.raises(UsageError, match="data/sub is a folder"):
        api.open("data/sub", repo=root)
    with pytest.raises(UsageError, match="data is a tracked folder"):
        api.open("data", repo=root)
    with pytest.raises(GitError, match="unknown revision 'no-such-rev'"):
        api.read_bytes("data/a.csv", rev="no-such-rev", repo=root)
    with pytest.raises(UnsafePathError):
        api.read_bytes("../outside.csv", repo=root)


def test_a_corrupt_cache_object_raises_and_never_returns_bytes(versions: Versions) -> None:
    project = versions.project
    entry = {e.name: e for e in project.manifest(project.pointer("data").oid)}["a.csv"]
    path = project.object_path(entry.oid)
    os.chmod(path, 0o644)
    path.write_bytes(b"alphX 2\n")  # same size, different bytes
    with pytest.raises(CorruptObjectError, match=f"cache object {entry.oid} is corrupt"):
        api.open("data/a.csv", repo=project.root)
    with pytest.raises(CorruptObjectError):
        api.read_bytes("data/a.csv", repo=project.root)
    with pytest.raises(CorruptObjectError):
        api.open("data/a.csv", repo=project.root, mode="r")


def test_a_corrupt_manifest_raises(versions: Versions) -> None:
    project = versions.project
    root_oid = project.pointer("data").oid
    path = project.object_path(root_oid)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"a.csv", b"z.csv"))
    with pytest.raises(CorruptObjectError):
        api.read_bytes("data/sub/b.csv", repo=project.root)


def test_missing_objects_without_a_remote(versions: Versions, tmp_path: Path) -> None:
    copy = fresh_clone(versions.project, tmp_path / "clone")
    copy.ok("remote", "remove", "origin")
    with pytest.raises(CacheError, match="not in the cache, and there is no remote to fetch it from"):
        api.read_bytes("data/a.csv", repo=copy.root)


def test_an_object_the_remote_lacks(versions: Versions, tmp_path: Path) -> None:
    copy = fresh_clone(versions.project, tmp_path / "clone")
    oid = hash_bytes(b"weights 1\n")
    (versions.store / oid[7:9] / oid[9:]).unlink()
    with pytest.raises(CacheError, match="cannot fetch model.bin at revision .* from remote origin"):
        api.read_bytes("model.bin", rev=versions.c1, repo=copy.root)
    assert oid not in copy.cache_oids()


def test_a_remote_object_with_bad_bytes_never_enters_the_cache(versions: Versions, tmp_path: Path) -> None:
    copy = fresh_clone(versions.project, tmp_path / "clone")
    oid = hash_bytes(b"weights 1\n")
    stored = versions.store / oid[7:9] / oid[9:]
    os.chmod(stored, 0o644)
    stored.write_bytes(b"weights X\n")
    with pytest.raises(CacheError, match="corrupt"):
        api.read_bytes("model.bin", rev=versions.c1, repo=copy.root)
    assert oid not in copy.cache_oids()


def test_the_api_imports_no_cli_libraries() -> None:
    code = "import sys, vtool.api; print(sorted({'typer', 'rich', 'click'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_manifests_helper_matches_the_tree(versions: Versions) -> None:
    # Guards the helper the fetch test relies on: it names real folder manifests.
    project = versions.project
    oids = manifests_on_path(project, versions.c1, ["sub", "deep", "c.csv"])
    assert len(oids) == 3
    for oid in oids:
        manifest.decode(project.object_path(oid).read_bytes(), oid)
