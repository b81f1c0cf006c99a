"""`vtool validate`: the human, JSON and JUnit reports, the results cache, --rev without checkout, hostile tables."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from projectkit import Workdir, git_in
from test_checks import checks_yaml, failures, setup, validate

from vtool.ops.project import open_project
from vtool.ops.validate import run_for_paths

SCHEMA = "schema: {fields: [{name: id, type: integer, constraints: {unique: true}}, {name: v, type: number}]}"
V1 = "id,v\n1,0.5\n2,1.5\n"
V2 = "id,v\n1,0.5\n1,x\n3,2\n"


def test_human_output_is_one_line_per_check_with_rule_column_lines_and_count(project: Workdir) -> None:
    setup(project, {"t.csv": V2}, checks_yaml("data/t.csv", SCHEMA + "\nrows: {min: 1}"))
    result = project.fails("validate")
    assert result.out.splitlines() == [
        "FAIL  data/t.csv: schema id: duplicate value: 1 row(s), first line 3 ('1')",
        "FAIL  data/t.csv: schema v: not a number: 1 row(s), first line 3 ('x')",
        "ok    data/t.csv: rows: 3 row(s) (min 1)",
    ]
    assert result.err == "2 failed, 1 passed; 1 file(s), 0 from the results cache, 3 row(s) read\n"


def test_unchanged_data_is_not_read_again(project: Workdir) -> None:
    setup(project, {"t.csv": V1}, checks_yaml("data/t.csv", SCHEMA + "\nrows: {min: 1}"))
    first = validate(project, code=0)
    assert (first["rows_read"], first["cache_hits"], first["cache_misses"]) == (2, 0, 1)
    again = validate(project, code=0)
    assert (again["rows_read"], again["bytes_read"], again["cache_hits"]) == (0, 0, 1)
    assert all(r["cached"] for r in again["results"])
    project.write("vtool.yaml", checks_yaml("data/t.csv", SCHEMA + "\nrows: {min: 5}"))  # same table pass
    assert validate(project, code=1)["rows_read"] == 0
    project.write("vtool.yaml", checks_yaml("data/t.csv", SCHEMA.replace("number", "integer")))
    changed = validate(project, code=1)
    assert (changed["rows_read"], changed["cache_misses"]) == (2, 1)
    project.write("data/t.csv", V2)  # new data, new oid: read again, even before `vtool add`
    assert validate(project, code=1)["rows_read"] == 3


def test_a_damaged_results_entry_is_a_miss(project: Workdir) -> None:
    setup(project, {"t.csv": V1}, checks_yaml("data/t.csv", SCHEMA))
    validate(project, code=0)
    (entry,) = (project.vtool_dir / "state" / "checks").iterdir()
    entry.write_text("{broken")
    assert validate(project, code=0)["cache_misses"] == 1


def test_junit_report(project: Workdir, tmp_path: Path) -> None:
    setup(project, {"t.csv": V2}, checks_yaml("data/t.csv", SCHEMA + "\nrows: {min: 1}"))
    report = tmp_path / "report.xml"
    project.fails("validate", "--junit", str(report))
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"data/t.csv schema id", "data/t.csv schema v", "data/t.csv rows"}
    failure = cases["data/t.csv schema id"].find("failure")
    assert failure is not None and "first line 3" in (failure.get("message") or "")
    assert cases["data/t.csv rows"].find("failure") is None
    assert {c.get("classname") for c in cases.values()} == {"data/t.csv"}


@pytest.fixture
def pushed(project: Workdir, tmp_path: Path) -> tuple[Workdir, Path, str]:
    """A project with a good v1 and a bad v2 of data/, both pushed to a local remote; returns v1's sha."""
    store = tmp_path / "store"
    store.mkdir()
    project.loose_only()  # a test below damages an object file by hand
    project.add_remote(store, default=True)
    setup(project, {"t.csv": V1, "notes.txt": "n\n"}, checks_yaml("data/t.csv", SCHEMA))
    v1 = project.commit("v1")
    project.ok("push")
    project.write("data/t.csv", V2)
    project.ok("add", "data")
    project.commit("v2")
    project.ok("push")
    return project, store, v1


def test_rev_without_checkout_fetches_only_the_checked_file(pushed: tuple[Workdir, Path, str],
                                                            tmp_path: Path) -> None:
    source, _, v1 = pushed
    git_in(source.root.parent, "clone", "-q", str(source.root), str(tmp_path / "clone"))
    clone = Workdir(tmp_path / "clone")
    assert not clone.path("data").exists() and not clone.cache_oids()
    old = validate(clone, "--rev", v1, code=0)
    assert old["rev"] == v1 and old["rows_read"] == 2
    new = validate(clone, "--rev", "HEAD", code=1)
    assert [r["column"] for r in failures(new)] == ["id", "v"]
    assert not clone.path("data").exists()  # nothing checked out
    notes = {e.oid for e in clone.manifest(clone.pointer("data").oid) if e.name == "notes.txt"}
    assert not notes & clone.cache_oids()  # the file no check reads was never fetched
    assert validate(clone, "--rev", v1, code=0)["cache_hits"] == 1


def test_rev_uses_the_checks_committed_at_that_revision(pushed: tuple[Workdir, Path, str]) -> None:
    project, _, v1 = pushed
    project.write("vtool.yaml", checks_yaml("data/t.csv", "rows: {min: 100}"))
    assert validate(project, "--rev", v1, code=0)["results"][0]["rule"] == "schema"
    assert validate(project, code=1)["results"][0]["rule"] == "rows"


def test_rev_with_objects_nowhere_is_a_clear_error(pushed: tuple[Workdir, Path, str], tmp_path: Path) -> None:
    source, _, v1 = pushed
    git_in(source.root.parent, "clone", "-q", str(source.root), str(tmp_path / "clone"))
    clone = Workdir(tmp_path / "clone")
    clone.ok("remote", "remove", "origin")
    result = clone.fails("validate", "--rev", v1)
    assert result.err.startswith("error: no default remote configured")


def test_a_corrupt_cache_object_is_never_validated(pushed: tuple[Workdir, Path, str]) -> None:
    project, _, v1 = pushed
    entries = {e.name: e for e in project.manifest(git_pointer_oid(project, v1))}
    path = project.object_path(entries["t.csv"].oid)
    os.chmod(path, 0o644)
    path.write_bytes(V1.replace("0.5", "9.5").encode())
    result = project.fails("validate", "--rev", v1)
    assert "is corrupt" in result.err


def git_pointer_oid(project: Workdir, rev: str) -> str:
    from vtool import pointer as ptr

    return ptr.loads(project.git("show", f"{rev}:data.vtool").encode(), "data.vtool").oid


def test_run_for_paths_returns_the_checks_covering_outputs(project: Workdir) -> None:
    setup(project, {"t.csv": V2, "u.csv": V1}, checks_yaml("data/t.csv", SCHEMA))
    with open_project(start=project.root) as opened:
        results = run_for_paths(opened, ["data"])
        assert {(r.path, r.status) for r in results} == {("data/t.csv", "fail")}
        assert run_for_paths(opened, ["data/u.csv"]) == []
    project.commit("bad t.csv")
    project.write("data/t.csv", V1)
    project.ok("add", "data")
    with open_project(start=project.root) as opened:
        assert {r.status for r in run_for_paths(opened, ["data"])} == {"ok"}
        assert {r.status for r in run_for_paths(opened, ["data"], rev="HEAD")} == {"fail"}


HOSTILE = {
    "nul.csv": (b"a,b\n1,2\n3,\x004\n", "line 3: contains a NUL byte"),
    "quote.csv": (b'a,b\n1,2\n3,"never closed\n4,5\n', "a quoted field is never closed"),
    "list.jsonl": (b'{"a": 1}\n[1, 2]\n', "line 2: is a JSON list, not an object"),
    "bad.jsonl": (b'{"a": 1}\n{"a": \n', "line 2: not valid JSON"),
    "latin1.csv": (b"a\n\xe9t\xe9\n", "line 2: is not valid UTF-8"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_tables_give_one_clear_error_each(project: Workdir, name: str) -> None:
    data, message = HOSTILE[name]
    setup(project, {name: data}, checks_yaml(f"data/{name}", "rows: {min: 1}\nschema: {fields: [{name: a}]}"))
    result = project.fails("validate")
    (line,) = result.out.splitlines()
    assert line.startswith(f"ERROR data/{name}: read: cannot read as ") and message in line, line


GB = 1 << 30
MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from vtool.ops.validate import ValidateOptions, validate
    result = validate(ValidateOptions())
    print(json.dumps({"rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "results": [[r.status, r.message] for r in result.results]}))
""")


def test_a_one_gigabyte_single_line_is_refused_in_bounded_memory(project: Workdir) -> None:
    setup(project, {"small.csv": "a\n1\n"}, checks_yaml("data/huge.csv", "rows: {min: 1}"))
    path = project.path("data/huge.csv")
    with open(path, "wb") as out:  # sparse: "a\n" then 1 GiB without a newline, written in no time
        out.write(b"a\n")
        out.truncate(GB)
    with open(path, "r+b") as out:
        out.seek(GB - 1)
        out.write(b"x")
    with open(path, "r+b") as out:
        out.seek(2)
        out.write(b"y" * 4096)  # the line starts with text, so the length limit is what stops it
    project.ok("add", "data")
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], cwd=project.root, capture_output=True,
                          text=True, check=True)
    import json

    doc = json.loads(proc.stdout)
    (status, message), = doc["results"]
    assert status == "error" and "line 2: a line is longer than 16 MiB" in message
    assert doc["rss_kib"] < 200 * 1024, f"peak RSS {doc['rss_kib']} KiB: the line was held in memory"
