"""`vtool add`: objects, manifests, pointers, ignore rules, the stat cache and every refusal, through the CLI."""

from __future__ import annotations

import os
import stat

import pytest
from projectkit import Workdir

from vtool import manifest
from vtool.hashing import hash_bytes
from vtool.manifest import Entry

EMPTY_OID = hash_bytes(b"")  # xxh128:99aa06d3014798d86001c324468d497f
EMPTY_MANIFEST = b"vtool-manifest 1\n"


def assert_cache_is_sound(project: Workdir) -> None:
    """Every object hashes to its own name, and every object file and pack is read-only."""
    oids = project.cache_oids()
    assert oids
    for oid in oids:
        assert hash_bytes(project.object_bytes(oid)) == oid
    stored = [p for p in project.cache_dir.glob("??/*") if len(p.name) == 30]
    stored += list(project.cache_dir.glob("packs/*.pack"))
    assert stored
    for path in stored:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o444, path


def test_add_a_file(project: Workdir) -> None:
    project.write("model.bin", b"weights v1\n")
    result = project.ok("add", "model.bin")
    oid = hash_bytes(b"weights v1\n")
    assert project.read("model.bin.vtool") == (
        f"version: 1\ntype: file\npath: model.bin\noid: {oid}\nsize: 11\n".encode()
    )
    assert project.read(".gitignore") == b"/model.bin\n"
    assert project.object_bytes(oid) == b"weights v1\n"
    assert project.cache_oids() == {oid}
    assert_cache_is_sound(project)
    assert "added model.bin: 1 file(s), 11 bytes, 1 hashed" in result.err
    assert "To track the changes with git, run:\n    git add .gitignore model.bin.vtool\n" in result.err
    assert result.out == ""


def test_add_json_reports_what_was_done(project: Workdir) -> None:
    project.write("model.bin", b"w")
    assert project.add("model.bin") == {
        "added": [{"path": "model.bin", "pointer": "model.bin.vtool", "kind": "file", "oid": hash_bytes(b"w"),
                   "size": 1, "files": 1, "hashed": 1, "changed": True}],
        "git_paths": [".gitignore", "model.bin.vtool"],
        "ignored": [],
    }


def test_add_a_nested_folder_writes_one_manifest_per_folder(project: Workdir) -> None:
    project.write_tree("data", {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n", "sub/deeper/c.txt": b"gamma\n"})
    added = project.add("data")["added"][0]
    deeper_oid, deeper = manifest.build([Entry("c.txt", "f", hash_bytes(b"gamma\n"), 6, 1)])
    sub_oid, sub = manifest.build([Entry("b.txt", "f", hash_bytes(b"beta\n"), 5, 1),
                                   Entry("deeper", "d", deeper_oid, 6, 1)])
    root_oid, root = manifest.build([Entry("a.txt", "f", hash_bytes(b"alpha\n"), 6, 1),
                                     Entry("sub", "d", sub_oid, 11, 2)])
    assert (added["kind"], added["oid"], added["size"], added["files"]) == ("dir", root_oid, 17, 3)
    assert project.read("data.vtool") == (
        f"version: 1\ntype: dir\npath: data\noid: {root_oid}\nsize: 17\nfiles: 3\n".encode()
    )
    for oid, data in ((root_oid, root), (sub_oid, sub), (deeper_oid, deeper)):
        assert project.object_bytes(oid) == data
    files = {hash_bytes(b"alpha\n"), hash_bytes(b"beta\n"), hash_bytes(b"gamma\n")}
    assert project.cache_oids() == files | {root_oid, sub_oid, deeper_oid}
    assert_cache_is_sound(project)


def test_add_empty_file_and_empty_folders(project: Workdir) -> None:
    project.write("data/empty.txt", b"")
    (project.root / "data" / "nothing" / "deeper").mkdir(parents=True)
    added = project.add("data")["added"][0]
    nothing = project.manifest(added["oid"])
    empty_dir_oid = hash_bytes(EMPTY_MANIFEST)
    deeper_entry = Entry("deeper", "d", empty_dir_oid, 0, 0)
    nothing_oid, _ = manifest.build([deeper_entry])
    assert nothing == [Entry("empty.txt", "f", EMPTY_OID, 0, 1), Entry("nothing", "d", nothing_oid, 0, 0)]
    assert project.object_bytes(empty_dir_oid) == EMPTY_MANIFEST
    assert project.object_bytes(EMPTY_OID) == b""
    assert (added["size"], added["files"]) == (0, 1)


def test_add_an_empty_folder(project: Workdir) -> None:
    (project.root / "void").mkdir()
    added = project.add("void")["added"][0]
    assert (added["oid"], added["size"], added["files"]) == (hash_bytes(EMPTY_MANIFEST), 0, 0)


def test_add_records_the_executable_bit(project: Workdir) -> None:
    project.write("tools/run.sh", b"#!/bin/sh\necho hi\n", executable=True)
    project.write("tools/notes.txt", b"plain\n")
    added = project.add("tools")["added"][0]
    kinds = {e.name: e.kind for e in project.manifest(added["oid"])}
    assert kinds == {"run.sh": "x", "notes.txt": "f"}
    # The object itself is stored read-only without exec bits: the bit lives in the manifest.
    assert_cache_is_sound(project)


def test_add_a_single_executable_file_tracks_its_content(project: Workdir) -> None:
    project.write("run.sh", b"#!/bin/sh\n", executable=True)
    assert project.add("run.sh")["added"][0]["oid"] == hash_bytes(b"#!/bin/sh\n")


def test_add_unicode_and_spaces_in_names(project: Workdir) -> None:
    project.write("données été/sous dossier/fichier avec espaces.txt", "é".encode())
    project.write("données été/日本語.csv", b"1,2\n")
    result = project.ok("add", "données été")
    assert "    git add .gitignore 'données été.vtool'\n" in result.err  # ready to paste into a shell
    pointer = project.pointer("données été")
    assert (pointer.path, pointer.files, pointer.size) == ("données été", 2, 6)
    names = {e.name for e in project.manifest(pointer.oid)}
    assert names == {"sous dossier", "日本語.csv"}
    assert project.read(".gitignore") == "/données été\n".encode()
    assert project.git("status", "--porcelain", "-z", "--untracked-files=all").split("\0")[:-1] == [
        "?? .gitignore", "?? données été.vtool",
    ]


def test_add_in_a_subfolder_puts_pointer_and_ignore_rule_beside_the_data(project: Workdir) -> None:
    project.write("exp/run1/data/x.csv", b"x")
    result = project.ok("add", "exp/run1/data/")
    assert project.read("exp/run1/.gitignore") == b"/data\n"
    assert project.pointer("exp/run1/data").path == "data"
    assert "git add exp/run1/.gitignore exp/run1/data.vtool" in result.err
    assert not (project.root / ".gitignore").exists()


def test_add_from_a_subfolder_resolves_paths_against_the_cwd(project: Workdir) -> None:
    project.write("exp/data/x.csv", b"x")
    result = project.ok("add", "data", cwd="exp")
    assert (project.root / "exp" / "data.vtool").is_file()
    assert "git add exp/.gitignore exp/data.vtool" in result.err


def test_add_by_pointer_name_or_trailing_slash_is_the_same_dataset(project: Workdir) -> None:
    project.write("data/x", b"x")
    first = project.add("data/")["added"][0]
    again = project.add("data.vtool")["added"][0]
    assert (again["path"], again["oid"], again["changed"]) == ("data", first["oid"], False)


def test_add_several_paths_at_once(project: Workdir) -> None:
    project.write("a.bin", b"a")
    project.write("b/c.bin", b"c")
    result = project.add("a.bin", "b")
    assert [a["path"] for a in result["added"]] == ["a.bin", "b"]
    assert result["git_paths"] == [".gitignore", "a.bin.vtool", "b.vtool"]
    assert project.read(".gitignore") == b"/a.bin\n/b\n"


def test_ignore_rules_hide_the_data_but_not_the_pointer(project: Workdir) -> None:
    project.write(".gitignore", b"*.log")  # no trailing newline: vtool must not glue its line onto it
    project.write("we*ird [name]/x", b"x")
    project.write("plain/x", b"x")
    project.ok("add", "we*ird [name]", "plain")
    assert project.read(".gitignore") == b"*.log\n/we\\*ird \\[name]\n/plain\n"
    status = project.git("status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == ['?? "we*ird [name].vtool"', "?? .gitignore", "?? plain.vtool"]
    project.ok("add", "plain")
    assert project.read(".gitignore") == b"*.log\n/we\\*ird \\[name]\n/plain\n"  # no duplicate line


def test_readd_unchanged_hashes_nothing_and_leaves_the_pointer_untouched(project: Workdir) -> None:
    project.write_tree("data", {f"f{i}.txt": f"{i}\n" for i in range(20)})
    project.write("data/sub/g.txt", b"g")
    assert project.add("data")["added"][0]["hashed"] == 21
    pointer = project.root / "data.vtool"
    before = (pointer.read_bytes(), os.stat(pointer).st_mtime_ns, os.stat(pointer).st_ino)
    cache_before = project.cache_oids()
    result = project.ok("add", "data")  # right away: the first add waited out the racy window
    assert "unchanged data: 21 file(s), 51 bytes, 0 hashed" in result.err
    again = project.add("data")["added"][0]
    assert (again["hashed"], again["changed"]) == (0, False)
    assert (pointer.read_bytes(), os.stat(pointer).st_mtime_ns, os.stat(pointer).st_ino) == before
    assert project.cache_oids() == cache_before


def test_readd_an_unchanged_single_file_hashes_nothing(project: Workdir) -> None:
    project.write("model.bin", b"w")
    project.add("model.bin")
    assert project.add("model.bin")["added"][0]["hashed"] == 0


def test_readd_after_one_change_rewrites_only_the_manifests_on_its_path(project: Workdir) -> None:
    for a in ("a1", "a2"):
        for b in ("b1", "b2"):
            for c in ("c1", "c2"):
                project.write(f"data/{a}/{b}/{c}/f.txt", f"{a}{b}{c}")
    old = project.add("data")["added"][0]
    old_folders, old_cache = project.folders(old["oid"]), project.cache_oids()
    project.write("data/a1/b2/c1/f.txt", b"changed!")
    new = project.add("data")["added"][0]
    assert (new["hashed"], new["changed"], new["size"]) == (1, True, old["size"] + 2)
    new_folders = project.folders(new["oid"])
    changed = sorted(p for p in old_folders if old_folders[p] != new_folders[p])
    assert changed == ["", "a1", "a1/b2", "a1/b2/c1"]
    assert project.cache_oids() - old_cache == {new_folders[p] for p in changed} | {hash_bytes(b"changed!")}
    assert project.pointer("data").oid == new["oid"]


def test_readd_after_adding_and_deleting_files(project: Workdir) -> None:
    project.write_tree("data", {"keep": b"k", "gone": b"g"})
    project.add("data")
    os.unlink(project.root / "data" / "gone")
    project.write("data/new", b"n")
    added = project.add("data")["added"][0]
    assert added["hashed"] == 1
    assert [e.name for e in project.manifest(added["oid"])] == ["keep", "new"]


def test_meta_and_unknown_keys_written_by_hand_survive_readd(project: Workdir) -> None:
    project.write("data/a", b"1")
    project.add("data")
    pointer = project.root / "data.vtool"
    notes = b"x-ticket: DATA-12\nmeta:\n  owner: ana\n  description: churn, v2\n"
    pointer.write_bytes(pointer.read_bytes() + notes)
    project.write("data/a", b"2")
    added = project.add("data")["added"][0]
    assert pointer.read_bytes() == (
        f"version: 1\ntype: dir\npath: data\noid: {added['oid']}\nsize: 1\nfiles: 1\n".encode() + notes
    )


def test_readd_refuses_to_drop_a_broken_pointer(project: Workdir) -> None:
    project.write("data/a", b"1")
    project.add("data")
    project.write("data.vtool", b"version: 1\ntype: dir\npath: data\noid: nope\n")
    result = project.fails("add", "data")
    assert "cannot update data.vtool: data.vtool: invalid oid 'nope'" in result.err
    assert "fix or delete data.vtool, then add again" in result.err
    assert project.read("data.vtool") == b"version: 1\ntype: dir\npath: data\noid: nope\n"


def test_a_file_can_become_a_folder(project: Workdir) -> None:
    project.write("thing", b"file")
    project.add("thing")
    os.unlink(project.root / "thing")
    project.write("thing/inner", b"now a folder")
    added = project.add("thing")["added"][0]
    assert (added["kind"], added["files"]) == ("dir", 1)
    assert project.pointer("thing").kind == "dir"


def test_add_restores_objects_missing_from_the_cache(project: Workdir) -> None:
    project.loose_only()
    project.write_tree("data", {"a": b"1", "sub/b": b"2"})
    oid = project.add("data")["added"][0]["oid"]
    full = project.cache_oids()
    os.unlink(project.object_path(hash_bytes(b"2")))
    os.unlink(project.object_path(oid))
    project.add("data")  # the stat cache vouches for the files, but the objects must come back
    assert project.cache_oids() == full
    assert_cache_is_sound(project)


def test_add_writes_the_stat_cache_in_vtool_state(project: Workdir) -> None:
    project.write("model.bin", b"w")
    project.add("model.bin")
    assert (project.vtool_dir / "state" / "stat.db").is_file()
    assert project.git("status", "--porcelain", "--untracked-files=all", ".vtool") == ""


# --- refusals -------------------------------------------------------------------------------------------


def _refused(project: Workdir, *args: str, message: str, code: int = 1) -> None:
    before = project.snapshot()
    result = project.fails("add", *args, code=code)
    assert message in result.err, result.err
    assert "Traceback" not in result.err
    after = project.snapshot()
    assert {k: v for k, v in after.items() if not k.startswith(".vtool/")} == \
        {k: v for k, v in before.items() if not k.startswith(".vtool/")}
    assert project.cache_oids() == set()


@pytest.mark.parametrize(("target", "message"), [
    (".git", "refusing to track anything inside .git/"),
    (".git/config", "refusing to track anything inside .git/"),
    (".vtool", "refusing to track anything inside .vtool/"),
    (".vtool/config.yaml", "refusing to track anything inside .vtool/"),
    ("../outside", "outside the repository"),
    ("/etc/hostname", "outside the repository"),
])
def test_add_refuses_paths_vtool_must_not_track(project: Workdir, target: str, message: str) -> None:
    (project.root.parent / "outside").write_bytes(b"x")
    _refused(project, target, message=message)


def test_add_refuses_a_path_git_tracks_and_says_how_to_untrack_it(project: Workdir) -> None:
    project.write("data/a.csv", b"1")
    project.commit("data in git")
    _refused(project, "data", message="data is tracked by git")
    result = project.fails("add", "data/a.csv")
    assert "untrack it first: git rm -r --cached data/a.csv && git commit" in result.err
    result = project.fails("add", "data")
    assert "git rm -r --cached data" in result.err


def test_add_refuses_a_staged_path(project: Workdir) -> None:
    project.write("model.bin", b"w")
    project.git("add", "model.bin")
    _refused(project, "model.bin", message="model.bin is tracked by git")


def test_add_refuses_a_missing_path(project: Workdir) -> None:
    _refused(project, "nope", message="nope: no such file or folder", code=2)


def test_add_without_paths_is_a_usage_error(project: Workdir) -> None:
    result = project.fails("add", code=2)
    assert "Missing argument" in result.err


def test_add_refuses_a_symlink_inside_a_folder(project: Workdir) -> None:
    project.write("data/real.txt", b"x")
    os.symlink("real.txt", project.root / "data" / "link.txt")
    _refused(project, "data", message="data/link.txt is a symlink; vtool does not track symlinks")


def test_add_refuses_a_symlinked_subfolder_and_a_dangling_link(project: Workdir) -> None:
    project.write("data/a", b"x")
    (project.root / "elsewhere").mkdir()
    os.symlink(project.root / "elsewhere", project.root / "data" / "sub")
    _refused(project, "data", message="data/sub is a symlink")
    os.unlink(project.root / "data" / "sub")
    os.symlink("missing", project.root / "data" / "dangling")
    _refused(project, "data", message="data/dangling is a symlink")


def test_add_refuses_a_symlink_as_the_tracked_path(project: Workdir) -> None:
    project.write("real/a", b"x")
    os.symlink("real", project.root / "alias")
    _refused(project, "alias", message="alias is a symlink; vtool tracks files and folders, not links")


def test_add_refuses_a_nested_git_folder(project: Workdir) -> None:
    project.write("data/a", b"x")
    project.write("data/sub/.git/HEAD", b"ref: refs/heads/main\n")
    _refused(project, "data", message="'.git' is reserved")


def test_add_refuses_a_fifo(project: Workdir) -> None:
    project.write("data/a", b"x")
    os.mkfifo(project.root / "data" / "pipe")
    _refused(project, "data", message="data/pipe is not a regular file or folder")


def test_add_refuses_a_path_inside_a_tracked_dataset(project: Workdir) -> None:
    project.write_tree("data", {"a": b"1", "sub/b": b"2"})
    project.add("data")
    cache = project.cache_oids()
    result = project.fails("add", "data/sub")
    assert "data/sub is inside data, which vtool already tracks" in result.err
    assert not (project.root / "data" / "sub.vtool").exists()
    assert project.cache_oids() == cache


def test_add_refuses_a_folder_around_a_tracked_dataset(project: Workdir) -> None:
    project.write("outer/inner/a", b"1")
    project.add("outer/inner")
    result = project.fails("add", "outer")
    assert "outer contains outer/inner, which vtool already tracks" in result.err
    assert "remove outer/inner.vtool first" in result.err
    assert not (project.root / "outer.vtool").exists()


def test_add_refuses_a_name_that_is_not_utf8(project: Workdir) -> None:
    project.write("data/ok", b"1")
    (project.root / "data" / os.fsdecode(b"bad\xff")).write_bytes(b"2")
    _refused(project, "data", message="is not valid UTF-8")
    (project.root / os.fsdecode(b"top\xfe")).write_bytes(b"3")
    _refused(project, os.fsdecode(b"top\xfe"), message="is not valid UTF-8")


def test_add_refuses_a_name_that_is_not_nfc(project: Workdir) -> None:
    project.write("data/e\u0301.txt", b"1")
    _refused(project, "data", message="is not in Unicode NFC form")


def test_the_worked_example_of_the_pointer_spec(project: Workdir) -> None:
    """docs/pointer-spec.md quotes these bytes and oids: keep the two in step."""
    project.write("data/README.md", b"Churn data.\n")
    (project.path("data") / "raw").mkdir()
    project.write("data/scripts/prepare.sh", b"#!/bin/sh\necho prepare\n", executable=True)
    project.write("data/train.csv", b"id,label\n1,cat\n2,dog\n")
    project.write("model.bin", b"weights")
    project.add("data", "model.bin")
    assert project.read("data.vtool") == (
        b"version: 1\ntype: dir\npath: data\noid: xxh128:59165a63f3adef456afc2b334078b2e1\nsize: 56\nfiles: 3\n"
    )
    assert project.read("model.bin.vtool") == (
        b"version: 1\ntype: file\npath: model.bin\noid: xxh128:bdbda1eb6e05adc4800d98e5524fefbc\nsize: 7\n"
    )
    root = project.object_bytes("xxh128:59165a63f3adef456afc2b334078b2e1")
    assert root == (
        b"vtool-manifest 1\n"
        b"f xxh128:583cf421c95eabf2329c77b2ada41315 12 1 README.md\n"
        b"d xxh128:f5487414eb4102f51f8ba2ad63d9983d 0 0 raw\n"
        b"d xxh128:7c61564c381ff1c163b44b8d41cad6ff 23 1 scripts\n"
        b"f xxh128:5aed394176e4c7ccafc95a0b36604651 21 1 train.csv\n"
    )
    assert len(root) == 236
    assert project.object_bytes("xxh128:7c61564c381ff1c163b44b8d41cad6ff") == (
        b"vtool-manifest 1\nx xxh128:6f45373ad9c571006b8ece98dd80b1e3 23 1 prepare.sh\n"
    )
    assert project.cache_oids() == {
        "xxh128:583cf421c95eabf2329c77b2ada41315", "xxh128:6f45373ad9c571006b8ece98dd80b1e3",
        "xxh128:5aed394176e4c7ccafc95a0b36604651", "xxh128:59165a63f3adef456afc2b334078b2e1",
        "xxh128:7c61564c381ff1c163b44b8d41cad6ff", "xxh128:f5487414eb4102f51f8ba2ad63d9983d",
        "xxh128:bdbda1eb6e05adc4800d98e5524fefbc",
    }


def test_running_the_printed_git_add_leaves_a_clean_tree(project: Workdir) -> None:
    project.write("exp/data/a", b"1")
    project.write("model.bin", b"w")
    result = project.add("exp/data", "model.bin")
    project.commit("data v1", *result["git_paths"])
    assert project.git("status", "--porcelain", "--untracked-files=all") == ""


def test_touching_a_file_rehashes_it_but_changes_nothing(project: Workdir) -> None:
    project.write("data/a", b"1")
    project.add("data")
    pointer = project.path("data.vtool")
    before = os.stat(pointer).st_mtime_ns
    later = os.stat(project.path("data/a")).st_mtime_ns + 5_000_000_000
    os.utime(project.path("data/a"), ns=(later, later))
    added = project.add("data")["added"][0]
    assert (added["hashed"], added["changed"]) == (1, False)
    assert os.stat(pointer).st_mtime_ns == before


def test_add_removes_temp_files_a_killed_pointer_write_left_behind(project: Workdir) -> None:
    import os
    import time

    project.write("data/a.txt", "a")
    stale = project.write(".vtool-tmp-0123456789ab-data.vtool", "half a pointer")
    fresh = project.write(".vtool-tmp-ba9876543210-data.vtool", "another writer, right now")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    project.add("data")
    assert not stale.exists() and fresh.exists()
    assert project.pointer("data").files == 1
