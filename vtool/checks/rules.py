"""Judge each rule of a check: from the table facts, the oid, the pointer's meta and the commit time."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass, field

from vtool.checks.spec import Check, Freshness
from vtool.checks.table import Facts, Finding
from vtool.hashing import Oid

OK = "ok"
FAIL = "fail"
ERROR = "error"
TABLE_RULES = ("schema", "rows", "pii")
_TOKENS = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
CONSTRAINT_TEXT = {
    "type": "not a {type}", "required": "required value missing", "unique": "duplicate value",
    "minimum": "below minimum {minimum}", "maximum": "above maximum {maximum}",
    "minLength": "shorter than minLength {min_length}", "maxLength": "longer than maxLength {max_length}",
    "pattern": "not matching pattern {pattern}", "enum": "not in enum {enum}",
}


@dataclass(frozen=True)
class Outcome:
    """One rule's verdict on one file (per column for failures), with the first offending lines."""

    rule: str
    status: str
    message: str
    column: str | None = None
    lines: list[int] = field(default_factory=list)
    count: int = 0


def hash_rule(check: Check, oid: Oid) -> Outcome:
    """The data must be exactly the pinned version."""
    if oid == check.hash:
        return Outcome("hash", OK, f"is the pinned {oid}")
    return Outcome("hash", FAIL, f"is {oid}, pinned {check.hash}", count=1)


def license_rule(check: Check, license_: object, pointer: str) -> Outcome:
    """The pointer's meta.license must be in the allow-list (compared case-insensitively)."""
    allowed = check.license or ()
    shown = ", ".join(allowed)
    if not isinstance(license_, str) or not license_:
        return Outcome("license", FAIL, f"{pointer} has no meta.license (allowed: {shown})", count=1)
    if license_.lower() in {a.lower() for a in allowed}:
        return Outcome("license", OK, f"{license_} is allowed")
    return Outcome("license", FAIL, f"{license_} is not in the allow-list ({shown})", count=1)


def commit_freshness(rule: Freshness, committed: float | None, now: float) -> Outcome:
    """The data's last commit must be younger than max_age; an uncommitted change is brand new."""
    if committed is None:
        return Outcome("freshness", OK, "changed since the last commit (age 0)")
    return _age_outcome(rule, now - committed, "last committed", None)


def _age_outcome(rule: Freshness, age: float, what: str, column: str | None) -> Outcome:
    text = f"{what} {_duration(age)} ago"
    if age <= rule.max_age_s:
        return Outcome("freshness", OK, f"{text} (max {rule.max_age})", column)
    return Outcome("freshness", FAIL, f"{text}, older than max_age {rule.max_age}", column, count=1)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table_rules(check: Check, facts: Facts, now: float) -> list[Outcome]:
    """Judge the rules that read the table: schema, rows, pii and a freshness column."""
    if facts.error is not None:
        return [Outcome("read", ERROR, f"cannot read as {facts.format}: {facts.error}", count=1)]
    out: list[Outcome] = []
    if check.schema is not None:
        out += _schema(check, facts)
    if check.rows is not None:
        out.append(_rows(check, facts))
    if check.pii is not None:
        out += _pii(check, facts.columns)
    if check.freshness is not None and check.freshness.column is not None:
        out += _column_freshness(check.freshness, facts, now)
    return out


def _schema(check: Check, facts: Facts) -> list[Outcome]:
    assert check.schema is not None
    failed = [_outcome(check, f, facts.where) for f in facts.findings if f.rule == "schema"]
    if failed:
        return failed
    return [Outcome("schema", OK, f"{len(check.schema.fields)} field(s) valid in {facts.rows} row(s)")]


def _outcome(check: Check, f: Finding, where: str) -> Outcome:
    """Describe one finding: what failed, how often, and the first offending lines with their values."""
    text = f.detail or _constraint_text(check, f)
    if f.lines:
        pairs = ", ".join(f"{where} {line} ({value!r})" if value else f"{where} {line}"
                          for line, value in zip(f.lines, f.values, strict=True))
        more = f" and {f.count - len(f.lines)} more" if f.count > len(f.lines) else ""
        text = f"{text}: {f.count} row(s), first {pairs}{more}"
    elif f.count > 1:
        text = f"{text} ({f.count} rows)"
    return Outcome(f.rule, FAIL, text, f.column, list(f.lines), f.count)


def _constraint_text(check: Check, f: Finding) -> str:
    spec = next((s for s in (check.schema.fields if check.schema else ()) if s.name == f.column), None)
    template = CONSTRAINT_TEXT.get(f.constraint, f.constraint)
    if spec is None:
        return template.format(type="datetime") if f.constraint == "type" else template
    c = spec.constraints
    enum = "[" + ", ".join(map(str, c.enum)) + "]" if c.enum else ""
    return template.format(type=spec.type, minimum=c.minimum, maximum=c.maximum, min_length=c.min_length,
                           max_length=c.max_length, pattern=c.pattern, enum=enum)


def _rows(check: Check, facts: Facts) -> Outcome:
    assert check.rows is not None
    low, high = check.rows.min, check.rows.max
    if low is not None and facts.rows < low:
        return Outcome("rows", FAIL, f"{facts.rows} row(s), below min {low}", count=1)
    if high is not None and facts.rows > high:
        return Outcome("rows", FAIL, f"{facts.rows} row(s), above max {high}", count=1)
    bounds = ", ".join(f"{k} {v}" for k, v in (("min", low), ("max", high)) if v is not None)
    return Outcome("rows", OK, f"{facts.rows} row(s) ({bounds})")


def pii_match(pattern: str, column: str) -> bool:
    """Match a column name: globs against the whole name, plain words against its words (user_email, userEmail)."""
    name = column.lower()
    pat = pattern.lower()
    if any(ch in pat for ch in "*?["):
        return fnmatch.fnmatchcase(name, pat)
    words = _TOKENS.findall(_CAMEL.sub("_", column).lower())
    wanted = _TOKENS.findall(pat)
    return any(words[i:i + len(wanted)] == wanted for i in range(len(words)))


def _pii(check: Check, columns: list[str]) -> list[Outcome]:
    assert check.pii is not None
    out = []
    for column in columns:
        if any(pii_match(a, column) for a in check.pii.allow):
            continue
        hit = next((p for p in check.pii.deny if pii_match(p, column)), None)
        if hit is not None:
            out.append(Outcome("pii", FAIL, f"column name matches denied pattern {hit!r}", column, count=1))
    return out or [Outcome("pii", OK, f"no column matches {', '.join(check.pii.deny)}")]


def _column_freshness(rule: Freshness, facts: Facts, now: float) -> list[Outcome]:
    bad = [_outcome_plain(f, facts.where) for f in facts.findings if f.rule == "freshness"]
    if bad:
        return bad
    if facts.newest is None:
        return [Outcome("freshness", FAIL, "the column has no values", rule.column, count=1)]
    return [_age_outcome(rule, now - newest_epoch(facts), f"newest value {facts.newest},", rule.column)]


def _outcome_plain(f: Finding, where: str) -> Outcome:
    text = f.detail or CONSTRAINT_TEXT.get(f.constraint, f.constraint).format(type="date or datetime")
    if f.lines:
        text += f": {f.count} row(s), first at {where} {f.lines[0]} ({f.values[0]!r})"
    return Outcome(f.rule, FAIL, text, f.column, list(f.lines), f.count)


def newest_epoch(facts: Facts) -> float:
    """Turn the stored newest value back into seconds since the epoch (dates count from midnight UTC)."""
    assert facts.newest is not None
    if facts.newest_type in ("integer", "number"):
        return float(facts.newest)
    if facts.newest_type == "date":
        day = dt.date.fromisoformat(facts.newest)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()
    return dt.datetime.fromisoformat(facts.newest).timestamp()
