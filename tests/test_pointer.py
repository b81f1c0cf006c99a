"""Pointer files: canonical bytes, lossless round trips, and a table of invalid pointers decoded one by one.

The invalid table is the one in docs/pointer-spec.md; keep the two in step.
"""

from __future__ import annotations

import pytest

from vtool import pointer as ptr
from vtool.errors import FormatError, UnsafePathError
from vtool.pointer import Pointer

OID = "xxh128:" + "ab" * 16
OTHER_OID = "xxh128:0123456789abcdef0123456789abcdef"

FILE_POINTER = Pointer(path="model.bin", kind="file", oid=OID, size=5)
FILE_BYTES = (
    b"version: 1\n"
    b"type: file\n"
    b"path: model.bin\n"
    b"oid: xxh128:abababababababababababababababab\n"
    b"size: 5\n"
)

DIR_POINTER = Pointer(
    path="data", kind="dir", oid=OID, size=1234, files=3,
    meta={"owner": "ana", "description": "churn data, v2", "tags": ["a", "b"]},
    extra={"zz": 1, "custom": "x"},
)
DIR_BYTES = (
    b"version: 1\n"
    b"type: dir\n"
    b"path: data\n"
    b"oid: xxh128:abababababababababababababababab\n"
    b"size: 1234\n"
    b"files: 3\n"
    b"custom: x\n"
    b"zz: 1\n"
    b"meta:\n"
    b"  owner: ana\n"
    b"  description: churn data, v2\n"
    b"  tags:\n"
    b"  - a\n"
    b"  - b\n"
)


def test_dumps_file_pointer_canonically() -> None:
    assert ptr.dumps(FILE_POINTER) == FILE_BYTES


def test_dumps_dir_pointer_with_files_extra_keys_sorted_then_meta_last() -> None:
    assert ptr.dumps(DIR_POINTER) == DIR_BYTES


def test_dumps_writes_unicode_as_utf8_and_quotes_what_yaml_would_misread() -> None:
    pointer = Pointer(path="données é", kind="file", oid=OID, size=0, meta={"note": "ü: yes"})
    assert ptr.dumps(pointer) == (
        "version: 1\ntype: file\npath: données é\noid: xxh128:abababababababababababababababab\nsize: 0\n"
        "meta:\n  note: 'ü: yes'\n"
    ).encode()


@pytest.mark.parametrize("pointer", [FILE_POINTER, DIR_POINTER], ids=["file", "dir"])
def test_round_trip(pointer: Pointer) -> None:
    data = ptr.dumps(pointer)
    loaded = ptr.loads(data, pointer.path + ".vtool")
    assert loaded == pointer
    assert ptr.dumps(loaded) == data


@pytest.mark.parametrize("name", ["yes", "123", "null", "a : b", "#x", "- x", " lead", "trail ", "données", "1e3",
                                  "~", "[x]", "*star", "&amp", "!bang", "'q'", '"dq"', "x.vtool"])
def test_round_trip_names_yaml_would_otherwise_reinterpret(name: str) -> None:
    pointer = Pointer(path=name, kind="file", oid=OID, size=1)
    assert ptr.loads(ptr.dumps(pointer), name + ".vtool") == pointer


def test_loads_accepts_any_key_order_and_dumps_restores_the_canonical_one() -> None:
    shuffled = b"size: 5\noid: xxh128:abababababababababababababababab\npath: model.bin\ntype: file\nversion: 1\n"
    loaded = ptr.loads(shuffled, "model.bin.vtool")
    assert loaded == FILE_POINTER
    assert ptr.dumps(loaded) == FILE_BYTES


def test_meta_and_unknown_keys_survive_a_round_trip() -> None:
    data = FILE_BYTES + b"x-origin: s3://bucket/key\nreviewed: true\nmeta:\n  owner: bob\n  nested:\n    k: [1, 2]\n"
    loaded = ptr.loads(data, "model.bin.vtool")
    assert loaded.meta == {"owner": "bob", "nested": {"k": [1, 2]}}
    assert loaded.extra == {"x-origin": "s3://bucket/key", "reviewed": True}
    assert ptr.dumps(loaded) == FILE_BYTES + (
        b"reviewed: true\nx-origin: s3://bucket/key\nmeta:\n  owner: bob\n  nested:\n    k:\n    - 1\n    - 2\n"
    )


def test_empty_meta_is_not_written() -> None:
    loaded = ptr.loads(FILE_BYTES + b"meta: {}\n", "model.bin.vtool")
    assert loaded.meta == {}
    assert ptr.dumps(loaded) == FILE_BYTES


def test_files_is_ignored_on_a_file_pointer_and_never_written() -> None:
    loaded = ptr.loads(FILE_BYTES + b"files: 3\n", "model.bin.vtool")
    assert loaded.files == 1
    assert ptr.dumps(loaded) == FILE_BYTES


def test_dir_may_hold_zero_files() -> None:
    data = DIR_BYTES.replace(b"files: 3", b"files: 0")
    assert ptr.loads(data, "data.vtool").files == 0


def test_pointer_exactly_at_the_size_cap_is_read() -> None:
    pad = b"meta:\n  pad: " + b"p" * 10 + b"\n"
    data = FILE_BYTES + pad
    data = data.replace(b"p" * 10, b"p" * (10 + ptr.MAX_POINTER_BYTES - len(data)))
    assert len(data) == ptr.MAX_POINTER_BYTES
    assert ptr.loads(data, "model.bin.vtool").size == 5


def test_a_name_that_looks_like_a_windows_drive_is_refused() -> None:
    # ':' cannot appear in a Windows file name, and `c:x` there is drive-relative: refused for portability.
    with pytest.raises(UnsafePathError, match="name 'a:b' is refused: Windows reads it as a drive"):
        ptr.check_component("a:b", "where")
    ptr.check_component("ab:c", "where")


def test_same_data_ignores_notes() -> None:
    noted = Pointer(path="model.bin", kind="file", oid=OID, size=5, meta={"a": 1})
    assert FILE_POINTER.same_data(noted)
    assert not FILE_POINTER.same_data(Pointer(path="model.bin", kind="file", oid=OTHER_OID, size=5))
    assert not FILE_POINTER.same_data(None)


def _file(**changes: str | None) -> bytes:
    """A valid file pointer for `x.vtool` with some lines replaced (value None drops the line)."""
    lines = {"version": "1", "type": "file", "path": "x", "oid": OID, "size": "1"}
    lines.update(changes)
    return "".join(f"{k}: {v}\n" for k, v in lines.items() if v is not None).encode()


def _dir(**changes: str | None) -> bytes:
    return _file(**{"type": "dir", "files": "2", **changes})


# (id, pointer bytes, the pointer file's own name, expected error class, fragment of the message)
INVALID = [
    ("bad-yaml", b"version: 1\npath: [\n", "x.vtool", FormatError, "not a valid pointer file (ParserError: "),
    ("not-utf8", _file(path="x") + b"meta:\n  a: \xff\n", "x.vtool", FormatError, "(UnicodeDecodeError)"),
    ("yaml-tag", _file() + b"meta: !!python/object/apply:os.system ['true']\n", "x.vtool", FormatError,
     "(ConstructorError: could not determine a constructor for the tag"),
    ("empty", b"", "x.vtool", FormatError, "expected a YAML mapping"),
    ("a-list", b"- version\n- 1\n", "x.vtool", FormatError, "expected a YAML mapping"),
    ("a-scalar", b"hello\n", "x.vtool", FormatError, "expected a YAML mapping"),
    ("no-version", _file(version=None), "x.vtool", FormatError, "unsupported pointer version None"),
    ("version-2", _file(version="2"), "x.vtool", FormatError, "unsupported pointer version 2 (this vtool reads "
     "version 1; upgrade vtool)"),
    ("version-0", _file(version="0"), "x.vtool", FormatError, "unsupported pointer version 0"),
    ("version-string", _file(version="'1'"), "x.vtool", FormatError, "unsupported pointer version '1'"),
    ("version-float", _file(version="1.0"), "x.vtool", FormatError, "unsupported pointer version 1.0"),
    ("version-bool", _file(version="true"), "x.vtool", FormatError, "unsupported pointer version True"),
    ("duplicate-key", _file() + b"oid: " + OTHER_OID.encode() + b"\n", "x.vtool", FormatError,
     "(ConstructorError: duplicate key 'oid' at line 6)"),
    ("duplicate-meta-key", _file() + b"meta: {a: 1, a: 2}\n", "x.vtool", FormatError, "duplicate key 'a'"),
    ("unhashable-key", _file() + b"? [a]\n: 1\n", "x.vtool", FormatError, "not a valid pointer file"),
    ("yaml-alias", _file() + b"meta:\n  a: &x [1, 2]\n  b: *x\n", "x.vtool", FormatError,
     "(ComposerError: aliases (*name) are not allowed at line 8)"),
    ("yaml-too-deep", _file() + b"meta:\n  a: " + b"[" * 40 + b"]" * 40 + b"\n", "x.vtool", FormatError,
     "(ComposerError: nested deeper than 32 levels"),
    ("size-5000-digits", _file(size="1" * 5000), "x.vtool", FormatError,
     "(ConstructorError: cannot read '1111111111111111111111111111111111111111' as int: Exceeds the limit"),
    ("date-impossible", _file() + b"meta: {made: 2024-13-45}\n", "x.vtool", FormatError,
     "cannot read '2024-13-45' as timestamp: month must be in 1..12 at line 6"),
    ("hex-empty", _file() + b"meta: {n: 0x_}\n", "x.vtool", FormatError, "cannot read '0x_' as int"),
    ("timestamp-tag", _file() + b"meta: {t: !!timestamp yesterday}\n", "x.vtool", FormatError,
     "cannot read 'yesterday' as timestamp"),
    ("bool-tag", _file() + b"meta: {b: !!bool maybe}\n", "x.vtool", FormatError, "cannot read 'maybe' as bool"),
    ("set-tag-scalar", _file() + b"meta: {s: !!set 1}\n", "x.vtool", FormatError,
     "expected a mapping node, but found scalar"),
    ("type-missing", _file(type=None), "x.vtool", FormatError, "type must be 'file' or 'dir', not None"),
    ("type-folder", _file(type="folder"), "x.vtool", FormatError, "type must be 'file' or 'dir', not 'folder'"),
    ("oid-missing", _file(oid=None), "x.vtool", FormatError, "invalid oid 'None'"),
    ("oid-uppercase", _file(oid="xxh128:" + "AB" * 16), "x.vtool", FormatError, "invalid oid"),
    ("oid-short", _file(oid="xxh128:" + "ab" * 15), "x.vtool", FormatError, "invalid oid"),
    ("oid-long", _file(oid=OID + "0"), "x.vtool", FormatError, "invalid oid"),
    ("oid-md5", _file(oid="md5:" + "ab" * 16), "x.vtool", FormatError, "invalid oid 'md5:"),
    ("oid-no-prefix", _file(oid="ab" * 16), "x.vtool", FormatError, "invalid oid"),
    ("oid-number", _file(oid="12"), "x.vtool", FormatError, "invalid oid '12'"),
    ("size-missing", _file(size=None), "x.vtool", FormatError, "size must be a non-negative integer, not None"),
    ("size-negative", _file(size="-1"), "x.vtool", FormatError, "size must be a non-negative integer, not -1"),
    ("size-bool", _file(size="true"), "x.vtool", FormatError, "size must be a non-negative integer, not True"),
    ("size-float", _file(size="1.5"), "x.vtool", FormatError, "size must be a non-negative integer, not 1.5"),
    ("size-string", _file(size="'1'"), "x.vtool", FormatError, "size must be a non-negative integer, not '1'"),
    ("executable-string", _file() + b"executable: 'yes'\n", "x.vtool", FormatError,
     "executable must be true or false, and only for type file, not 'yes'"),
    ("executable-on-dir", _dir() + b"executable: true\n", "x.vtool", FormatError,
     "executable must be true or false, and only for type file, not True"),
    ("dir-without-files", _file(type="dir"), "x.vtool", FormatError, "files must be a non-negative integer, not None"),
    ("dir-negative-files", _dir(files="-2"), "x.vtool", FormatError, "files must be a non-negative integer, not -2"),
    ("path-missing", _file(path=None), "x.vtool", FormatError, "empty name"),
    ("path-empty", _file(path="''"), ".vtool", FormatError, "empty name"),
    ("path-dotdot-slash", _file(path="../x"), "x.vtool", UnsafePathError, "must be a single name"),
    ("path-dotdot", _file(path=".."), "...vtool", UnsafePathError, "must be a single name"),
    ("path-dot", _file(path="."), "..vtool", UnsafePathError, "must be a single name"),
    ("path-absolute", _file(path="/abs"), "x.vtool", UnsafePathError, "absolute path '/abs' is not allowed"),
    ("path-drive", _file(path="'C:x'"), "C:x.vtool", UnsafePathError, "Windows reads it as a drive"),
    ("path-nested", _file(path="a/b"), "b.vtool", UnsafePathError, "must be a single name"),
    ("path-backslash", _file(path="'a\\b'"), "a\\b.vtool", UnsafePathError, "must be a single name"),
    ("path-git", _file(path=".git"), ".git.vtool", UnsafePathError, "'.git' is reserved"),
    ("path-git-upper", _file(path=".GIT"), ".GIT.vtool", UnsafePathError, "'.GIT' is reserved"),
    ("path-vtool", _file(path=".vtool"), ".vtool.vtool", UnsafePathError, "'.vtool' is reserved"),
    ("path-control-char", _file(path='"a\\x01b"'), "a\x01b.vtool", FormatError, "contains control characters"),
    ("path-newline", _file(path='"a\\nb"'), "a\nb.vtool", FormatError, "contains control characters"),
    ("path-delete-char", _file(path='"a\\x7fb"'), "a\x7fb.vtool", FormatError, "contains control characters"),
    ("path-not-own-name", _file(path="other"), "x.vtool", UnsafePathError,
     "path 'other' does not match the pointer's own name"),
    ("path-not-a-string", _file(path="[x]"), "x.vtool", FormatError, "empty name"),
    ("meta-list", _file() + b"meta: [1, 2]\n", "x.vtool", FormatError, "meta must be a mapping"),
    ("meta-string", _file() + b"meta: hello\n", "x.vtool", FormatError, "meta must be a mapping"),
    ("extra-key-uppercase", _file() + b"Owner: me\n", "x.vtool", FormatError, "invalid key 'Owner'"),
    ("extra-key-space", _file() + b"my key: 1\n", "x.vtool", FormatError, "invalid key 'my key'"),
    ("extra-key-number", _file() + b"12: x\n", "x.vtool", FormatError, "invalid key '12'"),
    ("extra-key-too-long", _file() + b"k" * 65 + b": x\n", "x.vtool", FormatError, "invalid key"),
    ("too-big", _file() + b"meta:\n  pad: " + b"p" * ptr.MAX_POINTER_BYTES + b"\n", "x.vtool", FormatError,
     "over the 65536 byte limit"),
]


@pytest.mark.parametrize(("data", "name", "error", "fragment"), [row[1:] for row in INVALID],
                         ids=[row[0] for row in INVALID])
def test_invalid_pointer_is_refused(data: bytes, name: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as info:
        ptr.loads(data, name)
    message = str(info.value)
    assert message.startswith(name + ": ")
    assert fragment in message


def test_the_invalid_table_is_large_and_its_ids_unique() -> None:
    ids = [row[0] for row in INVALID]
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)


def test_an_executable_file_pointer_round_trips_and_others_keep_their_bytes() -> None:
    executable = Pointer(path="model.bin", kind="file", oid=OID, size=5, executable=True)
    data = ptr.dumps(executable)
    assert data == FILE_BYTES.replace(b"size: 5\n", b"size: 5\nexecutable: true\n")
    assert ptr.loads(data, "model.bin.vtool") == executable
    assert ptr.loads(FILE_BYTES + b"executable: false\n", "model.bin.vtool") == FILE_POINTER
    assert ptr.dumps(FILE_POINTER) == FILE_BYTES
