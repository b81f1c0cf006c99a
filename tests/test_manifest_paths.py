"""Paths inside a tree of manifests: find the entry at a sub-path, and rebuild only the manifests on its path."""

from __future__ import annotations

from projectkit import ManifestStore

from vtool import manifest
from vtool.hashing import hash_bytes
from vtool.manifest import KIND_DIR, KIND_EXEC, KIND_FILE, Entry

TREE = {"raw": {"2023": {"a.csv": b"a"}, "2024": {"b.csv": b"bb", "c.csv": b"ccc"}}, "readme": b"r", "empty": {}}


def test_entry_at_finds_folders_and_files_and_nothing_past_a_file() -> None:
    store = ManifestStore()
    root = store.tree(TREE)
    assert manifest.entry_at(store.load, root.oid, "raw/2024") == Entry(
        "2024", KIND_DIR, store.tree(TREE["raw"]["2024"]).oid, 5, 2)  # type: ignore[index]
    assert manifest.entry_at(store.load, root.oid, "raw/2024/c.csv") == Entry("c.csv", KIND_FILE, hash_bytes(b"ccc"),
                                                                              3, 1)
    assert manifest.entry_at(store.load, root.oid, "empty").files == 0  # type: ignore[union-attr]
    for absent in ("raw/2025", "readme/x", "nope", "raw/2024/c.csv/deeper"):
        assert manifest.entry_at(store.load, root.oid, absent) is None, absent


def test_replace_at_rebuilds_only_the_manifests_on_the_path() -> None:
    store = ManifestStore()
    root = store.tree(TREE)
    old_2023 = manifest.entry_at(store.load, root.oid, "raw/2023")
    other = ManifestStore()
    wanted = other.tree({**TREE, "raw": {**TREE["raw"], "2024": {"b.csv": b"new"}}})  # type: ignore[dict-item]
    new_2024 = manifest.entry_at(other.load, wanted.oid, "raw/2024")
    top, written = manifest.replace_at(store.load, root.oid, "raw/2024", new_2024)
    assert top == wanted  # the same bytes, oids and totals as a tree built from scratch
    assert set(written) == {wanted.oid, manifest.entry_at(other.load, wanted.oid, "raw").oid}  # type: ignore[union-attr]
    store.data.update(written)
    assert manifest.entry_at(store.load, top.oid, "raw/2023") == old_2023


def test_replace_at_adds_removes_and_keeps_the_exec_bit() -> None:
    store = ManifestStore()
    root = store.tree(TREE)
    tool = Entry("run.sh", KIND_EXEC, hash_bytes(b"#!"), 2, 1)
    top, written = manifest.replace_at(store.load, root.oid, "raw/2025/run.sh", tool)
    store.data.update(written)
    assert manifest.entry_at(store.load, top.oid, "raw/2025/run.sh") == tool
    assert (top.size, top.files) == (root.size + 2, root.files + 1)
    gone, written = manifest.replace_at(store.load, top.oid, "raw/2024", None)
    store.data.update(written)
    assert manifest.entry_at(store.load, gone.oid, "raw/2024") is None
    assert (gone.size, gone.files) == (root.size + 2 - 5, root.files + 1 - 2)
    same, written = manifest.replace_at(store.load, gone.oid, "no/such/folder", None)
    assert same == gone and written == {}
