"""`vtool add` path rules found by DVC's functional tests: overlaps in one call, symlinked folders, ignored pointers."""

from __future__ import annotations

import os

from projectkit import Workdir


def test_one_add_refuses_a_folder_and_a_path_inside_it(project: Workdir) -> None:
    project.write_tree("other", {"x/a.csv": "a\n", "b.csv": "b\n"})
    for args in (("other", "other/x"), ("other/x", "other")):
        result = project.fails("add", *args)
        assert "error: other/x is inside other, which this add also tracks" in result.err
    assert not project.path("other.vtool").exists()
    assert not project.path("other/x.vtool").exists()
    assert not project.path(".gitignore").exists()


def test_one_add_naming_a_dataset_twice_tracks_it_once(project: Workdir) -> None:
    project.write_tree("data", {"a.csv": "a\n"})
    result = project.add("data", "data/", "data.vtool")
    assert [a["path"] for a in result["added"]] == ["data"]
    assert project.read(".gitignore") == b"/data\n"


def test_add_through_a_symlinked_folder_is_refused(project: Workdir) -> None:
    project.write_tree("data", {"foo": "foo\n"})
    os.symlink("data", project.path("dir"))
    result = project.fails("add", "dir/foo")
    assert "error: dir/foo: a folder on its path is a symlink; refusing to follow it" in result.err
    assert not project.path("data/foo.vtool").exists()
    assert not project.path("data/.gitignore").exists()
    project.fails("status", "dir/foo")  # every command judges paths alike


def test_a_pointer_git_ignores_is_warned_about_with_the_fix(project: Workdir) -> None:
    project.write(".gitignore", "*.vtool\n")
    project.write_tree("data", {"a.csv": "a\n"})
    result = project.ok("add", "data")
    assert ("warning: git ignores data.vtool (.gitignore:1: *.vtool); to commit it, un-ignore it with the line "
            "'!data.vtool' in .gitignore, or run: git add -f data.vtool") in result.err
    assert result.err.rstrip().endswith("git add .gitignore")  # a hint git accepts as it stands
    project.git("add", ".gitignore")
    with open(project.path(".gitignore"), "a") as f:
        f.write("!data.vtool\n")
    project.git("add", ".gitignore", "data.vtool")  # the fix works
    assert "data.vtool" in project.git("ls-files")


def test_a_pointer_in_a_subfolder_ignored_by_a_parent_rule(project: Workdir) -> None:
    project.write(".gitignore", "raw*\n")
    project.write_tree("sub/raw", {"a.csv": "a\n"})
    result = project.add("sub/raw")
    assert result["ignored"] == [{"pointer": "sub/raw.vtool", "source": ".gitignore", "line": 1, "pattern": "raw*"}]
    assert result["git_paths"] == ["sub/.gitignore"]
    assert "'!raw.vtool' in sub/.gitignore" in project.ok("add", "sub/raw").err


def test_pointers_git_does_not_ignore_get_no_warning(project: Workdir) -> None:
    project.write("model.bin", "m\n")
    project.add("model.bin")
    project.git("add", "model.bin.vtool")  # tracked: ignore rules no longer apply to it
    project.write(".gitignore", "/model.bin\n*.vtool\n!keep.vtool\n")
    project.write("keep", "k\n")
    project.write("model.bin", "m2\n")
    result = project.ok("add", "keep", "model.bin")
    assert "warning" not in result.err
    assert "git add .gitignore keep.vtool model.bin.vtool" in result.err
