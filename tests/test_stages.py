"""The stage file and the lock as formats: strict parsing with line numbers, graph refusals, canonical bytes."""

from __future__ import annotations

import json

import pytest
from projectkit import Workdir

from vtool.errors import FormatError
from vtool.pipeline import dag, lockfile, stages
from vtool.pipeline.lockfile import LockEntry
from vtool.pipeline.stages import PipelineError

OID_A = "xxh128:" + "a" * 32
OID_B = "xxh128:" + "b" * 32


def test_stage_add_writes_the_stage_file(project: Workdir) -> None:
    project.ok("stage", "add", "prepare", "-d", "data/raw", "-d", "./src/prep.py", "-o", "data/prepared/",
               "-p", "params.yaml:prepare.seed,prepare.n", "--", "python", "src/prep.py", "a b")
    assert project.read("vtool.yaml") == (
        b"stages:\n"
        b"  prepare:\n"
        b"    cmd: python src/prep.py 'a b'\n"
        b"    deps:\n    - data/raw\n    - src/prep.py\n"
        b"    outs:\n    - data/prepared\n"
        b"    params:\n    - params.yaml:prepare.seed,prepare.n\n"
    )
    result = project.ok("stage", "add", "prepare", "-o", "out", "--env", "python", "-w", "sub", "--json",
                        "--", "make > out")
    assert result.json() == {"stage": "prepare", "replaced": True, "file": "vtool.yaml"}
    parsed = stages.read(project.root).stages["prepare"]
    assert (parsed.cmd, parsed.outs, parsed.env, parsed.wdir, parsed.deps) == ("make > out", ("out",), ("python",),
                                                                               "sub", ())


def test_stage_add_keeps_the_checks_section(project: Workdir) -> None:
    project.write("vtool.yaml", "checks:\n  data/raw:\n    rows: {min: 1}\n")
    project.ok("stage", "add", "a", "-o", "x", "--", "touch x")
    doc = stages.read(project.root).doc
    assert doc["checks"] == {"data/raw": {"rows": {"min": 1}}} and list(doc) == ["stages", "checks"]


@pytest.mark.parametrize(("args", "message"), [
    (["b", "-d", "y", "-o", "x", "--", "cmd"], "the stages form a cycle: a -> b -> a"),
    (["b", "-o", "y", "--", "cmd"], "stages a and b both write y"),
    (["b", "-o", "y/inner", "--", "cmd"], "stages a and b both write y (y and y/inner overlap)"),
    (["b", "-d", "z", "-o", "z/out", "--", "cmd"], "stage b depends on its own output z"),
    (["b", "-o", "../up", "--", "cmd"], "stage b: out: '../up' is outside the repository"),
    (["b", "-o", ".git/hooks", "--", "cmd"], "inside .git/"),
    (["b", "-o", "/abs", "--", "cmd"], "must be relative to the repository root"),
    (["b", "--env", "kernel", "-o", "k", "--", "cmd"], "unknown environment component 'kernel'"),
    (["b", "-p", "params.yaml:a b", "--", "cmd"], "is not FILE:KEY[,KEY...]"),
    (["bad name", "--", "cmd"], "invalid stage name 'bad name'"),
    (["b", "-d", "q", "-o", "q", "--", "cmd"], "q is listed twice"),
])
def test_stage_add_refuses_impossible_stages(project: Workdir, args: list[str], message: str) -> None:
    project.ok("stage", "add", "a", "-d", "x", "-o", "y", "--", "make y")
    before = project.read("vtool.yaml")
    result = project.fails("stage", "add", *args, code=2)
    assert message in result.err and result.err.startswith("error: ") and "Traceback" not in result.err
    assert project.read("vtool.yaml") == before


@pytest.mark.parametrize(("text", "message"), [
    ("stages:\n  a:\n    cmd: x\nstagez: {}\n", "vtool.yaml line 4: unknown top-level key 'stagez'"),
    ("stages:\n  a:\n    cmd: x\n    dep: [y]\n", "vtool.yaml line 4: stage a: unknown key 'dep'"),
    ("stages:\n  a:\n    outs: [y]\n", "vtool.yaml line 2: stage a: cmd must be a non-empty command line"),
    ("stages:\n  a:\n    cmd: x\n    deps: {a: 1}\n", "vtool.yaml line 4: stage a: deps must be a list of strings"),
    ("stages:\n  a:\n    cmd: x\n    outs: [ok, ../no]\n", "vtool.yaml line 4: stage a: out: '../no' is outside"),
    ("stages: [a, b]\n", "vtool.yaml line 1: stages must be a mapping"),
    ("stages:\n  a: {cmd: x}\n  a: {cmd: y}\n", "duplicate key 'a' at line 3"),
    ("- just\n- a list\n", "expected a mapping"),
    ("stages:\n  a: &x {cmd: x}\n  b: *x\n", "aliases"),
])
def test_stage_file_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        stages.parse(text.encode())
    assert message in str(info.value)


def test_repro_refuses_a_hand_written_cycle(project: Workdir) -> None:
    project.write("vtool.yaml", "stages:\n  a: {cmd: x, deps: [q], outs: [p]}\n  b: {cmd: y, deps: [p], outs: [q]}\n")
    result = project.fails("repro")
    assert "error: the stages form a cycle: a -> b -> a" in result.err
    assert "the stages form a cycle" in project.fails("stage", "list").err
    project.write("vtool.yaml", "stages:\n  a: {cmd: x}\nextra: 1\n")
    assert "vtool.yaml line 3: unknown top-level key 'extra'" in project.fails("repro").err


def test_order_puts_parents_first_with_ties_by_name() -> None:
    defined = stages.parse(b"stages:\n  z: {cmd: z, deps: [m/x.csv], outs: [out]}\n  m: {cmd: m, outs: [m]}\n"
                           b"  a: {cmd: a, outs: [a]}\n").stages
    assert dag.order(defined) == ["a", "m", "z"]
    assert dag.ancestors(defined, ["z"]) == {"m", "z"} and dag.descendants(defined, ["m"]) == {"m", "z"}


def _entry(**kw: object) -> LockEntry:
    base = {"cmd": "run", "wdir": ".", "deps": {"b": OID_B, "a": OID_A}, "outs": {"o": OID_A}, "metrics": {},
            "params": {"p.yaml": {"x": 1.5}}, "env": {"python": "CPython 3.11.9"}}
    return LockEntry(**{**base, **kw})  # type: ignore[arg-type]


def test_lock_canonical_bytes() -> None:
    data = lockfile.dumps({"train": _entry(), "a": _entry(cmd="é")})
    assert data == (
        '{\n  "stages": {\n    "a": {\n      "cmd": "é",\n      "deps": {\n'
        f'        "a": "{OID_A}",\n        "b": "{OID_B}"\n      }},\n'
        '      "env": {\n        "python": "CPython 3.11.9"\n      },\n      "metrics": {},\n'
        f'      "outs": {{\n        "o": "{OID_A}"\n      }},\n'
        '      "params": {\n        "p.yaml": {\n          "x": 1.5\n        }\n      },\n'
        '      "wdir": "."\n    },\n'
    ).encode() + data[data.index(b'    "train"'):]
    assert data.endswith(b'  },\n  "version": 1\n}\n')
    assert lockfile.dumps(lockfile.loads(data)) == data
    assert _entry().key() == _entry(outs={"o": OID_B}).key() != _entry(deps={"a": OID_B}).key()


@pytest.mark.parametrize(("data", "message"), [
    (b"<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> b\n", "merge conflict markers"),
    (b"not json", "not valid JSON"),
    (b'{"version": 2, "stages": {}}', "not a version 1 vtool lock"),
    (b'{"version": 1, "stages": {"a": {"cmd": "x"}}}', "expected exactly the keys"),
])
def test_lock_refuses_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        lockfile.loads(data)
    assert message in str(info.value)


def test_lock_refuses_an_invalid_oid() -> None:
    doc = json.loads(lockfile.dumps({"a": _entry()}))
    doc["stages"]["a"]["outs"]["o"] = "md5:123"
    with pytest.raises(FormatError, match="invalid oid"):
        lockfile.loads(json.dumps(doc).encode())


def test_params_errors_are_one_line(project: Workdir) -> None:
    project.write("params.yaml", "train: {lr: 0.1}\n")
    project.ok("stage", "add", "t", "-p", "train.epochs", "-o", "m", "--", "touch m")
    assert "error: params.yaml has no key train.epochs" in project.fails("repro").err
    project.ok("stage", "add", "t", "-p", "other.json:lr", "-o", "m", "--", "touch m")
    assert "error: params file other.json does not exist" in project.fails("repro").err
