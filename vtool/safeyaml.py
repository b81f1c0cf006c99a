"""YAML anyone may have written (pointers, config, vtool.yaml): safe tags, no aliases, no duplicate keys, shallow."""

from __future__ import annotations

from typing import Any

import yaml

# Pointers and config nest two or three levels; a user's `meta` notes get room to spare.
MAX_DEPTH = 32
# How much of a refused value an error shows: enough to find it, never a 5000-digit wall.
MAX_SHOWN = 40
MAX_PROBLEM_SHOWN = 160


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that also refuses aliases (billion-laughs bombs), deep nesting and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            # An alias lets a few bytes expand exponentially once anything walks or prints the document.
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Refuse a key given twice, which PyYAML would silently resolve to the last one."""
        seen: set[str | int] = set()
        if not isinstance(node, yaml.MappingNode):  # e.g. `!!set [1]`: let PyYAML explain what it expected
            return super().construct_mapping(node, deep)
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int)):
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Turn a value Python cannot build (`2024-13-45`, a 5000-digit int, `0x_`) into a refusal with its line.

        PyYAML's constructors raise ValueError, KeyError, TypeError or AttributeError from inside the
        conversion; any of them means the file is malformed, not that vtool is broken.
        """
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 - every constructor failure is a malformed value
            raise _unbuildable(node, exc) from None

    def construct_document(self, node: yaml.Node) -> Any:
        """Apply the same rule to values PyYAML builds late (the second half of mappings, sets)."""
        try:
            return super().construct_document(node)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 - see construct_object
            raise _unbuildable(node, exc) from None


def _unbuildable(node: yaml.Node, exc: Exception) -> yaml.constructor.ConstructorError:
    """Name the value and its kind; its line comes from the node."""
    shown = node.value[:MAX_SHOWN] if isinstance(node.value, str) else node.tag
    kind = node.tag.rsplit(":", 1)[-1]
    return yaml.constructor.ConstructorError(None, None, f"cannot read {shown!r} as {kind}: {_reason(exc)}",
                                             node.start_mark)


def load(text: str) -> Any:
    """Parse one YAML document strictly; raises yaml.YAMLError on anything refused."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def _reason(exc: Exception) -> str:
    """Say in a few words why a constructor failed (its message can embed the whole value)."""
    text = str(exc).split(";", 1)[0] if not isinstance(exc, (KeyError, AttributeError)) else "not a valid value"
    return text[:MAX_SHOWN * 2]


def describe(exc: Exception) -> str:
    """Name a parse error and, for YAML, what and where, without echoing the whole input."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem:
        return type(exc).__name__
    line = f" at line {mark.line + 1}" if mark is not None else ""
    return f"{type(exc).__name__}: {str(problem)[:MAX_PROBLEM_SHOWN]}{line}"


Lines = dict[tuple[Any, ...], int]


def load_with_lines(text: str) -> tuple[Any, Lines]:
    """Parse strictly like load, and also map each key path (keys and list indexes) to its 1-based line."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: Lines = {}
    if node is not None:
        _record_lines(node, (), lines)
    return data, lines


def _record_lines(node: yaml.Node, path: tuple[Any, ...], lines: Lines) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1  # the key's own line wins over its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, i), lines)


def line_of(lines: Lines, path: tuple[Any, ...]) -> int:
    """Return the line of the deepest known prefix of path (1 when nothing is known)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
