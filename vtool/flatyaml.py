"""The flat YAML vtool writes itself (pointers, config files), read and written without importing PyYAML
(17-20 ms a command).

A document is read here only when every line is blank, a comment (at its start), `key:` opening a nested
mapping, or `key: value` with a value PyYAML reads one way alone: a decimal integer, true or false, or a
word no YAML resolver claims. Anything else (flow style, quotes, non-ASCII, a repeated key, a word like
`yes` or `null`, an empty value) goes to safeyaml, so both readers give the same document or the same
refusal (tests compare them).
"""

from __future__ import annotations

import re
from typing import Any

KEY = r"[a-z][a-z0-9_-]{0,63}"
# A decimal int short of any size limit; a word starting with a letter, ending before any `:` at its end
# (a trailing colon would make it a mapping key).
WORD = r"[A-Za-z_][A-Za-z0-9_.:/+=-]*(?<!:)"
ENTRY = re.compile(rf"({KEY}):(?: (?:(0|[1-9][0-9]{{0,17}})|(true|false)|({WORD})))?")
# What dump writes as a plain scalar or key: exactly what ENTRY reads back.
PLAIN_KEY = re.compile(KEY)
PLAIN_WORD = re.compile(WORD)
MAX_INT_DIGITS = 18
# Nested mappings read here (config's remotes nest three deep); deeper goes to safeyaml and its own limit.
MAX_NESTING = 4
# Words PyYAML 1.1 resolves to a bool or null in any case (y and n too, to be safe): never read here.
CLAIMED_WORDS = frozenset({"yes", "no", "on", "off", "true", "false", "null", "y", "n"})
EMPTY_MAPPING = "{}"
# Printable ASCII and newlines only: YAML also breaks lines at U+0085, U+2028 and U+2029.
PLAIN_TEXT = re.compile(r"[\x20-\x7e\n]*")


class YamlError(ValueError):
    """A document the strict YAML reader refused, described without echoing it."""


def read(text: str) -> Any:
    """Parse one YAML document strictly: flat text here, anything else with safeyaml (PyYAML imported only then)."""
    doc = _flat(text)
    if doc is not None:
        return doc
    import yaml

    from vtool import safeyaml

    try:
        return safeyaml.load(text)
    except yaml.YAMLError as exc:
        raise YamlError(safeyaml.describe(exc)) from None


def dump(doc: dict[str, Any], sort_keys: bool = False) -> str | None:
    """Write a flat document exactly as PyYAML's block style does (no PyYAML import), or None outside the subset.

    The subset is what `read` takes back: keys and words it reads plain, non-negative integers, booleans and
    non-empty mappings up to its nesting; the caller hands anything else to PyYAML. Tests hold the two writers
    to the same bytes.
    """
    lines: list[str] = []
    try:
        _emit(doc, 0, sort_keys, lines)
    except _NotFlat:
        return None
    return "".join(lines)


def _emit(mapping: dict[str, Any], depth: int, sort_keys: bool, lines: list[str]) -> None:
    """Append one mapping's lines, indented two spaces a level as PyYAML indents them."""
    if not isinstance(mapping, dict) or not mapping or depth == MAX_NESTING:
        raise _NotFlat
    if not all(isinstance(key, str) and PLAIN_KEY.fullmatch(key) and key not in CLAIMED_WORDS for key in mapping):
        raise _NotFlat
    for key in sorted(mapping) if sort_keys else mapping:
        value = mapping[key]
        if isinstance(value, dict):
            lines.append(f"{'  ' * depth}{key}:\n")
            _emit(value, depth + 1, sort_keys, lines)
        else:
            lines.append(f"{'  ' * depth}{key}: {_scalar(value)}\n")


def _scalar(value: Any) -> str:
    """Spell a scalar the way PyYAML does, when both readers take the spelling back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value) is int and value >= 0 and len(str(value)) <= MAX_INT_DIGITS:
        return str(value)
    if isinstance(value, str) and PLAIN_WORD.fullmatch(value) and value.lower() not in CLAIMED_WORDS:
        return value
    raise _NotFlat


def describe(exc: Exception) -> str:
    """Name a read error: the YAML problem and its line, or the kind of a decoding error."""
    return str(exc) if isinstance(exc, YamlError) else type(exc).__name__


class _NotFlat(Exception):
    """Raised inside the flat reader when a line is outside its subset."""


def _flat(text: str) -> dict[str, Any] | None:
    """Return the mapping a flat document holds, or None when it is not flat (safeyaml decides then)."""
    if PLAIN_TEXT.fullmatch(text) is None:
        return None
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    if lines == [EMPTY_MAPPING]:
        return {}
    try:
        return _nested(lines)
    except _NotFlat:
        return None


def _nested(lines: list[str]) -> dict[str, Any]:
    """Build the mappings of block-style lines, each level indented deeper than its parent's keys."""
    root: dict[str, Any] = {}
    stack = [(0, root)]  # the open mappings, each with the indent of its keys
    opened: dict[str, Any] | None = None  # the mapping a `key:` line just opened, its indent not yet known
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if opened is not None:
            if indent <= stack[-1][0] or len(stack) == MAX_NESTING:  # `key:` alone is null: safeyaml's case
                raise _NotFlat
            stack.append((indent, opened))
        while indent < stack[-1][0]:
            stack.pop()
        match = ENTRY.fullmatch(line, indent)
        if indent != stack[-1][0] or match is None:
            raise _NotFlat
        opened = _put(stack[-1][1], *match.groups())
    if not root or opened is not None:
        raise _NotFlat
    return root


def _put(mapping: dict[str, Any], key: str, number: str | None, flag: str | None,
         word: str | None) -> dict[str, Any] | None:
    """Add one entry; return the mapping a `key:` line opens (None after a scalar)."""
    if key in mapping or key in CLAIMED_WORDS or (word is not None and word.lower() in CLAIMED_WORDS):
        raise _NotFlat  # a repeated key is refused by safeyaml; `on:` is a bool key there
    if number is None and flag is None and word is None:
        mapping[key] = {}
        return mapping[key]
    mapping[key] = int(number) if number is not None else flag == "true" if flag is not None else word
    return None
