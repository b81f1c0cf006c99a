"""`vtool gc`: exactly the objects the kept pointers reach stay, for every way of choosing what is kept."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool import pointer as ptr
from vtool.hashing import OID_PREFIX

DATASETS = ("data", "model.bin")

V1 = {"a.csv": "alpha 1\n", "b.csv": "beta\n", "sub/c.csv": "gamma 1\n", "sub/deep/d.csv": "delta\n"}
V2 = {**V1, "a.csv": "alpha 2\n", "e.csv": "epsilon\n"}
V3 = {k: v for k, v in V2.items() if k != "b.csv"}
V4 = {**V2, "sub/c.csv": "gamma on exp\n"}
V5 = {**V3, "f.csv": "phi, never committed\n"}


@dataclass
class History:
    """A project with five versions of `data` (and of `model.bin`), and where each lives."""

    project: Workdir
    shas: dict[str, str]
    contents: dict[str, dict[str, str]]

    def objects(self, version: str) -> set[str]:
        """Every object a version's pointers reach: files and all their manifests."""
        out: set[str] = set()
        for name in DATASETS:
            out |= reach(self.project, self.pointer(version, name))
        return out

    def pointer(self, version: str, name: str) -> ptr.Pointer:
        if version == "workspace":
            return self.project.pointer(name)
        raw = self.project.git("show", f"{self.shas[version]}:{name}.vtool").encode()
        return ptr.loads(raw, f"{name}.vtool")


def reach(project: Workdir, pointer: ptr.Pointer) -> set[str]:
    """The objects one pointer reaches, read from the cache."""
    if pointer.kind == "file":
        return {pointer.oid}
    folders = project.folders(pointer.oid)
    files = {e.oid for oid in folders.values() for e in project.manifest(oid) if not e.is_dir}
    return set(folders.values()) | files


def _write_version(project: Workdir, files: dict[str, str], model: str) -> None:
    if project.path("data").exists():
        for path in sorted(project.path("data").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    project.write_tree("data", files)
    project.write("model.bin", model)
    project.ok("add", "data", "model.bin")


def build_history(project: Workdir) -> History:
    """v1 (tag v1) -> v2 -> v3 on main, v4 on branch exp from v2, v5 uncommitted in the workspace, plus junk."""
    project.loose_only()  # these tests count, remove and damage object files
    shas = {}
    _write_version(project, V1, "model 1")
    shas["v1"] = project.commit("v1")
    project.git("tag", "v1")
    _write_version(project, V2, "model 2")
    shas["v2"] = project.commit("v2")
    project.git("checkout", "-q", "-b", "exp")
    _write_version(project, V4, "model 4")
    shas["v4"] = project.commit("v4")
    project.git("checkout", "-q", "main")
    _write_version(project, V3, "model 3")
    shas["v3"] = project.commit("v3")
    _write_version(project, V5, "model 5")
    project.write("junk.bin", "reached by nothing")
    project.ok("add", "junk.bin")
    os.unlink(project.path("junk.bin"))
    os.unlink(project.path("junk.bin.vtool"))
    contents = {"v1": V1, "v2": V2, "v3": V3, "v4": V4, "workspace": V5}
    return History(project, shas, contents)


@pytest.fixture(scope="module")
def history_template(project_template: Path, tmp_path_factory: pytest.TempPathFactory) -> History:
    """The history, built once per module (about a second) and copied per test."""
    root = tmp_path_factory.mktemp("gc") / "repo"
    shutil.copytree(project_template, root, symlinks=True)
    return build_history(Workdir(root))


@pytest.fixture
def history(history_template: History, tmp_path: Path) -> History:
    root = tmp_path / "repo"
    shutil.copytree(history_template.project.root, root, symlinks=True)
    return History(Workdir(root), history_template.shas, history_template.contents)


def _sizes(project: Workdir, oids: set[str]) -> int:
    return sum(project.object_path(oid).stat().st_size for oid in oids)


KEPT = {
    "default": (["gc"], ["workspace", "v1", "v3", "v4"]),
    "workspace": (["gc", "--workspace"], ["workspace"]),
    "all-commits": (["gc", "--all-commits"], ["workspace", "v1", "v2", "v3", "v4"]),
    "rev": (["gc", "--rev", "{v2}"], ["workspace", "v1", "v2", "v3", "v4"]),
    "workspace-and-rev": (["gc", "--workspace", "--rev", "{v2}"], ["workspace", "v2"]),
}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_gc_keeps_exactly_what_the_kept_pointers_reach(history: History, case: str) -> None:
    project = history.project
    args, versions = KEPT[case]
    args = [a.format(**history.shas) for a in args]
    expected = set().union(*(history.objects(v) for v in versions))
    before = project.cache_oids()
    assert expected < before

    dry = project.ok(*args, "--json").json()
    assert project.cache_oids() == before  # a dry run deletes nothing
    assert dry["dry_run"] is True and dry["target"] == "cache"
    assert set(dry["oids"]) == before - expected
    assert dry["removed"] == len(before - expected)
    assert dry["bytes"] == _sizes(project, before - expected)
    assert dry["kept"] == len(expected)

    done = project.ok(*args, "--yes", "--json").json()
    assert project.cache_oids() == expected
    assert done["dry_run"] is False and set(done["oids"]) == set(dry["oids"])
    assert project.ok(*args, "--yes", "--json").json()["removed"] == 0


def test_gc_never_removes_the_manifests_of_kept_versions(history: History) -> None:
    project = history.project
    saved = {name: project.read(f"{name}.vtool") for name in DATASETS}
    project.ok("gc", "--yes")
    for version in ("v1", "v3", "v4"):
        project.ok("checkout", history.shas[version], "--", *DATASETS)  # from the cache alone: no remote
        _assert_data(project, version, history.contents[version])
    for name, data in saved.items():
        project.write(f"{name}.vtool", data)
    project.ok("checkout")
    _assert_data(project, "v5", V5)
    # v2 is reachable from no tip: its own objects are gone, so rolling back to it needs a remote.
    failed = project.fails("checkout", history.shas["v2"], "--", *DATASETS)
    assert "missing" in failed.err


def _assert_data(project: Workdir, version: str, files: dict[str, str]) -> None:
    found = {p.relative_to(project.path("data")).as_posix(): p.read_text()
             for p in project.path("data").rglob("*") if p.is_file()}
    assert found == files
    assert project.read("model.bin") == f"model {version[1:]}".encode()


def test_gc_refuses_when_a_kept_manifest_is_not_in_the_cache(history: History) -> None:
    project = history.project
    exp_tree = project.folders(history.pointer("v4", "data").oid)
    only_on_exp = exp_tree["sub"]
    assert only_on_exp not in history.objects("v3") | history.objects("workspace") | history.objects("v1")
    os.unlink(project.object_path(only_on_exp))
    before = project.cache_oids()

    failed = project.fails("gc", "--yes")
    assert only_on_exp in failed.err
    assert f"vtool fetch --rev {history.shas['v4'][:12]}" in failed.err
    assert project.cache_oids() == before

    # The same missing manifest is not kept with --workspace, so that gc can proceed.
    project.ok("gc", "--workspace", "--yes")
    assert project.cache_oids() == history.objects("workspace")


def test_gc_refuses_when_a_kept_manifest_is_corrupt(history: History) -> None:
    project = history.project
    root = history.pointer("v1", "data").oid
    path = project.object_path(root)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"a.csv", b"z.csv"))
    before = project.cache_oids()
    assert root in project.fails("gc", "--yes").err
    assert project.cache_oids() == before - {root}  # only the corrupt manifest is gone (quarantined on read)


def test_gc_leaves_files_that_are_not_objects_and_cleans_stale_temp_files(history: History) -> None:
    project = history.project
    cache = project.cache_dir
    strays = [cache / "README", cache / "ab" / "not-an-object", cache / "zz" / ("0" * 30), cache / "ab" / ("A" * 30)]
    for stray in strays:
        stray.parent.mkdir(exist_ok=True)
        stray.write_text("not ours")
    fresh = cache / "ab" / ".vtool-tmp-123456-fresh"
    stale = cache / ".vtool-tmp-abcdef-incoming"
    fresh.write_text("a writer may still own this")
    stale.write_text("left by a killed writer")
    old = time.time() - 7200
    os.utime(stale, (old, old))

    dry = project.ok("gc", "--workspace", "--json").json()
    assert dry["temp_files"] == 1 and stale.exists()
    project.ok("gc", "--workspace", "--yes")
    assert all(s.exists() for s in strays) and fresh.exists()
    assert not stale.exists()


def test_gc_keeps_objects_that_workspace_symlinks_point_at(project: Workdir) -> None:
    project.loose_only()  # only loose objects can be symlinked
    project.ok("config", "cache.link", "symlink")
    project.write_tree("data", {"a": "one"})
    project.ok("add", "data")
    first = project.commit("one")
    project.write_tree("data", {"a": "two"})
    project.ok("add", "data")
    project.commit("two")
    for path in project.path("data").iterdir():
        path.unlink()
    project.ok("checkout")
    link = project.path("data/a")
    assert link.is_symlink()
    project.git("checkout", first, "--", "data.vtool")  # the pointer moves on, the symlinks stay

    project.ok("gc", "--workspace", "--yes")
    assert link.read_text() == "two"


def _remote_oids(folder: Path) -> set[str]:
    return {OID_PREFIX + p.parent.name + p.name for p in folder.glob("??/*") if len(p.name) == 30}


def test_remote_gc_removes_exactly_the_unreachable_remote_objects(history: History, remote_dir: Path) -> None:
    project = history.project
    project.add_remote(remote_dir, "--loose", default=True)
    project.ok("push", "--all-commits")
    pushed = _remote_oids(remote_dir)
    everything = set().union(*(history.objects(v) for v in ("workspace", "v1", "v2", "v3", "v4")))
    assert pushed == everything
    stray = remote_dir / "ab" / "notes.txt"
    stray.parent.mkdir(exist_ok=True)
    stray.write_text("not ours")
    cache_before = project.cache_oids()

    dry = project.ok("gc", "-r", "origin", "--json").json()
    kept = set().union(*(history.objects(v) for v in ("workspace", "v1", "v3", "v4")))
    assert dry["target"] == "origin" and dry["dry_run"] is True
    assert set(dry["oids"]) == pushed - kept
    assert dry["bytes"] == _sizes(project, pushed - kept) and dry["unsized"] == 0
    assert _remote_oids(remote_dir) == pushed

    project.ok("gc", "-r", "origin", "--yes")
    assert _remote_oids(remote_dir) == kept
    assert stray.exists()
    assert project.cache_oids() == cache_before  # the cache is not touched


def test_remote_gc_fetches_kept_manifests_the_cache_lacks(history: History, remote_dir: Path) -> None:
    project = history.project
    project.add_remote(remote_dir, "--loose", default=True)
    project.ok("push", "--all-commits")
    manifest = project.folders(history.pointer("v4", "data").oid)["sub"]
    os.unlink(project.object_path(manifest))

    project.ok("gc", "-r", "origin", "--yes")
    assert project.object_path(manifest).exists()
    kept = set().union(*(history.objects(v) for v in ("workspace", "v1", "v3", "v4")))
    assert _remote_oids(remote_dir) == kept


def test_remote_gc_refuses_when_neither_cache_nor_remote_has_a_kept_manifest(history: History,
                                                                             remote_dir: Path) -> None:
    project = history.project
    project.add_remote(remote_dir, "--loose", default=True)
    project.ok("push", "--all-commits")
    manifest = project.folders(history.pointer("v4", "data").oid)["sub"]
    os.unlink(project.object_path(manifest))
    digest = manifest[len(OID_PREFIX):]
    os.unlink(remote_dir / digest[:2] / digest[2:])
    before = _remote_oids(remote_dir)

    failed = project.fails("gc", "-r", "origin", "--yes")
    assert manifest in failed.err and "origin" in failed.err
    assert _remote_oids(remote_dir) == before


def test_gc_options_that_contradict_are_refused(project: Workdir) -> None:
    assert "--workspace" in project.fails("gc", "--workspace", "--all-commits", code=2).err


def test_remote_gc_refuses_to_empty_a_remote_when_nothing_is_kept(project: Workdir, remote_dir: Path) -> None:
    stranger = remote_dir / "ab" / ("c" * 30)
    stranger.parent.mkdir()
    stranger.write_text("pushed by another project")
    project.add_remote(remote_dir, "--loose")
    assert "nothing is kept" in project.fails("gc", "-r", "origin", "--yes").err
    assert stranger.exists()


def test_gc_keeps_remote_tracking_branches_and_the_stash(history: History) -> None:
    project = history.project
    project.git("update-ref", "refs/remotes/origin/old", history.shas["v2"])
    project.git("stash", "-q")  # parks v5's pointers; the workspace pointers are v3's again
    project.ok("gc", "--yes")
    kept = set().union(*(history.objects(v) for v in ("v1", "v2", "v3", "v4")))
    project.git("stash", "pop", "-q")
    assert project.cache_oids() == kept | history.objects("workspace")
