"""The flat reader agrees with safeyaml on every document it takes, and takes what vtool itself writes."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import yaml

from vtool import flatyaml, safeyaml
from vtool import pointer as ptr
from vtool.errors import FormatError
from vtool.hashing import hash_bytes

# Tokens of which random documents are made: mostly lines the flat reader takes, then near misses and YAML's traps.
GOOD_KEYS = ["a", "b", "path", "remote-1", "x_y"]
KEYS = ["on", "no", "y", "null", "A", "1a", "a b"]
GOOD_VALUES = ["", " 1", " 0", " true", " false", " data", " s3://b/p", " xxh128:ab12", " a:b", " _x", " a=b"]
VALUES = [" 007", " -1", " 1_000", " 0x1f", " 1e3", " 1.5", " True", " yes", " No", " off", " null", " Null", " ~",
          " a:", " a: b", " a #c", " 'q'", ' "q"', " [1]", " {}", " &x a", " *x", " !!str 1", " 2024-01-02",
          " .inf", " é", " 12345678901234567890", ":", " ", "\t1"]
INDENTS = ["  ", "    ", " ", "\t"]
EXTRA_LINES = ["# note", "", "{}", "---", "...", "  # indented", "- 1"]
TRIALS = 4000
GOOD = 0.85


def _pick(rng: random.Random, good: list[str], bad: list[str]) -> str:
    return rng.choice(good if rng.random() < GOOD else bad)


def _random_doc(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.1:
            lines.append(rng.choice(EXTRA_LINES))
        else:
            indent = "" if rng.random() < 0.6 else rng.choice(INDENTS)
            lines.append(indent + _pick(rng, GOOD_KEYS, KEYS) + ":" + _pick(rng, GOOD_VALUES, VALUES))
    return "\n".join(lines) + rng.choice(["", "\n"])


def _strict(text: str) -> object:
    """What safeyaml makes of a document, or the refusal's class."""
    try:
        return safeyaml.load(text)
    except yaml.YAMLError as exc:
        return type(exc)


def test_every_flat_reading_equals_safeyaml() -> None:
    rng = random.Random(15)
    taken = 0
    for _ in range(TRIALS):
        text = _random_doc(rng)
        doc = flatyaml._flat(text)
        if doc is not None:
            taken += 1
            assert doc == _strict(text), text
            assert repr(doc) == repr(_strict(text)), text  # True is not 1, "1" is not 1
    assert taken > TRIALS // 20  # the subset is exercised, not just refused


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # a repeated key: safeyaml refuses it
    "on: 1\n", "a: yes\n", "a: Null\n", "a:\n", "a: 1\n  b: 2\n", "a:\n    b: 1\n  c: 2\n", "a: b\r\n",
    "a: é\n", "a: 1 # note\n", "a: 1\u2028b: 2\n", "a: 12345678901234567890\n", "",
    "a:\n b:\n  c:\n   d:\n    e: 1\n",  # deeper than the flat reader goes
])
def test_not_flat_goes_to_safeyaml(text: str) -> None:
    assert flatyaml._flat(text) is None


def test_read_refuses_like_safeyaml() -> None:
    with pytest.raises(flatyaml.YamlError, match="duplicate key 'a'.* at line 2"):
        flatyaml.read("a: 1\na: 2\n")
    assert flatyaml.read("a:\n  - 1\n") == {"a": [1]}  # not flat: safeyaml reads it


@pytest.mark.parametrize("pointer", [
    ptr.Pointer("data", ptr.Kind.DIR, hash_bytes(b"m"), 174449912, 20000),
    ptr.Pointer("model.bin", ptr.Kind.FILE, hash_bytes(b"f"), 0, executable=True),
    ptr.Pointer("x-1_y.csv", ptr.Kind.FILE, hash_bytes(b"g"), 5, extra={"owner": "team_a"}),
])
def test_pointers_vtool_writes_are_read_flat(pointer: ptr.Pointer) -> None:
    text = ptr.dumps(pointer).decode()
    assert flatyaml._flat(text) == _strict(text)
    assert ptr.loads(text.encode(), f"{pointer.path}.vtool") == pointer


def test_a_pointer_flat_reading_refuses_stays_refused() -> None:
    with pytest.raises(FormatError, match="not a valid pointer file .*duplicate key 'type'"):
        ptr.loads(b"version: 1\ntype: dir\ntype: file\n", "data.vtool")
    with pytest.raises(FormatError, match=r"not a valid pointer file \(UnicodeDecodeError\)"):
        ptr.loads(b"version: 1\npath: \xff\n", "data.vtool")


# Values of which random documents to write are made: the flat subset, then what PyYAML must write instead.
GOOD_SCALARS: list[object] = [0, 1, 174449912, 10**17, True, False, "data", "s3://b/p", "xxh128:ab12", "a:b", "_x",
                              "a=b", "x-1_y.csv", "Yes2"]
BAD_SCALARS: list[object] = ["", "yes", "No", "null", "a:", "a b", "é", "007", "1.5", "-x", -1, 10**18, 1.5, None,
                             [1], {}]
WRITE_KEYS = ["a", "b", "path", "remote-1", "x_y", "on", "A", "1a"]


def _random_mapping(rng: random.Random, depth: int) -> dict[str, object]:
    doc: dict[str, object] = {}
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(GOOD_KEYS) if rng.random() < GOOD else rng.choice(WRITE_KEYS)
        if depth < 5 and rng.random() < 0.2:
            doc[key] = _random_mapping(rng, depth + 1)
        else:
            doc[key] = rng.choice(GOOD_SCALARS) if rng.random() < GOOD else rng.choice(BAD_SCALARS)
    return doc


@pytest.mark.parametrize("sort_keys", [False, True])
def test_every_flat_writing_equals_pyyaml_and_reads_back(sort_keys: bool) -> None:
    rng = random.Random(16)
    written = refused = 0
    for _ in range(TRIALS):
        doc = _random_mapping(rng, 0)
        text = flatyaml.dump(doc, sort_keys=sort_keys)
        if text is None:
            refused += 1
            continue
        written += 1
        assert text == yaml.safe_dump(doc, sort_keys=sort_keys, allow_unicode=True, default_flow_style=False,
                                      width=1 << 16), doc
        assert flatyaml._flat(text) == doc, text
        assert repr(flatyaml._flat(text)) == repr(_strict(text)), text  # True stays True, 1 stays 1
    assert written > TRIALS // 4 and refused > TRIALS // 10  # both sides of the subset were exercised


def test_writing_a_pointer_imports_no_pyyaml() -> None:
    code = ("import sys; from vtool import pointer as p; from vtool.hashing import hash_bytes; "
            "p.dumps(p.Pointer('data', p.Kind.DIR, hash_bytes(b'm'), 5, 2, {'owner': 'team_a'})); "
            "print('yaml' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_a_pointer_outside_the_flat_subset_is_written_by_pyyaml() -> None:
    pointer = ptr.Pointer("données brutes", ptr.Kind.FILE, hash_bytes(b"f"), 3, meta={"note": "a: b"})
    text = ptr.dumps(pointer).decode()
    assert "path: données brutes\n" in text and "note: 'a: b'" in text
    assert ptr.loads(text.encode(), "données brutes.vtool") == pointer
