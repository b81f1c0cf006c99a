"""The `checks:` section of vtool.yaml, parsed strictly into frozen rules; every mistake names its line."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from vtool import safeyaml
from vtool.checks.values import TYPES, cast_value
from vtool.errors import UsageError
from vtool.hashing import Oid, hash_bytes, is_oid

CONFIG_FILE = "vtool.yaml"
SECTION = "checks"
RULES = ("format", "schema", "rows", "hash", "freshness", "license", "pii")
CONSTRAINTS = ("required", "unique", "minimum", "maximum", "minLength", "maxLength", "pattern", "enum")
RANGE_TYPES = ("integer", "number", "date", "datetime")
FIELDS_MATCH = ("exact", "equal", "subset", "superset", "partial")
FORMATS = ("csv", "tsv", "jsonl", "parquet")
FRESH_TYPES = ("date", "datetime", "integer", "number")
DEFAULT_MISSING = ("",)
DURATION = re.compile(r"([0-9]+)\s*([smhdw])\Z")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Bumped whenever the readers or rules change what they report, so cached results are not reused.
ENGINE_VERSION = 1


class CheckSpecError(UsageError):
    """A check in vtool.yaml is malformed: an unknown rule, a bad type, a value of the wrong kind."""


@dataclass(frozen=True)
class Constraints:
    """Table Schema field constraints, with bounds and enum values already cast to the field's type."""

    required: bool = False
    unique: bool = False
    minimum: Any = None
    maximum: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class FieldSpec:
    """One column: its name, Table Schema type, optional date format and constraints."""

    name: str
    type: str
    format: str | None = None
    constraints: Constraints = Constraints()


@dataclass(frozen=True)
class Schema:
    """The columns a table must have and how strictly its header must match them."""

    fields: tuple[FieldSpec, ...]
    fields_match: str = "exact"
    missing_values: tuple[str, ...] = DEFAULT_MISSING


@dataclass(frozen=True)
class Rows:
    """Bounds on the number of data rows."""

    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Freshness:
    """How old the data may be: since its last commit, or since the newest value of a column."""

    max_age: str
    max_age_s: int
    column: str | None = None


@dataclass(frozen=True)
class Pii:
    """Column-name patterns that must not appear, and names exempted from them."""

    deny: tuple[str, ...]
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """The rules declared for one path or glob in vtool.yaml."""

    key: str
    line: int
    format: str | None = None
    schema: Schema | None = None
    rows: Rows | None = None
    hash: Oid | None = None
    freshness: Freshness | None = None
    license: tuple[str, ...] | None = None
    pii: Pii | None = None

    @property
    def needs_table(self) -> bool:
        """Tell whether some rule must read the data as a table."""
        return bool(self.schema or self.rows or self.pii or (self.freshness and self.freshness.column))

    def data_key(self) -> str:
        """Hash what decides the table pass (format, schema, freshness column): the results cache's key."""
        doc = {"engine": ENGINE_VERSION, "format": self.format, "schema": _plain(self.schema),
               "column": self.freshness.column if self.freshness else None}
        return hash_bytes(json.dumps(doc, sort_keys=True, default=str).encode())[len("xxh128:"):]


def _plain(value: Any) -> Any:
    return asdict(value) if value is not None else None


class _Parser:
    """Walks the parsed YAML with its line map, so every error says where it is."""

    def __init__(self, lines: safeyaml.Lines) -> None:
        self.lines = lines

    def fail(self, path: tuple[Any, ...], what: str, hint: str | None = None) -> CheckSpecError:
        return CheckSpecError(f"{CONFIG_FILE} line {safeyaml.line_of(self.lines, path)}: {what}", hint)

    def mapping(self, value: Any, path: tuple[Any, ...], what: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(path, f"{what} must be a mapping of names to values")
        return value

    def check(self, key: Any, body: Any) -> Check:
        path = (SECTION, key)
        if not isinstance(key, str) or not key.strip("/"):
            raise self.fail(path, f"check key {key!r} must be a tracked path or glob")
        body = self.mapping(body, path, f"check {key!r}")
        for rule in body:
            if rule not in RULES:
                raise self.fail((*path, rule), f"unknown rule {rule!r} in check {key!r}",
                                 f"rules: {', '.join(RULES)}")
        if not body:
            raise self.fail(path, f"check {key!r} declares no rule", f"rules: {', '.join(RULES)}")
        check = Check(
            key=key.strip("/"), line=safeyaml.line_of(self.lines, path),
            format=self.choice(body.get("format"), (*path, "format"), FORMATS, "format"),
            schema=self.schema(body["schema"], (*path, "schema")) if "schema" in body else None,
            rows=self.rows(body["rows"], (*path, "rows")) if "rows" in body else None,
            hash=self.oid(body["hash"], (*path, "hash")) if "hash" in body else None,
            freshness=self.freshness(body["freshness"], (*path, "freshness")) if "freshness" in body else None,
            license=self.names(body["license"], (*path, "license"), "license") if "license" in body else None,
            pii=self.pii(body["pii"], (*path, "pii")) if "pii" in body else None,
        )
        column = check.freshness.column if check.freshness else None
        kind = next((f.type for f in check.schema.fields if f.name == column), None) if check.schema else None
        if kind is not None and kind not in FRESH_TYPES:
            raise self.fail((*path, "freshness", "column"), f"freshness column {column!r} is a {kind} field",
                            f"it must be one of {', '.join(FRESH_TYPES)}")
        return check

    def choice(self, value: Any, path: tuple[Any, ...], allowed: tuple[str, ...], what: str) -> str | None:
        if value is not None and value not in allowed:
            raise self.fail(path, f"{what} {value!r} is not one of {', '.join(allowed)}")
        return value

    def schema(self, value: Any, path: tuple[Any, ...]) -> Schema:
        body = self.mapping(value, path, "schema")
        unknown = set(body) - {"fields", "fieldsMatch", "missingValues"}
        if unknown:
            raise self.fail((*path, sorted(unknown)[0]), f"unknown schema key {sorted(unknown)[0]!r}",
                            "schema keys: fields, fieldsMatch, missingValues")
        fields = body.get("fields")
        if not isinstance(fields, list) or not fields:
            raise self.fail((*path, "fields"), "schema needs a non-empty list of fields")
        specs = tuple(self.field(f, (*path, "fields", i)) for i, f in enumerate(fields))
        names = [f.name for f in specs]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise self.fail((*path, "fields"), f"field {dup!r} is declared twice")
        missing = body.get("missingValues", list(DEFAULT_MISSING))
        if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
            raise self.fail((*path, "missingValues"), "missingValues must be a list of strings")
        match = self.choice(body.get("fieldsMatch", "exact"), (*path, "fieldsMatch"), FIELDS_MATCH, "fieldsMatch")
        return Schema(specs, match or "exact", tuple(missing))

    def field(self, value: Any, path: tuple[Any, ...]) -> FieldSpec:
        body = self.mapping(value, path, "a field")
        unknown = set(body) - {"name", "type", "format", "constraints", "description", "title"}
        if unknown:
            raise self.fail((*path, sorted(unknown)[0]), f"unknown field key {sorted(unknown)[0]!r}")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(path, "a field needs a name (a string)")
        kind = body.get("type", "string")
        if kind not in TYPES:
            raise self.fail((*path, "type"), f"field {name!r}: unknown type {kind!r}", f"types: {', '.join(TYPES)}")
        fmt = body.get("format")
        if fmt is not None and (not isinstance(fmt, str) or kind not in ("date", "datetime")):
            raise self.fail((*path, "format"), f"field {name!r}: format applies to date and datetime, as a "
                            "strptime pattern such as '%d/%m/%Y'")
        fmt = None if fmt in (None, "default", "any") else fmt
        raw = self.mapping(body.get("constraints", {}), (*path, "constraints"), f"field {name!r} constraints")
        return FieldSpec(name, kind, fmt, self.constraints(raw, kind, fmt, name, (*path, "constraints")))

    def constraints(self, body: dict[str, Any], kind: str, fmt: str | None, name: str,
                    path: tuple[Any, ...]) -> Constraints:
        for key in body:
            if key not in CONSTRAINTS:
                raise self.fail((*path, key), f"field {name!r}: unknown constraint {key!r}",
                                f"constraints: {', '.join(CONSTRAINTS)}")
        for key in ("required", "unique"):
            if not isinstance(body.get(key, False), bool):
                raise self.fail((*path, key), f"field {name!r}: {key} must be true or false")
        for key in ("minimum", "maximum"):
            if key in body and kind not in RANGE_TYPES:
                raise self.fail((*path, key), f"field {name!r}: {key} applies to {', '.join(RANGE_TYPES)}")
        for key in ("minLength", "maxLength", "pattern"):
            if key in body and kind != "string":
                raise self.fail((*path, key), f"field {name!r}: {key} applies to string fields")
        lengths = [body.get(k) for k in ("minLength", "maxLength")]
        for key, n in zip(("minLength", "maxLength"), lengths, strict=True):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
                raise self.fail((*path, key), f"field {name!r}: {key} must be a whole number >= 0")
        pattern = body.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise self.fail((*path, "pattern"), f"field {name!r}: bad pattern {pattern!r}: {exc}") from None
        enum = body.get("enum")
        if enum is not None and (not isinstance(enum, list) or not enum):
            raise self.fail((*path, "enum"), f"field {name!r}: enum must be a non-empty list")
        return Constraints(
            required=body.get("required", False), unique=body.get("unique", False),
            minimum=self.typed(body.get("minimum"), kind, fmt, name, (*path, "minimum")),
            maximum=self.typed(body.get("maximum"), kind, fmt, name, (*path, "maximum")),
            min_length=lengths[0], max_length=lengths[1], pattern=pattern,
            enum=None if enum is None else tuple(self.typed(v, kind, fmt, name, (*path, "enum", i))
                                                 for i, v in enumerate(enum)),
        )

    def typed(self, value: Any, kind: str, fmt: str | None, name: str, path: tuple[Any, ...]) -> Any:
        """Cast a bound or enum value written in YAML to the field's type, or say why it cannot be."""
        if value is None:
            return None
        if isinstance(value, (dt.date, dt.datetime)):  # YAML reads an unquoted 2024-01-31 as a date
            value = value.isoformat()
        try:
            return cast_value(kind, fmt, value if isinstance(value, str) else value, yaml_value=True)
        except ValueError:
            raise self.fail(path, f"field {name!r}: {value!r} is not a valid {kind}",
                            "quote strings that YAML reads otherwise, e.g. 'yes'") from None

    def rows(self, value: Any, path: tuple[Any, ...]) -> Rows:
        body = self.mapping(value, path, "rows")
        for key, n in body.items():
            if key not in ("min", "max"):
                raise self.fail((*path, key), f"unknown rows key {key!r}", "rows keys: min, max")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise self.fail((*path, key), f"rows {key} must be a whole number >= 0")
        return Rows(body.get("min"), body.get("max"))

    def oid(self, value: Any, path: tuple[Any, ...]) -> Oid:
        if not is_oid(value):
            raise self.fail(path, f"hash {str(value)[:80]!r} is not an oid", "expected xxh128: and 32 lowercase hex")
        return str(value)

    def freshness(self, value: Any, path: tuple[Any, ...]) -> Freshness:
        body = self.mapping(value, path, "freshness")
        unknown = set(body) - {"max_age", "column"}
        if unknown:
            raise self.fail((*path, sorted(unknown)[0]), f"unknown freshness key {sorted(unknown)[0]!r}",
                            "freshness keys: max_age, column")
        text = body.get("max_age")
        found = DURATION.match(str(text).strip()) if isinstance(text, (str, int)) else None
        if isinstance(text, bool) or found is None and not isinstance(text, int):
            raise self.fail((*path, "max_age"), f"freshness max_age {text!r} is not a duration",
                            "e.g. 90s, 30m, 12h, 7d, 2w, or a number of seconds")
        seconds = text if found is None else int(found.group(1)) * UNIT_S[found.group(2)]
        column = body.get("column")
        if column is not None and (not isinstance(column, str) or not column):
            raise self.fail((*path, "column"), "freshness column must be a column name")
        return Freshness(str(text), int(seconds), column)

    def names(self, value: Any, path: tuple[Any, ...], what: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
            raise self.fail(path, f"{what} must be a name or a non-empty list of names")
        return tuple(items)

    def pii(self, value: Any, path: tuple[Any, ...]) -> Pii:
        if isinstance(value, list):
            return Pii(self.names(value, path, "pii"))
        body = self.mapping(value, path, "pii")
        unknown = set(body) - {"deny", "allow"}
        if unknown or "deny" not in body:
            raise self.fail(path, "pii needs deny (column-name patterns) and may have allow")
        allow = self.names(body["allow"], (*path, "allow"), "pii allow") if "allow" in body else ()
        return Pii(self.names(body["deny"], (*path, "deny"), "pii deny"), allow)


def parse(text: str, top_keys: tuple[str, ...] = (SECTION,)) -> list[Check]:
    """Read the checks declared in vtool.yaml text; a top-level key not in top_keys is a mistake, not ignored."""
    try:
        doc, lines = safeyaml.load_with_lines(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CheckSpecError(f"{CONFIG_FILE}: {safeyaml.describe(exc)}") from None
    if doc is None:
        return []
    parser = _Parser(lines)
    if not isinstance(doc, dict):
        raise parser.fail((), f"{CONFIG_FILE} must be a mapping (stages:, checks:)")
    for key in doc:
        if key not in top_keys:
            raise parser.fail((key,), f"unknown top-level key {key!r}", f"vtool.yaml knows only {', '.join(top_keys)}")
    section = doc.get(SECTION)
    if section is None:
        return []
    body = parser.mapping(section, (SECTION,), "checks")
    return [parser.check(key, value) for key, value in body.items()]
