"""Quality gates: every rule passing and failing on small CSV, JSONL and Parquet files, and malformed checks."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from projectkit import Workdir

SCHEMA = """\
schema:
  fields:
    - {name: id, type: integer, constraints: {required: true, unique: true, minimum: 1}}
    - {name: label, type: string, constraints: {enum: [cat, dog], maxLength: 3}}
    - {name: amount, type: number, constraints: {minimum: 0, maximum: 100}}
    - {name: day, type: date}
"""
GOOD_ROWS = [(1, "cat", 1.5, "2024-01-01"), (2, "dog", 0.0, "2024-02-29"), (3, "cat", 99.0, "2024-03-01")]
# Each bad table breaks exactly one constraint, on its second data row.
BAD_ROWS = {
    ("id", "type"): [(1, "cat", 1.5, "2024-01-01"), ("x2", "dog", 2.0, "2024-01-02")],
    ("id", "required"): [(1, "cat", 1.5, "2024-01-01"), (None, "dog", 2.0, "2024-01-02")],
    ("id", "unique"): [(1, "cat", 1.5, "2024-01-01"), (1, "dog", 2.0, "2024-01-02")],
    ("id", "minimum"): [(1, "cat", 1.5, "2024-01-01"), (0, "dog", 2.0, "2024-01-02")],
    ("label", "enum"): [(1, "cat", 1.5, "2024-01-01"), (2, "cow", 2.0, "2024-01-02")],
    ("amount", "maximum"): [(1, "cat", 1.5, "2024-01-01"), (2, "dog", 100.5, "2024-01-02")],
    ("day", "type"): [(1, "cat", 1.5, "2024-01-01"), (2, "dog", 2.0, "2024-02-30")],
}
MESSAGES = {"type": "not a", "required": "required value missing", "unique": "duplicate value",
            "minimum": "below minimum", "maximum": "above maximum", "enum": "not in enum",
            "maxLength": "longer than maxLength", "pattern": "not matching pattern", "minLength": "shorter than"}


def checks_yaml(key: str, body: str) -> str:
    return f"checks:\n  {key}:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


def csv_text(rows: list[tuple[Any, ...]], header: str = "id,label,amount,day", sep: str = ",") -> str:
    lines = [header.replace(",", sep)]
    lines += [sep.join("" if v is None else str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def jsonl_text(rows: list[tuple[Any, ...]]) -> str:
    names = ("id", "label", "amount", "day")
    return "".join(json.dumps({k: v for k, v in zip(names, row, strict=True) if v is not None}) + "\n"
                   for row in rows)


def parquet_bytes(rows: list[tuple[Any, ...]], tmp: Any) -> bytes:
    import datetime as dt

    cols = list(zip(*rows, strict=True))
    ids = [v if isinstance(v, int) or v is None else None for v in cols[0]]
    days = []
    for v in cols[3]:
        try:
            days.append(dt.date.fromisoformat(v))
        except ValueError:
            days.append(None)
    table = pa.table({"id": pa.array(ids, pa.int64()), "label": pa.array(cols[1], pa.string()),
                      "amount": pa.array(cols[2], pa.float64()), "day": pa.array(days, pa.date32())})
    path = tmp / "t.parquet"
    pq.write_table(table, path)
    return path.read_bytes()


def setup(project: Workdir, files: dict[str, bytes | str], config: str) -> None:
    project.write_tree("data", files)
    project.ok("add", "data")
    project.write("vtool.yaml", config)


def validate(project: Workdir, *args: str, code: int | None = None) -> dict[str, Any]:
    result = project.run("validate", "--json", *args)
    if code is not None:
        assert result.code == code, result.err or result.out
    return result.json()


def failures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in doc["results"] if r["status"] != "ok"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_a_valid_table_passes_every_rule(project: Workdir, tmp_path: Any, fmt: str) -> None:
    data = {"csv": lambda: csv_text(GOOD_ROWS), "tsv": lambda: csv_text(GOOD_ROWS, sep="\t"),
            "jsonl": lambda: jsonl_text(GOOD_ROWS), "parquet": lambda: parquet_bytes(GOOD_ROWS, tmp_path)}[fmt]()
    setup(project, {f"t.{fmt}": data}, checks_yaml(f"data/t.{fmt}", SCHEMA + "rows: {min: 3, max: 3}\n"))
    doc = validate(project, code=0)
    assert [(r["rule"], r["status"]) for r in doc["results"]] == [("schema", "ok"), ("rows", "ok")]
    assert doc["rows_read"] == 3 and doc["cache_misses"] == 1 and not doc["failed"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
@pytest.mark.parametrize(("column", "constraint"), list(BAD_ROWS), ids=lambda v: str(v))
def test_each_constraint_fails_on_its_row(project: Workdir, tmp_path: Any, fmt: str, column: str,
                                          constraint: str) -> None:
    rows = BAD_ROWS[(column, constraint)]
    if fmt == "parquet" and constraint == "type":
        pytest.skip("Parquet columns are typed: a wrong type is the whole column's, tested below")
    data = {"csv": lambda: csv_text(rows), "tsv": lambda: csv_text(rows, sep="\t"),
            "jsonl": lambda: jsonl_text(rows), "parquet": lambda: parquet_bytes(rows, tmp_path)}[fmt]()
    setup(project, {f"t.{fmt}": data}, checks_yaml(f"data/t.{fmt}", SCHEMA))
    doc = validate(project, code=1)
    (bad,) = failures(doc)
    assert (bad["rule"], bad["column"], bad["count"]) == ("schema", column, 1)
    assert MESSAGES[constraint] in bad["message"]
    where = 2 if fmt == "parquet" else 3 if fmt in ("csv", "tsv") else 2  # header is line 1 of CSV/TSV
    assert bad["lines"] == [where]


def test_string_constraints_pattern_and_lengths(project: Workdir) -> None:
    body = """
        schema:
          fields:
            - {name: code, type: string, constraints: {pattern: "[A-Z]{2}[0-9]+", minLength: 3, maxLength: 5}}
    """
    setup(project, {"t.csv": "code\nAB1\nab12\nAB123456\nA\n"}, checks_yaml("data/t.csv", body))
    doc = validate(project, code=1)
    got = {(r["column"], r["message"].split(": ")[0]): r["lines"] for r in failures(doc)}
    assert got == {("code", "not matching pattern [A-Z]{2}[0-9]+"): [3, 5],
                   ("code", "shorter than minLength 3"): [5], ("code", "longer than maxLength 5"): [4]}


def test_boolean_datetime_and_missing_values(project: Workdir) -> None:
    body = """
        schema:
          missingValues: ["", "NA"]
          fields:
            - {name: flag, type: boolean, constraints: {required: true}}
            - {name: at, type: datetime, constraints: {minimum: "2024-01-01T00:00:00Z"}}
    """
    data = "flag,at\ntrue,2024-05-01T10:00:00Z\nNA,2024-05-01T10:00:00+02:00\nyes,2023-12-31T23:59:59\n"
    setup(project, {"t.csv": data}, checks_yaml("data/t.csv", body))
    got = {(r["column"], r["message"].split(": ")[0]): r["lines"] for r in failures(validate(project, code=1))}
    assert got == {("flag", "required value missing"): [3], ("flag", "not a boolean"): [4],
                   ("at", "below minimum 2024-01-01 00:00:00+00:00"): [4]}


@pytest.mark.parametrize(("mode", "header", "expected"), [
    ("exact", "id,label,amount,day", set()),
    ("exact", "label,id,amount,day", {("column-order", None)}),
    ("exact", "id,label,amount", {("missing-column", "day")}),
    ("exact", "id,label,amount,day,email", {("unexpected-column", "email")}),
    ("equal", "label,id,day,amount", set()),
    ("subset", "id,label,amount,day,extra", set()),
    ("subset", "id,label,amount", {("missing-column", "day")}),
    ("superset", "id,label", set()),
    ("superset", "id,label,extra", {("unexpected-column", "extra")}),
    ("partial", "id,zzz", set()),
])
def test_missing_and_unexpected_columns_follow_fields_match(project: Workdir, mode: str, header: str,
                                                            expected: set[tuple[str, str | None]]) -> None:
    body = SCHEMA.replace("fields:", f"fieldsMatch: {mode}\n  fields:", 1)
    names = header.split(",")
    values = {"id": "1", "label": "cat", "amount": "1", "day": "2024-01-01", "email": "a@b", "extra": "x",
              "zzz": "z"}
    setup(project, {"t.csv": header + "\n" + ",".join(values[n] for n in names) + "\n"},
          checks_yaml("data/t.csv", body))
    doc = validate(project)
    kinds = {"column-order": "columns are", "missing-column": "is not in the table",
             "unexpected-column": "is not in the schema"}
    got = {(k, r["column"]) for r in failures(doc) for k, text in kinds.items() if text in r["message"]}
    assert got == expected
    assert doc["failed"] == bool(expected)


def test_ragged_rows_are_reported_with_their_lines(project: Workdir) -> None:
    setup(project, {"t.csv": "a,b\n1,2\n3\n4,5,6\n"},
          checks_yaml("data/t.csv", "schema: {fields: [{name: a, type: integer}, {name: b, type: integer}]}"))
    (bad,) = failures(validate(project, code=1))
    assert bad["lines"] == [3, 4] and bad["count"] == 2 and "header's 2" in bad["message"]


def test_multiline_fields_keep_true_line_numbers(project: Workdir) -> None:
    data = 'id,note\n1,"two\nlines"\n2,ok\nx,"a\n\nb"\n4,ok\nz,ok\n'
    setup(project, {"t.csv": data},
          checks_yaml("data/t.csv", "schema: {fields: [{name: id, type: integer}, {name: note}]}"))
    (bad,) = failures(validate(project, code=1))
    assert bad["lines"] == [5, 9] and bad["count"] == 2


@pytest.mark.parametrize(("rows", "body", "status", "text"), [
    (5, "rows: {min: 5, max: 10}", "ok", "5 row(s) (min 5, max 10)"),
    (4, "rows: {min: 5}", "fail", "4 row(s), below min 5"),
    (11, "rows: {max: 10}", "fail", "11 row(s), above max 10"),
])
def test_rows_bounds(project: Workdir, rows: int, body: str, status: str, text: str) -> None:
    setup(project, {"t.jsonl": "".join(json.dumps({"i": i}) + "\n" for i in range(rows))},
          checks_yaml("data/t.jsonl", body))
    (result,) = validate(project)["results"]
    assert (result["rule"], result["status"], result["message"]) == ("rows", status, text)


def test_hash_pin_on_a_file_and_on_a_folder(project: Workdir) -> None:
    project.write_tree("data", {"a.bin": b"\x00\x01", "b.bin": b"two"})
    project.ok("add", "data")
    folder = project.pointer("data").oid
    project.write("vtool.yaml", f"checks:\n  data:\n    hash: {folder}\n  data/a.bin:\n"
                                "    hash: xxh128:0123456789abcdef0123456789abcdef\n")
    doc = validate(project, code=1)
    by_path = {r["path"]: r for r in doc["results"]}
    assert by_path["data"]["status"] == "ok" and folder in by_path["data"]["message"]
    assert by_path["data/a.bin"]["status"] == "fail" and "pinned xxh128:0123" in by_path["data/a.bin"]["message"]


def _set_license(project: Workdir, pointer_rel: str, value: str) -> None:
    path = project.path(pointer_rel)
    path.write_text(path.read_text() + f"meta:\n  license: {value}\n")


@pytest.mark.parametrize(("license_", "status"), [("CC-BY-4.0", "ok"), ("proprietary", "fail"), (None, "fail")])
def test_license_allow_list_reads_the_pointer_meta(project: Workdir, license_: str | None, status: str) -> None:
    setup(project, {"t.bin": b"\x89binary"}, checks_yaml("data/t.bin", "license: [cc-by-4.0, mit]"))
    if license_:
        _set_license(project, "data.vtool", license_)
    (result,) = validate(project)["results"]
    assert (result["rule"], result["status"]) == ("license", status)
    if license_ is None:
        assert "data.vtool has no meta.license" in result["message"]


def test_license_meta_survives_a_re_add(project: Workdir) -> None:
    setup(project, {"t.csv": "a\n1\n"}, checks_yaml("data", "license: mit"))
    _set_license(project, "data.vtool", "mit")
    project.write("data/t.csv", "a\n2\n")
    project.ok("add", "data")
    assert validate(project, code=0)["results"][0]["message"] == "mit is allowed"


@pytest.mark.parametrize(("columns", "body", "bad"), [
    ("user_id,email,phone_number", "pii: {deny: [email, phone], allow: [user_id]}", ["email", "phone_number"]),
    ("userEmail,id", "pii: [email]", ["userEmail"]),
    ("lessons,id", "pii: [ssn]", []),
    ("contact_email,id", "pii: {deny: ['*email*'], allow: [contact_email]}", []),
    ("SSN,id", "pii: [ssn]", ["SSN"]),
])
def test_pii_column_names(project: Workdir, columns: str, body: str, bad: list[str]) -> None:
    setup(project, {"t.csv": columns + "\n" + ",".join("1" for _ in columns.split(",")) + "\n"},
          checks_yaml("data/t.csv", body))
    doc = validate(project)
    assert [r["column"] for r in failures(doc)] == bad
    assert doc["failed"] == bool(bad)


def test_freshness_by_commit_age(project: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    setup(project, {"t.csv": "a\n1\n"}, checks_yaml("data", "freshness: {max_age: 7d}"))
    (result,) = validate(project, code=0)["results"]
    assert result["message"] == "changed since the last commit (age 0)"
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2001-01-01T00:00:00Z")
    project.commit("old data")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    (result,) = validate(project, code=1)["results"]
    assert "older than max_age 7d" in result["message"] and result["status"] == "fail"
    project.write("vtool.yaml", checks_yaml("data", "freshness: {max_age: 10000w}"))
    assert validate(project, code=0)["results"][0]["status"] == "ok"


@pytest.mark.parametrize(("values", "status"), [(["2001-01-01T00:00:00Z", "2002-05-01T00:00:00Z"], "fail"),
                                                (["2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"], "ok")])
def test_freshness_by_the_newest_value_of_a_column(project: Workdir, values: list[str], status: str) -> None:
    setup(project, {"t.jsonl": "".join(json.dumps({"ts": v}) + "\n" for v in values)},
          checks_yaml("data/t.jsonl", "freshness: {column: ts, max_age: 1d}"))
    (result,) = validate(project)["results"]
    assert (result["rule"], result["column"], result["status"]) == ("freshness", "ts", status)
    assert values[-1].replace("Z", "+00:00") in result["message"]


def test_freshness_column_of_epoch_seconds_from_the_schema(project: Workdir) -> None:
    body = """
        schema: {fields: [{name: t, type: integer}]}
        freshness: {column: t, max_age: 1h}
    """
    setup(project, {"t.csv": "t\n1000\n2000\n"}, checks_yaml("data/t.csv", body))
    fresh = [r for r in validate(project, code=1)["results"] if r["rule"] == "freshness"]
    assert fresh[0]["status"] == "fail" and "newest value 2000" in fresh[0]["message"]


def test_parquet_schema_and_rows_come_from_the_footer(project: Workdir, tmp_path: Any) -> None:
    setup(project, {"t.parquet": parquet_bytes(GOOD_ROWS, tmp_path)},
          checks_yaml("data/t.parquet", "schema: {fields: [{name: id, type: string}, {name: label}, "
                                        "{name: amount, type: number}, {name: day, type: date}]}\nrows: {min: 3}"))
    doc = validate(project, code=1)
    (bad,) = failures(doc)
    assert (bad["column"], bad["message"]) == ("id", "column is integer; expected string (3 rows)")
    assert doc["results"][-1]["message"] == "3 row(s) (min 3)"


def test_parquet_without_pyarrow_names_the_extra(project: Workdir, tmp_path: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    setup(project, {"t.parquet": parquet_bytes(GOOD_ROWS, tmp_path)}, checks_yaml("data/t.parquet", "rows: {min: 1}"))
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    result = project.run("validate")
    assert result.code == 1
    assert "ERROR data/t.parquet: read: reading Parquet needs the optional pyarrow extra: " \
           "pip install 'vtool[parquet]'" in result.out
    monkeypatch.undo()
    assert project.run("validate").code == 0  # the missing extra was not remembered as a result


def test_unknown_formats_take_only_hash_freshness_and_license(project: Workdir) -> None:
    setup(project, {"w.bin": b"\x00weights"}, "")
    oid = project.pointer("data").oid
    project.write("vtool.yaml", checks_yaml("data/w.bin", "license: [mit]\nfreshness: {max_age: 1d}")
                  + f"  data:\n    hash: {oid}\n")
    _set_license(project, "data.vtool", "mit")
    assert {r["status"] for r in validate(project, code=0)["results"]} == {"ok"}
    project.write("vtool.yaml", checks_yaml("data/w.bin", "rows: {min: 1}"))
    (result,) = validate(project, code=1)["results"]
    assert result["status"] == "error" and "unknown table format" in result["message"]
    project.write("vtool.yaml", checks_yaml("data/w.bin", "format: csv\nrows: {min: 1}"))
    assert validate(project)["results"][0]["rule"] == "read"  # read as CSV on request: a NUL byte


MALFORMED = [
    ("checks:\n  data/t.csv:\n    shema: {}\n", 3, "unknown rule 'shema'"),
    ("checks:\n  data/t.csv:\n    schema:\n      fields:\n        - {name: a, type: int}\n", 5, "unknown type 'int'"),
    ("checks:\n  data/t.csv:\n    rows: {min: -1}\n", 3, "rows min must be a whole number"),
    ("checks:\n  data/t.csv:\n    rows: {min: 1}\n  data/u.csv:\n    hash: abc\n", 5, "is not an oid"),
    ("checks:\n  data/t.csv:\n    freshness: {max_age: soon}\n", 3, "is not a duration"),
    ("checks:\n  data/t.csv:\n    schema:\n      fields:\n        - name: a\n          type: integer\n"
     "          constraints: {minimum: ten}\n", 7, "'ten' is not a valid integer"),
    ("checks:\n  data/t.csv:\n    schema:\n      fields:\n        - name: a\n          constraints:\n"
     "            unique: yes\n            size: 3\n", 8, "unknown constraint 'size'"),
    ("checks:\n  data/t.csv:\n    schema: {fields: [{name: a, constraints: {pattern: '(['}}]}\n", 3, "bad pattern"),
    ("checks:\n  data/t.csv:\n    schema: {fields: [{name: a, type: string, constraints: {minimum: 1}}]}\n", 3,
     "minimum applies to"),
    ("checks:\n  data/t.csv:\n    license: []\n", 3, "license must be a name"),
    ("checks:\n  data/t.csv: [1]\n", 2, "must be a mapping"),
    ("checks:\n  data/t.csv:\n    format: xlsx\n", 3, "format 'xlsx' is not one of"),
    ("checks:\n  a: {rows: {min: 1}}\n  a: {rows: {min: 2}}\n", 3, "duplicate key"),
    ("stages: {}\ncheck:\n  data/t.csv: {rows: {min: 1}}\n", 2, "unknown top-level key 'check'"),
    ("checks:\n  data/t.csv:\n    schema: {fields: [{name: ts}]}\n    freshness: {column: ts, max_age: 1d}\n", 4,
     "freshness column 'ts' is a string field"),
]


@pytest.mark.parametrize(("config", "line", "message"), MALFORMED)
def test_malformed_checks_are_usage_errors_with_their_line(project: Workdir, config: str, line: int,
                                                           message: str) -> None:
    setup(project, {"t.csv": "a\n1\n"}, config)
    result = project.fails("validate", code=2)
    assert result.out == ""
    (first, *_) = result.err.splitlines()
    assert first.startswith(f"error: vtool.yaml line {line}: ") or f"at line {line}" in first, first
    assert message in result.err


def test_globs_name_files_inside_tracked_folders(project: Workdir) -> None:
    project.write_tree("data/shards", {"a.csv": "n\n1\n", "b.csv": "n\nx\n", "c.tsv": "n\n1\n", "deep/d.csv": "n\n2\n"})
    project.ok("add", "data")
    body = "schema: {fields: [{name: n, type: integer}]}"
    project.write("vtool.yaml", checks_yaml("data/shards/*.csv", body) + "  data/**/d.csv:\n    rows: {min: 1}\n")
    doc = validate(project, code=1)
    assert [(r["path"], r["rule"], r["status"]) for r in doc["results"]] == [
        ("data/shards/a.csv", "schema", "ok"), ("data/shards/b.csv", "schema", "fail"),
        ("data/shards/deep/d.csv", "rows", "ok")]
    only = validate(project, "data/shards/a.csv", code=0)
    assert [r["path"] for r in only["results"]] == ["data/shards/a.csv"]


def test_a_check_matching_nothing_fails(project: Workdir) -> None:
    setup(project, {"t.csv": "a\n1\n"}, checks_yaml("data/renamed.csv", "rows: {min: 1}"))
    (result,) = validate(project, code=1)["results"]
    assert result["message"] == "no tracked file matches this check"


def test_a_path_no_check_covers_is_a_usage_error(project: Workdir) -> None:
    setup(project, {"t.csv": "a\n1\n"}, checks_yaml("data/t.csv", "rows: {min: 1}"))
    result = project.fails("validate", "other.csv", code=2)
    assert "other.csv: no check in vtool.yaml covers it" in result.err


def test_no_checks_declared(project: Workdir) -> None:
    assert project.ok("validate").out == "no checks declared in vtool.yaml (see docs/quality-gates.md)\n"


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("integer", ["1", "-2", "+3", "007"], ["1_000", " 12", "12 ", "\u0661\u0662", "1.0", "0x10", "1e3"]),
    ("number", ["1", "-2.5", ".5", "5.", "1e3", "1E-3", "NaN", "INF", "-INF"],
     ["nan", "inf", "Infinity", "1_0", " 1", "\u0661", "0x1p3", "1,5"]),
    ("date", ["2024-01-31", "2024-02-29"], ["2024-02-30", "2023-02-29", "20240101", "2024-W01-1", "2024-1-1"]),
    ("boolean", ["true", "False", "TRUE", "0", "1"], ["yes", "t", "tRUE", ""]),
])
def test_fast_casts_refuse_what_python_accepts_but_table_schema_does_not(kind: str, good: list[str],
                                                                          bad: list[str]) -> None:
    from vtool.checks.values import cast_column

    column = good + bad
    cast, wrong = cast_column(kind, None, column, typed=False, missing=())
    assert [column[i] for i in wrong] == bad
    assert all(v is not None for v in cast[: len(good)])
    # the all-good column takes the C fast path and agrees with the per-value path
    assert cast_column(kind, None, column, typed=False, missing=(), need_values=False)[1] == wrong
    assert cast_column(kind, None, good, typed=False, missing=(), need_values=False)[1] == []
    fast = cast_column(kind, None, good, typed=False, missing=())[0]
    assert list(map(repr, fast)) == list(map(repr, cast[: len(good)]))  # repr: NaN equals itself


def test_line_numbers_stay_exact_across_fast_blocks_quoted_blocks_and_blank_lines(project: Workdir) -> None:
    rows = [f"{i},name{i}" for i in range(60_000)]  # about 1 MiB of quote-free rows: several blocks
    rows[7] = "x7,bad"  # line 9
    rows[59_000] = "x59000,bad"  # line 59_002, in a later block
    tail = ['1,"a, quoted\nvalue"', "", "y,after the blank line and the two-line value"]
    data = "id,name\n" + "\n".join(rows) + "\n" + "\n".join(tail) + "\n"
    setup(project, {"t.csv": data}, checks_yaml("data/t.csv", "schema: {fields: [{name: id, type: integer}, "
                                                             "{name: name}]}\nrows: {min: 1}"))
    doc = validate(project, code=1)
    (bad,) = failures(doc)
    assert bad["lines"] == [9, 59_002, 60_005] and bad["count"] == 3
    assert doc["results"][-1]["message"] == "60002 row(s) (min 1)"


def test_crlf_and_blank_lines_read_like_the_csv_module(project: Workdir) -> None:
    setup(project, {"a.csv": "id\r\n1\r\n\r\nx\r\n", "b.csv": "id,v\n1,2\n\nx,3\n"},
          checks_yaml("data/*.csv", "schema: {fields: [{name: id, type: integer}], fieldsMatch: subset}"))
    got = {r["path"]: (r["lines"], r["count"]) for r in failures(validate(project, code=1))}
    assert got == {"data/a.csv": ([4], 1), "data/b.csv": ([4], 1)}


@pytest.mark.parametrize("data", ["", "id\n", "id", "\n\n"])
def test_empty_tables_have_no_rows(project: Workdir, data: str) -> None:
    setup(project, {"t.csv": data}, checks_yaml("data/t.csv", "rows: {min: 1}"))
    (result,) = validate(project, code=1)["results"]
    assert result["message"] == "0 row(s), below min 1"
