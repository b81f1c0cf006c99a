"""diff counts changes by kind and keeps the first of each; --json streams every change from sorted spool runs, in
the document (bytes included) the listed diff printed."""

from __future__ import annotations

import json
import os

import pytest
from projectkit import Workdir

from vtool.hashing import hash_bytes
from vtool.ops import compare

OLD = {"img/x.bin": "pixels\n", "img.csv": "index one\n", "a/copy1": "same bytes\n", "a/copy2": "same bytes\n",
       "keep.txt": "kept\n", "gone.txt": "going\n", "run.sh": "echo\n", "f3": "three\n"}
NEW = {"img/x.bin": "pixels two\n", "img.csv": "index two\n", "b/copy": "same bytes\n", "keep.txt": "kept\n",
       "new.txt": "new!\n", "run.sh": "echo\n", "f3": "three\n", "z/f3": "three\n"}
# Between OLD and NEW: one of the two copies is renamed (the first in path order), the other deleted; f3 is
# both kept and copied (an added file whose bytes were not deleted is added); run.sh only turns executable.
MANY = 70


def _oid(text: str) -> str:
    return hash_bytes(text.encode())


def _change(path: str, old: str | None, new: str | None, old_path: str | None = None) -> dict[str, object]:
    return {"path": f"data/{path}", "old_size": None if old is None else len(old),
            "new_size": None if new is None else len(new), "old_oid": None if old is None else _oid(old),
            "new_oid": None if new is None else _oid(new), "old_path": old_path and f"data/{old_path}"}


def _old_then_new(project: Workdir) -> str:
    """Commit OLD, then make the workspace NEW (run.sh executable); return OLD's commit."""
    project.write_tree("data", OLD)
    project.add("data")
    first = project.commit("old")
    for rel in set(OLD) - set(NEW):
        project.path(f"data/{rel}").unlink()
    project.write_tree("data", NEW)
    os.chmod(project.path("data/run.sh"), 0o755)
    return first


@pytest.fixture
def changed(project: Workdir) -> tuple[Workdir, str, str]:
    """OLD committed, then NEW committed: the two shas."""
    first = _old_then_new(project)
    project.add("data")
    return project, first, project.commit("new")


def _expected(doc: dict) -> str:
    """The document of OLD -> NEW as the listed diff printed it: json.dumps of every change, each kind in path
    order ("img.csv" before "img/x.bin", as a plain sort of the paths has it)."""
    ds = doc["datasets"][0]
    expected = {"a": doc["a"], "b": doc["b"], "datasets": [{
        "path": "data", "status": "modified", "old": ds["old"], "new": ds["new"],
        "added": [_change("new.txt", None, NEW["new.txt"]), _change("z/f3", None, NEW["z/f3"])],
        "deleted": [_change("a/copy2", OLD["a/copy2"], None), _change("gone.txt", OLD["gone.txt"], None)],
        "modified": [_change("img.csv", OLD["img.csv"], NEW["img.csv"]),
                     _change("img/x.bin", OLD["img/x.bin"], NEW["img/x.bin"]),
                     _change("run.sh", OLD["run.sh"], NEW["run.sh"])],
        "renamed": [_change("b/copy", OLD["a/copy1"], NEW["b/copy"], "a/copy1")],
        "totals": {"added": 2, "deleted": 2, "modified": 3, "renamed": 1, "added_bytes": 11,
                   "deleted_bytes": 17, "modified_bytes_delta": 4}}]}
    return json.dumps(expected, indent=2, ensure_ascii=False) + "\n"


def test_json_of_every_kind_of_change_is_the_listed_document_byte_for_byte(changed: tuple[Workdir, str, str]) -> None:
    project, first, second = changed
    out = project.ok("diff", first, second, "--json").out
    assert out == _expected(json.loads(out))


def test_json_is_the_same_when_every_kind_spills_into_many_runs(
        changed: tuple[Workdir, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    project, first, second = changed
    project.write_tree("data", {f"many/{i:03d}.txt": f"file {i}\n" for i in range(MANY)})
    project.add("data")
    third = project.commit("many")
    whole = project.ok("diff", first, third, "--json").out
    human = project.ok("diff", first, third).out
    monkeypatch.setattr(compare, "SPOOL_RUN", 3)
    assert project.ok("diff", first, third, "--json").out == whole
    assert project.ok("diff", first, third).out == human
    added = [c["path"] for c in json.loads(whole)["datasets"][0]["added"]]
    assert added == sorted(added) and len(added) == MANY + 2


def test_human_output_shows_the_first_rows_and_counts_the_rest(project: Workdir) -> None:
    project.write_tree("data", {"old.txt": "old\n"})
    project.add("data")
    first = project.commit("one")
    project.write_tree("data", {f"n{i:03d}.txt": f"new {i}\n" for i in range(MANY)})
    project.path("data/old.txt").unlink()
    project.add("data")
    project.commit("two")
    out = project.ok("diff", first, "HEAD").out
    rows = [line.split()[1] for line in out.splitlines() if line.startswith("added")]
    assert rows == [f"data/n{i:03d}.txt" for i in range(compare.SHOWN_CHANGES)]
    assert f"... and {MANY + 1 - compare.SHOWN_CHANGES} more (use --json for all)" in out
    assert f"+{MANY} -1 ~0 renamed 0" in out


def test_workspace_diff_counts_and_lists_as_a_diff_of_commits_does(project: Workdir) -> None:
    _old_then_new(project)
    out = project.ok("diff", "--json").out
    assert json.loads(out)["b"] == "workspace"
    assert out == _expected(json.loads(out))
    assert "+2 -2 ~3 renamed 1" in project.ok("diff").out
