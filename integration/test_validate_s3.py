"""`vtool validate --rev` in a fresh clone against a real S3 server: only the checked file is fetched."""

from __future__ import annotations

from pathlib import Path

from projectkit import Workdir, git_in

from integration.s3helpers import S3Bucket

CHECKS = """\
checks:
  data/train.csv:
    schema:
      fields:
        - {name: id, type: integer, constraints: {unique: true}}
        - {name: label, type: string, constraints: {enum: [cat, dog]}}
    rows: {min: 2}
"""


def test_validate_a_revision_from_s3_without_checkout(project: Workdir, s3_bucket: S3Bucket,
                                                      s3_environ: dict[str, str], tmp_path: Path) -> None:
    project.ok("remote", "add", "origin", s3_bucket.url, "--endpoint-url", s3_bucket.server.endpoint, "--default")
    project.write_tree("data", {"train.csv": "id,label\n1,cat\n2,dog\n", "big.bin": b"\x00" * 300_000})
    project.write("vtool.yaml", CHECKS)
    project.ok("add", "data")
    good = project.commit("v1")
    project.write("data/train.csv", "id,label\n1,cat\n1,cow\n")
    project.ok("add", "data")
    project.commit("v2")
    project.ok("push", "--rev", good)
    project.ok("push")

    git_in(project.root.parent, "clone", "-q", str(project.root), str(tmp_path / "clone"))
    clone = Workdir(tmp_path / "clone")
    doc = clone.ok("validate", "--rev", good, "--json").json()
    assert [r["status"] for r in doc["results"]] == ["ok", "ok"] and doc["rows_read"] == 2
    bad = clone.run("validate", "--json")
    assert bad.code == 1  # the workspace has no data checked out: reported, not guessed
    head = clone.run("validate", "--rev", "HEAD", "--json")
    assert head.code == 1
    failed = [(r["column"], r["lines"]) for r in head.json()["results"] if r["status"] == "fail"]
    assert failed == [("id", [3]), ("label", [3])]
    big = {e.oid for e in clone.manifest(clone.pointer("data").oid) if e.name == "big.bin"}
    assert not big & clone.cache_oids()  # no check reads big.bin: never downloaded
    assert not clone.path("data").exists()
