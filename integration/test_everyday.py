"""Everyday journeys against the real S3 server: linked worktrees on one cache, and pulling part of a dataset."""

from __future__ import annotations

from pathlib import Path

from projectkit import Workdir, git_in

from integration.s3helpers import S3Bucket
from vtool.hashing import hash_bytes

V1 = {"raw/2023/a.csv": "a 2023\n", "raw/2024/b.csv": "b 2024\n", "raw/2024/c.csv": "c 2024\n", "readme": "r\n"}
V2 = {**V1, "raw/2024/b.csv": "b 2024, fixed\n", "raw/2025/d.csv": "d 2025\n"}


def _two_pushed_versions(project: Workdir, bucket: S3Bucket) -> None:
    """`data` at v1 then v2, both committed and pushed to the bucket."""
    project.ok("remote", "add", "origin", bucket.url, "--endpoint-url", bucket.server.endpoint, "--default")
    project.commit_two_versions("data", V1, V2)
    project.ok("push", "--rev", "v1")


def _clone(project: Workdir, dest: Path) -> Workdir:
    git_in(dest.parent, "clone", "-q", str(project.root), dest.name)
    return Workdir(dest)


def _oid(text: str) -> str:
    return hash_bytes(text.encode())


def _file_objects(project: Workdir) -> set[str]:
    """The cache's objects that are file contents, not folder manifests."""
    return {o for o in project.cache_oids() if not project.object_bytes(o).startswith(b"vtool-manifest 1\n")}


def _files(project: Workdir, base: str = "data") -> dict[str, str]:
    root = project.path(base)
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_worktrees_of_a_clone_share_the_objects_they_pull(project: Workdir, s3_bucket: S3Bucket,
                                                          s3_environ: dict[str, str], tmp_path: Path) -> None:
    _two_pushed_versions(project, s3_bucket)
    clone = _clone(project, tmp_path / "clone")
    clone.ok("pull")
    assert _files(clone) == V2
    wt_root = tmp_path / "wt-v1"
    clone.git("worktree", "add", "-q", "--detach", str(wt_root), "HEAD~1")
    wt = Workdir(wt_root)
    fetched = wt.ok("pull", "--json").json()["fetch"]
    assert fetched["failed"] == {} and 0 < fetched["transferred"] < len(clone.cache_oids())  # v2 shares objects
    assert _files(wt) == V1
    assert not wt.path(".vtool/cache").exists()  # the objects went to the clone's cache
    second = tmp_path / "wt-v2"
    clone.git("worktree", "add", "-q", "--detach", str(second), "HEAD")
    assert Workdir(second).ok("pull", "--json").json()["fetch"]["transferred"] == 0  # every object at hand
    back = clone.ok("checkout", "v1", "--json").json()
    assert back["fetched"] == 0 and _files(clone) == V1


def test_a_fresh_clone_pulls_one_sub_folder_and_rolls_it_back(project: Workdir, s3_bucket: S3Bucket,
                                                               s3_environ: dict[str, str], tmp_path: Path) -> None:
    _two_pushed_versions(project, s3_bucket)
    clone = _clone(project, tmp_path / "clone")
    pulled = clone.ok("pull", "data/raw/2024", "--json").json()
    assert pulled["fetch"]["failed"] == {}
    # the folder's two files, plus whatever small neighbours a coalesced pack range carried along
    assert _file_objects(clone) >= {_oid(V2["raw/2024/b.csv"]), _oid(V2["raw/2024/c.csv"])}
    assert _files(clone) == {"raw/2024/b.csv": V2["raw/2024/b.csv"], "raw/2024/c.csv": V2["raw/2024/c.csv"]}
    assert clone.status("data/raw/2024")["data/raw/2024"]["state"] == "in sync"
    assert clone.ok("pull", "data/readme", "--json").json()["fetch"]["transferred"] == 1
    assert clone.read("data/readme") == b"r\n"

    rolled = clone.ok("checkout", "--json", "v1", "--", "data/raw/2024").json()
    assert rolled["fetched"] >= 1  # v1's b.csv (and any manifests not yet here); c.csv is shared
    assert _oid(V1["raw/2024/b.csv"]) in _file_objects(clone)
    assert _files(clone, "data/raw/2024") == {"b.csv": V1["raw/2024/b.csv"], "c.csv": V1["raw/2024/c.csv"]}
    assert not clone.path("data/raw/2023").exists()  # never pulled, and a partial checkout deletes nothing else
    assert clone.git("status", "--porcelain").splitlines() == [" M data.vtool"]  # a new tree, ready to commit
    committed = clone.ok("diff", "v1", "HEAD", "data/raw/2024", "--json").json()["datasets"][0]
    assert [c["path"] for c in committed["modified"]] == ["data/raw/2024/b.csv"]
    ls = clone.ok("ls", "--json").json()["files"]
    assert {f["path"]: f["size"] for f in ls}["data/raw/2024/b.csv"] == len(V1["raw/2024/b.csv"])
    assert {f["path"]: f["size"] for f in ls}["data/raw/2025/d.csv"] == len(V2["raw/2025/d.csv"])
