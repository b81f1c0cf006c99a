"""Table Schema types: cast a column of values at a time (C-speed fast paths) and check its constraints."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtool.checks.spec import FieldSpec

TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
TRUE_VALUES = ("true", "True", "TRUE", "1")
FALSE_VALUES = ("false", "False", "FALSE", "0")
BOOLS = {**dict.fromkeys(TRUE_VALUES, True), **dict.fromkeys(FALSE_VALUES, False)}
SHOWN = 5
VALUE_CHARS = 40
_INTEGER = r"[+-]?[0-9]+"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|INF|-INF"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
ONE = {"integer": re.compile(_INTEGER), "number": re.compile(_NUMBER), "date": re.compile(_DATE)}
CONVERT: dict[str, Callable[[str], Any]] = {"integer": int, "number": float}
INT_REFUSED = " \t\r\x0b\x0c_"
NUMBER_REFUSED = INT_REFUSED + "nNiIaAfFtTyYxX"
NOT_DATE_CHARS = re.compile(r"[^0-9\n-]")
# A whole column joined by newlines is validated by one regex call when its values need no converting.
ALL = {k: re.compile(rf"(?:{ONE[k].pattern})(?:\n(?:{ONE[k].pattern}))*") for k in CONVERT}
ALL_OR_EMPTY = {k: re.compile(rf"(?:{ONE[k].pattern})?(?:\n(?:{ONE[k].pattern})?)*") for k in CONVERT}
TYPED_OK: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float, Decimal),
                                         "boolean": (bool,)}
LineOf = Callable[[int], int]


def _aware(value: dt.datetime) -> dt.datetime:
    """Read a naive datetime as UTC, so naive and zoned values compare."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def cast_text(kind: str, fmt: str | None, text: str) -> Any:
    """Parse one textual value (CSV) as the Table Schema type, raising ValueError when it is not one."""
    if kind == "string":
        return text
    if kind == "boolean":
        if text not in BOOLS:
            raise ValueError(text)
        return BOOLS[text]
    if kind in CONVERT:
        if not ONE[kind].fullmatch(text):
            raise ValueError(text)
        return CONVERT[kind](text)
    if fmt is not None:
        parsed = dt.datetime.strptime(text, fmt)
        return parsed.date() if kind == "date" else _aware(parsed)
    if kind == "date":
        if not ONE["date"].fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    return _aware(dt.datetime.fromisoformat(text))


def cast_typed(kind: str, fmt: str | None, value: Any) -> Any:
    """Accept one already-typed value (JSON, Parquet, YAML) of the Table Schema type; strings for dates."""
    if isinstance(value, bool) and kind != "boolean":
        raise ValueError(value)
    if kind in TYPED_OK:
        if not isinstance(value, TYPED_OK[kind]):
            raise ValueError(value)
        return value
    if isinstance(value, str):
        return cast_text(kind, fmt, value)
    if kind == "datetime" and isinstance(value, dt.datetime):
        return _aware(value)
    if kind == "date" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError(value)


def cast_value(kind: str, fmt: str | None, value: Any, yaml_value: bool = False) -> Any:
    """Cast one value from text or, with yaml_value, from an already-typed YAML scalar."""
    return cast_typed(kind, fmt, value) if yaml_value else cast_text(kind, fmt, value)


def _fast_text(kind: str, fmt: str | None, values: Sequence[str], has_empty: bool,
               need_values: bool) -> list[Any] | None:
    """Cast a whole column in C when every value is well formed; None sends it down the slow path.

    Without need_values (no bound, enum, unique or freshness on the column) only validity is proven and
    the text itself stands for each present value: nothing is converted that nothing compares.
    """
    if kind == "string":
        return list(values)
    try:
        if kind in CONVERT:
            if need_values:
                return _numbers(kind, values, has_empty)
            valid = (ALL_OR_EMPTY if has_empty else ALL)[kind].fullmatch("\n".join(values))
            return None if valid is None else [v or None for v in values] if has_empty else list(values)
        if has_empty:
            return None
        if kind == "boolean":
            if need_values:
                return list(map(BOOLS.__getitem__, values))
            return list(values) if BOOLS.keys() >= set(values) else None
        if fmt is not None:
            return None
        return _by_distinct(kind, values, need_values)
    except (KeyError, ValueError):
        return None


def _numbers(kind: str, values: Sequence[str], has_empty: bool) -> list[Any] | None:
    """Convert with int()/float() in C, then refuse what they accept but Table Schema does not."""
    joined = "\n".join(values)
    # int() and float() also take spaces, underscores and non-ASCII digits; float() takes nan/inf/infinity
    # in any case. Any of those characters sends the column down the exact per-value path.
    refused = NUMBER_REFUSED if kind == "number" else INT_REFUSED
    if not joined.isascii() or any(ch in joined for ch in refused):
        return None
    convert = CONVERT[kind]
    if not has_empty:
        return list(map(convert, values))
    return [convert(v) if v else None for v in values]


def _by_distinct(kind: str, values: Sequence[str], need_values: bool) -> list[Any]:
    """Parse each distinct date or datetime once (columns repeat them) and map the column through them."""
    distinct = list(set(values))
    if kind == "date":
        # Ten characters of digits and dashes that date.fromisoformat accepts can only be YYYY-MM-DD.
        joined = "\n".join(distinct)
        if len(joined) != 11 * len(distinct) - 1 or NOT_DATE_CHARS.search(joined):
            raise ValueError(joined[:40])
        parsed = dict(zip(distinct, map(dt.date.fromisoformat, distinct), strict=True))
    else:
        parsed = {text: _aware(dt.datetime.fromisoformat(text)) for text in distinct}
    return list(map(parsed.__getitem__, values)) if need_values else list(values)


def cast_column(kind: str, fmt: str | None, values: Sequence[Any], typed: bool, missing: tuple[str, ...],
                need_values: bool = True, no_empty: bool = False) -> tuple[list[Any], list[int]]:
    """Cast a batch of one column: values with None for missing ones, and the indexes that are not the type.

    no_empty says the reader already knows no value is "" (saves a pass over the column).
    """
    if not typed:
        markers = [m for m in missing if not (no_empty and m == "") and m in values]
        only_empty = markers == [""]
        if not markers or only_empty:
            fast = _fast_text(kind, fmt, values, only_empty, need_values)
            if fast is not None:
                if only_empty and kind not in CONVERT:
                    fast = [None if v == "" else c for v, c in zip(values, fast, strict=True)]
                return fast, []
        gone = set(markers)
        values = [None if v in gone else v for v in values]
    out: list[Any] = []
    bad: list[int] = []
    cast = cast_typed if typed else cast_text
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(cast(kind, fmt, value))
        except (ValueError, TypeError, OverflowError):
            out.append(None)
            bad.append(i)
    return out, bad


@dataclass
class Failure:
    """How often one constraint failed on one column, with the first offending lines and values."""

    constraint: str
    count: int = 0
    lines: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    def add(self, line: int, value: Any) -> None:
        """Count one offending value, keeping the first few for the report."""
        self.count += 1
        if len(self.lines) < SHOWN:
            self.lines.append(line)
            self.values.append(_shown(value))


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "..."


class ColumnCheck:
    """Checks one column batch by batch: type, then each constraint; keeps the newest value if asked."""

    def __init__(self, spec: FieldSpec, typed: bool, missing: tuple[str, ...], newest: bool = False) -> None:
        self.spec = spec
        self.typed = typed
        self.missing = missing
        self.keep_newest = newest
        self.newest: Any = None
        self.failures: dict[str, Failure] = {}
        self._seen: set[Any] = set()
        c = spec.constraints
        self._enum = None if c.enum is None else frozenset(c.enum)
        self._pattern = None if c.pattern is None else re.compile(c.pattern)
        self._need_values = newest or c.unique or self._enum is not None or c.minimum is not None \
            or c.maximum is not None

    def _fail(self, constraint: str, line: int, value: Any) -> None:
        self.failures.setdefault(constraint, Failure(constraint)).add(line, value)

    def feed(self, raw: Sequence[Any], line_of: LineOf, no_empty: bool = False) -> None:
        """Check one batch of this column's values (raw[i] is on line line_of(i))."""
        spec, c = self.spec, self.spec.constraints
        cast, bad = cast_column(spec.type, spec.format, raw, self.typed, self.missing, self._need_values, no_empty)
        for i in bad:
            self._fail("type", line_of(i), raw[i])
        has_none = None in cast
        if c.required and has_none:
            wrong = set(bad)
            for i, v in enumerate(cast):
                if v is None and i not in wrong:
                    self._fail("required", line_of(i), "")
        present = [v for v in cast if v is not None] if has_none else cast
        if not present:
            return
        self._bounds(cast, present, raw, line_of)
        if self._enum is not None and not self._enum.issuperset(present):
            self._each(cast, raw, line_of, "enum", lambda v: v not in self._enum)  # type: ignore[operator]
        if c.unique:
            self._unique(cast, present, raw, line_of)
        if self.keep_newest:
            top = max(present)
            self.newest = top if self.newest is None else max(self.newest, top)

    def _bounds(self, cast: list[Any], present: list[Any], raw: Sequence[Any], line_of: LineOf) -> None:
        c = self.spec.constraints
        if c.minimum is not None and min(present) < c.minimum:
            self._each(cast, raw, line_of, "minimum", lambda v: v < c.minimum)
        if c.maximum is not None and max(present) > c.maximum:
            self._each(cast, raw, line_of, "maximum", lambda v: v > c.maximum)
        if c.min_length is not None or c.max_length is not None:
            lengths = list(map(len, present))
            if c.min_length is not None and min(lengths) < c.min_length:
                self._each(cast, raw, line_of, "minLength", lambda v: len(v) < c.min_length)  # type: ignore[operator]
            if c.max_length is not None and max(lengths) > c.max_length:
                self._each(cast, raw, line_of, "maxLength", lambda v: len(v) > c.max_length)  # type: ignore[operator]
        if self._pattern is not None and not all(map(self._pattern.fullmatch, present)):
            self._each(cast, raw, line_of, "pattern", lambda v: self._pattern.fullmatch(v) is None)  # type: ignore[union-attr]

    def _each(self, cast: list[Any], raw: Sequence[Any], line_of: LineOf, constraint: str,
              offends: Callable[[Any], bool]) -> None:
        """Find the offending rows of a batch already known to hold some (the slow path runs only then)."""
        for i, v in enumerate(cast):
            if v is not None and offends(v):
                self._fail(constraint, line_of(i), raw[i])

    def _unique(self, cast: list[Any], present: list[Any], raw: Sequence[Any], line_of: LineOf) -> None:
        batch = set(present)
        if len(batch) < len(present) or not self._seen.isdisjoint(batch):
            local: set[Any] = set()
            for i, v in enumerate(cast):
                if v is None:
                    continue
                if v in self._seen or v in local:
                    self._fail("unique", line_of(i), raw[i])
                local.add(v)
        self._seen |= batch
