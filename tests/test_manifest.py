"""Directory manifests: canonical bytes, order-independent oids, strict decoding, tree diffs, partial rewrites."""

from __future__ import annotations

from pathlib import Path

import pytest
from projectkit import ManifestStore

from vtool import manifest
from vtool.errors import FormatError, UnsafePathError
from vtool.hashing import hash_bytes, hash_stream
from vtool.manifest import Entry
from vtool.statcache import StatCache
from vtool.workspace import scan

HELLO = hash_bytes(b"hello\n")  # xxh128:6bba86c7e069f56d5a10b435f1c8e49c
SCRIPT = hash_bytes(b"#!/bin/sh\n")  # xxh128:4e4bede9319ea1b966fa03988755fda8
C = hash_bytes(b"c")  # xxh128:12d8bdd17f74de858c40219a46b9f81b

SUB = [Entry("c.txt", "f", C, 1, 1)]
SUB_BYTES = b"vtool-manifest 1\nf xxh128:12d8bdd17f74de858c40219a46b9f81b 1 1 c.txt\n"
SUB_OID = "xxh128:f0d042298629fcc90bf2b80e0457efac"
EMPTY_BYTES = b"vtool-manifest 1\n"
EMPTY_OID = "xxh128:f5487414eb4102f51f8ba2ad63d9983d"
ROOT = [
    Entry("run.sh", "x", SCRIPT, 10, 1),
    Entry("B.txt", "f", HELLO, 6, 1),
    Entry("sub", "d", SUB_OID, 1, 1),
    Entry("empty", "d", EMPTY_OID, 0, 0),
    Entry("é", "f", HELLO, 6, 1),
]
ROOT_BYTES = (
    b"vtool-manifest 1\n"
    b"f xxh128:6bba86c7e069f56d5a10b435f1c8e49c 6 1 B.txt\n"
    b"d xxh128:f5487414eb4102f51f8ba2ad63d9983d 0 0 empty\n"
    b"x xxh128:4e4bede9319ea1b966fa03988755fda8 10 1 run.sh\n"
    b"d xxh128:f0d042298629fcc90bf2b80e0457efac 1 1 sub\n"
    b"f xxh128:6bba86c7e069f56d5a10b435f1c8e49c 6 1 \xc3\xa9\n"
)
ROOT_OID = "xxh128:72afbb24c277957b1b5acb7bb1ea15b4"


def test_canonical_bytes_of_a_small_tree() -> None:
    assert manifest.build(SUB) == (SUB_OID, SUB_BYTES)
    assert manifest.build([]) == (EMPTY_OID, EMPTY_BYTES)
    assert manifest.build(ROOT) == (ROOT_OID, ROOT_BYTES)
    assert hash_bytes(ROOT_BYTES) == ROOT_OID


def test_same_tree_same_oid_whatever_the_input_order() -> None:
    assert manifest.build(reversed(ROOT)) == (ROOT_OID, ROOT_BYTES)
    assert manifest.build(sorted(ROOT, key=lambda e: e.oid)) == (ROOT_OID, ROOT_BYTES)


def test_entries_sort_by_utf8_bytes_not_by_locale_or_case() -> None:
    names = ["é", "z", "a-b", "a", "Z", "a.b", "A", "a b", "ä"]
    data = manifest.encode(Entry(n, "f", HELLO, 6, 1) for n in names)
    assert [line.split(" ", 4)[4] for line in data.decode().splitlines()[1:]] == [
        "A", "Z", "a", "a b", "a-b", "a.b", "z", "ä", "é",
    ]


def test_decode_round_trips() -> None:
    assert manifest.decode(ROOT_BYTES, ROOT_OID) == sorted(ROOT, key=manifest.sort_key)
    assert manifest.decode(EMPTY_BYTES, EMPTY_OID) == []


def test_names_with_spaces_survive_the_line_format() -> None:
    entries = [Entry(" lead", "f", HELLO, 6, 1), Entry("two  spaces ", "f", HELLO, 6, 1)]
    _, data = manifest.build(entries)
    assert manifest.decode(data, "m") == entries


LINE = "f " + HELLO + " 6 1 "


def _one(line: str) -> bytes:
    return b"vtool-manifest 1\n" + line.encode("utf-8", "surrogatepass") + b"\n"


# (id, manifest bytes, fragment of the error message)
INVALID = [
    ("empty", b"", "bad header"),
    ("bad-header", b"vtool-manifest 2\n", "bad header"),
    ("no-header", (LINE + "a\n").encode(), "bad header"),
    ("header-without-newline", b"vtool-manifest 1", "bad header"),
    ("unsorted", _one(LINE + "b") + (LINE + "a\n").encode(), "not sorted and unique"),
    ("duplicate", _one(LINE + "a") + (LINE + "a\n").encode(), "not sorted and unique"),
    ("duplicate-file-and-dir", _one("d " + EMPTY_OID + " 0 0 a") + (LINE + "a\n").encode(), "not sorted and unique"),
    ("bad-oid", _one("f xxh128:XYZ 6 1 a"), "malformed manifest line"),
    ("uppercase-oid", _one("f " + HELLO.upper().replace("XXH128", "xxh128") + " 6 1 a"), "malformed manifest line"),
    ("bad-kind", _one("l " + HELLO + " 6 1 a"), "malformed manifest line"),
    ("too-few-fields", _one("f " + HELLO + " 6 1"), "malformed manifest line"),
    ("blank-line", b"vtool-manifest 1\n\n", "malformed manifest line"),
    ("tab-separated", _one("f\t" + HELLO + "\t6\t1\ta"), "malformed manifest line"),
    ("negative-size", _one("f " + HELLO + " -6 1 a"), "bad size or file count"),
    ("size-not-a-number", _one("f " + HELLO + " six 1 a"), "bad size or file count"),
    ("size-leading-zero", _one("f " + HELLO + " 06 1 a"), "bad size or file count"),
    ("size-unicode-digit", _one("f " + HELLO + " \u0666 1 a"), "bad size or file count"),
    ("size-superscript", _one("f " + HELLO + " \u00b2 1 a"), "bad size or file count"),
    ("file-with-two-files", _one("f " + HELLO + " 6 2 a"), "bad size or file count"),
    ("exec-with-zero-files", _one("x " + HELLO + " 6 0 a"), "bad size or file count"),
    ("name-dotdot", _one(LINE + ".."), "must be a single name"),
    ("name-dot", _one(LINE + "."), "must be a single name"),
    ("name-slash", _one(LINE + "a/b"), "must be a single name"),
    ("name-backslash", _one(LINE + "a\\b"), "must be a single name"),
    ("name-absolute", _one(LINE + "/etc"), "absolute path"),
    ("name-git", _one(LINE + ".git"), "'.git' is reserved"),
    ("name-vtool", _one(LINE + ".Vtool"), "'.Vtool' is reserved"),
    ("name-empty", _one(LINE), "empty name"),
    ("name-not-nfc", _one(LINE + "e\u0301"), "is not in Unicode NFC form"),
    ("name-control-char", _one(LINE + "a\x01"), "contains control characters"),
    ("name-carriage-return", _one(LINE + "a\r"), "contains control characters"),
    ("name-delete-char", _one(LINE + "a\x7f"), "contains control characters"),
    ("not-utf8", b"vtool-manifest 1\n" + (LINE + "a").encode() + b"\xff\n", "not valid UTF-8"),
    ("surrogate", _one(LINE + "a\udcff"), "not valid UTF-8"),
    ("no-trailing-newline", _one(LINE + "a")[:-1], "does not end with a newline"),
]


@pytest.mark.parametrize(("data", "fragment"), [row[1:] for row in INVALID], ids=[row[0] for row in INVALID])
def test_invalid_manifest_is_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(FormatError) as info:
        manifest.decode(data, "xxh128:" + "0" * 32)
    assert str(info.value).startswith("xxh128:" + "0" * 32 + ": ")
    assert fragment in str(info.value)


def test_unsafe_names_raise_the_unsafe_path_error() -> None:
    with pytest.raises(UnsafePathError):
        manifest.decode(_one(LINE + ".."), "m")


def test_oversized_manifest_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(FormatError, match="manifest is larger than 100 bytes"):
        manifest.decode(ROOT_BYTES, "m")


def test_diff_reports_added_deleted_modified_and_exec_bit_changes() -> None:
    store = ManifestStore()
    old = store.tree({"keep": b"k", "gone": b"g", "edit": b"1", "mode": b"m", "sub": {"a": b"a", "b": b"b"}}).oid
    new = store.tree({"keep": b"k", "new": b"n", "edit": b"2", "mode": ("x", b"m"), "sub": {"a": b"a", "c": b"c"}}).oid
    changes = manifest.diff(store.load, old, new)
    assert sorted(changes.added) == ["new", "sub/c"]
    assert sorted(changes.deleted) == ["gone", "sub/b"]
    assert sorted(changes.modified) == ["edit", "mode"]
    before, after = changes.modified["mode"]
    assert (before.kind, after.kind, before.oid == after.oid) == ("f", "x", True)


def test_diff_when_a_folder_becomes_a_file_and_back() -> None:
    store = ManifestStore()
    as_dir = store.tree({"x": {"a": b"1", "deep": {"b": b"2"}}}).oid
    as_file = store.tree({"x": b"now a file"}).oid
    changes = manifest.diff(store.load, as_dir, as_file)
    assert sorted(changes.deleted) == ["x/a", "x/deep/b"]
    assert list(changes.added) == ["x"]
    assert changes.modified == {}
    back = manifest.diff(store.load, as_file, as_dir)
    assert (sorted(back.added), list(back.deleted)) == (["x/a", "x/deep/b"], ["x"])
    assert (changes.deleted_folders, changes.added_folders) == ({"x", "x/deep"}, set())
    assert (back.added_folders, back.deleted_folders) == ({"x", "x/deep"}, set())


def test_diff_against_nothing_and_of_a_tree_with_itself() -> None:
    store = ManifestStore()
    root = store.tree({"a": b"1", "d": {"b": b"2"}}).oid
    assert sorted(manifest.diff(store.load, None, root).added) == ["a", "d/b"]
    assert sorted(manifest.diff(store.load, root, None).deleted) == ["a", "d/b"]
    same = manifest.diff(store.load, root, root)
    assert (same.added, same.deleted, same.modified) == ({}, {}, {})
    assert manifest.diff(store.load, None, root).added_folders == {"d"}


def test_diff_never_loads_subtrees_whose_oids_match() -> None:
    store = ManifestStore()
    old = store.tree({"big": {"x": b"1"}, "small": b"a"}).oid
    new = store.tree({"big": {"x": b"1"}, "small": b"b"}).oid
    big = store.tree({"x": b"1"}).oid
    loaded: list[str] = []

    def load(oid: str) -> list[Entry]:
        loaded.append(oid)
        return store.load(oid)

    assert list(manifest.diff(load, old, new).modified) == ["small"]
    assert big not in loaded


def test_files_flattens_a_tree_and_walk_yields_folders_too() -> None:
    store = ManifestStore()
    root = store.tree({"a": b"1", "d": {"b": b"2", "e": {}}}).oid
    assert sorted(manifest.files(store.load, root)) == ["a", "d/b"]
    assert [path for path, _ in manifest.walk(store.load, root)] == ["a", "d", "d/b", "d/e"]


def _folder_oids(tree_load, root: str) -> dict[str, str]:
    """Map every folder of a tree ("" for the root) to its manifest oid."""
    out = {"": root}
    out.update({path: e.oid for path, e in manifest.walk(tree_load, root) if e.is_dir})
    return out


def test_changing_one_deep_file_rewrites_only_the_manifests_on_its_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for a in ("a1", "a2"):
        for b in ("b1", "b2"):
            for c in ("c1", "c2"):
                folder = data / a / b / c
                folder.mkdir(parents=True)
                (folder / "f.txt").write_bytes(f"{a}{b}{c}".encode())
    stats = StatCache(tmp_path / "stat.db")
    before = scan(tmp_path, "data", stats, hash_stream)
    (data / "a1" / "b2" / "c1" / "f.txt").write_bytes(b"changed")
    after = scan(tmp_path, "data", stats, hash_stream)
    stats.close()

    old, new = _folder_oids(before.load, before.oid), _folder_oids(after.load, after.oid)
    assert old.keys() == new.keys()
    changed = sorted(path for path in old if old[path] != new[path])
    assert changed == ["", "a1", "a1/b2", "a1/b2/c1"]
    assert set(after.manifests) - set(before.manifests) == {new[p] for p in changed}
    assert (after.size, after.files) == (before.size - 6 + 7, 8)


def test_the_one_pass_decoder_agrees_with_the_line_by_line_one() -> None:
    # decode() takes a whole body of plain lines in one regular expression; it must accept exactly what
    # the line-by-line path accepts, and a reserved name must never look plain.
    assert not any(manifest.PLAIN_NAME.fullmatch(name) for name in manifest.RESERVED_NAMES)
    entries = [Entry("a b", "f", hash_bytes(b"1"), 5, 1), Entry("sub", "d", hash_bytes(b"2"), 10, 3),
               Entry("run.sh", "x", hash_bytes(b"3"), 0, 1), Entry("ünï", "f", hash_bytes(b"4"), 1, 1)]
    oid, data = manifest.build(entries)
    assert manifest.decode(data, oid) == sorted(entries, key=manifest.sort_key)
    lines = data[len(manifest.HEADER):].decode().split("\n")[:-1]
    assert [manifest._parse_line(line, oid) for line in lines] == manifest.decode(data, oid)
