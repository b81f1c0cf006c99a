"""One pass over a table: the facts the data rules need (columns, rows, constraint findings, newest value)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from vtool.checks import readers
from vtool.checks.readers import Batch, Update
from vtool.checks.spec import FRESH_TYPES, Check, Constraints, FieldSpec, Schema
from vtool.checks.values import ColumnCheck, Failure


@dataclass
class Finding:
    """A failed constraint: which rule and column, how often, and the first offending lines and values."""

    rule: str
    column: str | None
    constraint: str
    count: int
    lines: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass
class Facts:
    """What reading a table established; cached by (check's data key, oid) so unchanged data is not reread."""

    format: str
    where: str
    rows: int
    columns: list[str]
    findings: list[Finding] = field(default_factory=list)
    newest: str | None = None
    newest_type: str | None = None
    error: str | None = None

    def to_json(self) -> bytes:
        """Encode for the results cache."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Facts:
        """Decode a results-cache entry (raises ValueError/TypeError/KeyError when damaged)."""
        doc = json.loads(data)
        doc["findings"] = [Finding(**f) for f in doc["findings"]]
        return cls(**doc)


@dataclass
class _Plan:
    """The columns a pass must read, each with its checker and the rule its findings belong to."""

    checks: dict[str, tuple[str, ColumnCheck]] = field(default_factory=dict)
    fresh: ColumnCheck | None = None


def scan(stream: IO[bytes], fmt: str, check: Check, update: Update | None = None) -> Facts:
    """Read a table of the given format once and collect the facts check's data rules need."""
    try:
        if fmt == "parquet":
            return _scan_parquet(stream, check)
        if fmt == "jsonl":
            return _scan_jsonl(stream, check, update)
        return _scan_csv(stream, fmt, check, update)
    except readers.UnreadableTable as exc:
        return Facts(fmt, "line", 0, [], error=str(exc))


def header_findings(schema: Schema, columns: list[str], ordered: bool) -> list[Finding]:
    """Compare a table's columns with the schema's fields under its fieldsMatch mode."""
    names = [f.name for f in schema.fields]
    mode = schema.fields_match
    have, want = set(columns), set(names)
    out = [Finding("schema", c, "duplicate-column", 1, detail="appears more than once")
           for c in sorted({c for c in columns if columns.count(c) > 1})]
    if mode in ("exact", "equal", "subset"):
        out += [Finding("schema", n, "missing-column", 1, detail="is not in the table") for n in names if n not in have]
    if mode in ("exact", "equal", "superset"):
        out += [Finding("schema", c, "unexpected-column", 1, detail="is not in the schema")
                for c in columns if c not in want]
    if mode == "partial" and not have & want:
        out.append(Finding("schema", None, "missing-column", 1, detail="none of the schema's fields is in the table"))
    if mode == "exact" and ordered and not out and columns != names:
        out.append(Finding("schema", None, "column-order", 1,
                           detail=f"columns are {','.join(columns)}; the schema says {','.join(names)}"))
    return out


def _plan(check: Check, columns: list[str] | None, typed: bool, types: dict[str, str] | None = None) -> _Plan:
    """Pick a checker per schema field present (all, when columns is None) and for the freshness column."""
    plan = _Plan()
    schema = check.schema
    fresh = check.freshness.column if check.freshness else None
    missing = schema.missing_values if schema else ()
    for spec in schema.fields if schema else ():
        if columns is None or spec.name in columns:
            plan.checks[spec.name] = ("schema", ColumnCheck(spec, typed, missing, newest=spec.name == fresh))
    if fresh is not None:
        if fresh in plan.checks:
            plan.fresh = plan.checks[fresh][1]
        elif columns is None or fresh in columns:
            kind = (types or {}).get(fresh, "datetime")
            spec = FieldSpec(fresh, kind if kind in FRESH_TYPES else "datetime")
            plan.fresh = ColumnCheck(spec, typed, missing, newest=True)
            plan.checks[fresh] = ("freshness", plan.fresh)
    return plan


def _finish(facts: Facts, plan: _Plan, check: Check) -> Facts:
    """Turn the checkers' failures into findings and record the newest value of the freshness column."""
    for name, (rule, cc) in plan.checks.items():
        facts.findings += [_finding(rule, name, f) for f in cc.failures.values()]
    fresh = check.freshness.column if check.freshness else None
    if fresh is not None and fresh not in facts.columns:
        facts.findings.append(Finding("freshness", fresh, "missing-column", 1, detail="is not in the table"))
    if plan.fresh is not None and plan.fresh.newest is not None:
        newest = plan.fresh.newest
        facts.newest = newest.isoformat() if isinstance(newest, dt.date) else str(newest)
        facts.newest_type = plan.fresh.spec.type
    return facts


def _finding(rule: str, column: str, failure: Failure) -> Finding:
    return Finding(rule, column, failure.constraint, failure.count, failure.lines, failure.values)


def _scan_csv(stream: IO[bytes], fmt: str, check: Check, update: Update | None) -> Facts:
    parts = readers.csv_batches(stream, fmt, update)
    header = next(parts)
    assert isinstance(header, list)
    facts = Facts(fmt, "line", 0, header)
    if check.schema:
        facts.findings += header_findings(check.schema, header, ordered=True)
    plan = _plan(check, header, typed=False)
    index = {name: i for i, name in reversed(list(enumerate(header)))}
    ragged = Failure("row-length")
    width = len(header)
    for batch in parts:
        assert isinstance(batch, Batch)
        facts.rows += batch.count
        if not plan.checks and not check.schema:
            continue
        columns = batch.columns if batch.columns is not None else _columns(batch.rows, width)
        if columns is None:
            batch = _even(batch, width, ragged)
            columns = _columns(batch.rows, width) or []
        for name, (_, cc) in plan.checks.items():
            if columns:
                cc.feed(columns[index[name]], batch.line_of, batch.no_empty)
    if ragged.count:
        facts.findings.append(Finding("schema", None, "row-length", ragged.count, ragged.lines, ragged.values,
                                      f"rows whose number of values is not the header's {width}"))
    return _finish(facts, plan, check)


def _columns(rows: list[list[str]], width: int) -> list[tuple[str, ...]] | None:
    """Transpose rows into columns in C; None when some row's length differs from the header's."""
    if not rows:
        return []
    if len(rows[0]) != width:
        return None
    try:
        return list(zip(*rows, strict=True))
    except ValueError:
        return None


def _even(batch: Batch, width: int, ragged: Failure) -> Batch:
    """Drop the rows whose length differs from the header's, counting them."""
    rows, starts = [], []
    for i, row in enumerate(batch.rows):
        if len(row) == width:
            rows.append(row)
            starts.append(batch.line_of(i))
        else:
            ragged.add(batch.line_of(i), f"{len(row)} values")
    return Batch(rows, starts, batch.first)


def _scan_jsonl(stream: IO[bytes], check: Check, update: Update | None) -> Facts:
    facts = Facts("jsonl", "line", 0, [])
    plan = _plan(check, None, typed=True)
    seen: dict[str, None] = {}
    for batch in readers.jsonl_batches(stream, update):
        rows = batch.rows
        facts.rows += len(rows)
        if rows:
            seen.update(dict.fromkeys(sorted(set().union(*rows) - seen.keys())))
        for name, (_, cc) in plan.checks.items():
            cc.feed([r.get(name) for r in rows], batch.line_of)
    facts.columns = list(seen)
    for name in [n for n in plan.checks if n not in seen]:  # a column absent from every row: report it once
        del plan.checks[name]
    if check.schema:
        facts.findings += header_findings(check.schema, facts.columns, ordered=False)
    return _finish(facts, plan, check)


def _scan_parquet(stream: IO[bytes], check: Check) -> Facts:
    pf = readers.open_parquet(stream)
    arrow = pf.schema_arrow
    facts = Facts("parquet", "row", pf.metadata.num_rows, list(arrow.names))
    types = {f.name: readers.parquet_type(f.type) for f in arrow}
    if check.schema:
        facts.findings += header_findings(check.schema, facts.columns, ordered=True)
    plan = _plan(check, facts.columns, typed=True, types=types)
    for name, (rule, cc) in list(plan.checks.items()):
        got, want = types[name], cc.spec.type
        if got != want and not (want == "number" and got == "integer"):
            facts.findings.append(Finding(rule, name, "type", facts.rows, detail=f"column is {got}; expected {want}"))
            del plan.checks[name]
        elif rule == "schema" and cc.spec.constraints == Constraints() and cc is not plan.fresh:
            del plan.checks[name]  # the footer already proved its type: nothing to read
    if plan.fresh is not None and plan.fresh.spec.name not in plan.checks:
        plan.fresh = None
    if plan.checks:
        for columns, first in readers.parquet_batches(pf, list(plan.checks)):
            for name, (_, cc) in plan.checks.items():
                cc.feed(columns[name], _rows_from(first))
    return _finish(facts, plan, check)


def _rows_from(first: int) -> Any:
    return lambda i: first + i
