"""Directory manifests: one canonical, sorted list of entries per folder, hashed into an oid like git trees."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vtool.errors import FormatError
from vtool.hashing import Oid, hash_bytes, is_oid
from vtool.pointer import RESERVED_NAMES, check_component

HEADER = b"vtool-manifest 1\n"
MAX_MANIFEST_BYTES = 128 * 1024 * 1024
KIND_FILE = "f"
KIND_EXEC = "x"
KIND_DIR = "d"
KINDS = (KIND_FILE, KIND_EXEC, KIND_DIR)
FIELDS = 5
# Folders nest at most this deep (git caps trees at 2048 for the same reason): a hostile chain of tiny
# manifests must end in a clear error, not in Python's recursion limit. 512 levels is a >1 KiB path.
MAX_DEPTH = 512
# ASCII digits without leading zeros: str.isdigit() would take "06" (not canonical) and "²" (int() fails).
# At most 19 digits (every size below 2**63): int() refuses 5000 digits with a ValueError, not a FormatError.
_COUNT = re.compile(r"(0|[1-9][0-9]{0,18})\Z")


@dataclass(frozen=True, slots=True)
class Entry:
    """One member of a folder: a file (plain or executable) or a subfolder's manifest."""

    name: str
    kind: str
    oid: Oid
    size: int
    files: int

    @property
    def is_dir(self) -> bool:
        """Tell whether this entry names a subfolder manifest."""
        return self.kind == KIND_DIR


# The common case in one match: ASCII kind, oid and counts, then a name is_plain_name can vouch for;
# anything else takes the field-by-field path, which explains what is wrong.
_LINE = re.compile(r"([fxd]) (xxh128:[0-9a-f]{32}) (0|[1-9][0-9]{0,18}) (0|[1-9][0-9]{0,18}) (.+)")
_PLAIN = r"[A-Za-z0-9_+,=@%-][A-Za-z0-9 ._+,=@%-]*"
PLAIN_NAME = re.compile(_PLAIN)
# A whole manifest body of such lines, parsed in one pass; a plain name never starts with "." (so is
# never reserved), and a file's count must be 1. Anything else goes line by line, to say what is wrong.
_PLAIN_LINES = re.compile(rf"(?:[fx] xxh128:[0-9a-f]{{32}} (?:0|[1-9][0-9]{{0,18}}) 1 {_PLAIN}\n"
                          rf"|d xxh128:[0-9a-f]{{32}} (?:0|[1-9][0-9]{{0,18}}) (?:0|[1-9][0-9]{{0,18}}) {_PLAIN}\n)*")
_PLAIN_LINE = re.compile(r"([fxd]) (xxh128:[0-9a-f]{32}) ([0-9]+) ([0-9]+) ([^\n]+)\n")


def is_plain_name(name: str) -> bool:
    """Tell quickly whether a name is ASCII with no character that needs the full check."""
    return PLAIN_NAME.fullmatch(name) is not None and name.lower() not in RESERVED_NAMES


def check_name(name: str, where: str) -> None:
    """Refuse names that are unsafe, not NFC, or would break the line format."""
    check_component(name, where)
    if unicodedata.normalize("NFC", name) != name:
        raise FormatError(f"{where}: file name {name!r} is not in Unicode NFC form", "rename it")


def sort_key(entry: Entry) -> bytes:
    """Order entries by the UTF-8 bytes of their names, the same on every machine."""
    return entry.name.encode("utf-8", "surrogateescape")


def encode(entries: Iterable[Entry]) -> bytes:
    """Return the canonical bytes of a folder's manifest."""
    ordered = sorted(entries, key=sort_key)
    lines = [HEADER]
    lines.extend(f"{e.kind} {e.oid} {e.size} {e.files} {e.name}\n".encode() for e in ordered)
    return b"".join(lines)


def build(entries: Iterable[Entry]) -> tuple[Oid, bytes]:
    """Encode a manifest and name it by its hash."""
    data = encode(entries)
    return hash_bytes(data), data


def decode(data: bytes, where: str) -> list[Entry]:
    """Parse and validate manifest bytes; reject anything non-canonical."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise FormatError(f"{where}: manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    if not data.startswith(HEADER):
        raise FormatError(f"{where}: not a vtool manifest (bad header)")
    try:
        text = data[len(HEADER):].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{where}: manifest is not valid UTF-8") from None
    if text and not text.endswith("\n"):
        raise FormatError(f"{where}: manifest does not end with a newline")
    if _PLAIN_LINES.fullmatch(text):
        entries = [Entry(name, kind, oid, int(size), int(files)) for kind, oid, size, files, name
                   in _PLAIN_LINE.findall(text)]
    else:
        entries = [_parse_line(line, where) for line in text.split("\n")[:-1]]
    names = [sort_key(e) for e in entries]
    if names != sorted(set(names)):
        raise FormatError(f"{where}: manifest entries are not sorted and unique")
    return entries


def _parse_line(line: str, where: str) -> Entry:
    fast = _LINE.fullmatch(line)
    if fast is not None and is_plain_name(fast[5]) and (fast[1] == KIND_DIR or fast[4] == "1"):
        return Entry(fast[5], fast[1], fast[2], int(fast[3]), int(fast[4]))
    parts = line.split(" ", FIELDS - 1)
    if len(parts) != FIELDS:
        raise FormatError(f"{where}: malformed manifest line {line[:80]!r}")
    kind, oid, size, files, name = parts
    if kind not in KINDS or not is_oid(oid):
        raise FormatError(f"{where}: malformed manifest line {line[:80]!r}")
    if not (_COUNT.match(size) and _COUNT.match(files)) or (kind != KIND_DIR and files != "1"):
        raise FormatError(f"{where}: bad size or file count in {line[:80]!r}")
    check_name(name, where)
    return Entry(name, kind, oid, int(size), int(files))


Loader = Callable[[Oid], list[Entry]]


def totals(entries: Iterable[Entry]) -> tuple[int, int]:
    """Return a folder's total size and file count, as its parent's entry and its pointer must state them."""
    size = files = 0
    for e in entries:
        size += e.size
        files += e.files
    return size, files


class TotalsCheck:
    """Hold every folder to the totals its parent entry (or its pointer) claims, whichever is read first.

    A lying count is how a few tiny manifests that name one subfolder many times expand into millions of
    files: checked folder by folder as the tree is read, such a tree is refused before anything is written.
    """

    def __init__(self) -> None:
        self._claims: dict[Oid, list[tuple[int, int, str]]] = {}
        self._actual: dict[Oid, tuple[int, int]] = {}

    def claim(self, oid: Oid, size: int, files: int, who: str) -> None:
        """Record what a pointer or a parent entry says folder oid holds; refuse it if the folder is known to differ."""
        if oid in self._actual:
            self._compare(oid, (size, files, who), self._actual[oid])
        else:
            self._claims.setdefault(oid, []).append((size, files, who))

    def read(self, oid: Oid, entries: list[Entry]) -> None:
        """Check a folder just read against its claim, then note the claims it makes for its subfolders."""
        actual = self._actual[oid] = totals(entries)
        for claim in self._claims.get(oid, ()):  # kept until all pass, so a folder refused once is refused again
            self._compare(oid, claim, actual)
        self._claims.pop(oid, None)
        for e in entries:
            if e.is_dir:
                self.claim(e.oid, e.size, e.files, f"folder {oid} (entry {e.name!r})")

    @staticmethod
    def _compare(oid: Oid, claim: tuple[int, int, str], actual: tuple[int, int]) -> None:
        size, files, who = claim
        if (size, files) != actual:
            raise FormatError(f"{who} says folder {oid} holds {files} file(s) and {size} bytes, but its manifest "
                              f"holds {actual[1]} file(s) and {actual[0]} bytes",
                              "the pointer or manifest is wrong or hostile: fix or revert it")


def check_depth(depth: int, oid: Oid) -> None:
    """Refuse a tree nested deeper than MAX_DEPTH folders."""
    if depth > MAX_DEPTH:
        raise FormatError(f"{oid}: manifest tree is nested deeper than {MAX_DEPTH} folders")


def by_level(roots: Iterable[Oid], visit: Callable[[list[Oid]], Iterable[Oid]]) -> None:
    """Visit manifest trees a level at a time (each level fetched or checked in parallel), each manifest once.

    visit handles one level and returns the folders' manifests below it.
    """
    seen: set[Oid] = set()
    level = list(dict.fromkeys(roots))
    depth = 0
    while level:
        check_depth(depth, level[0])  # a hostile chain of manifests ends here, not after a million rounds
        depth += 1
        seen.update(level)
        level = [oid for oid in dict.fromkeys(visit(level)) if oid not in seen]


def walk(load: Loader, root: Oid, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Entry]]:
    """Yield (relative path, entry) for every file and folder below the manifest root, depth first."""
    check_depth(depth, root)
    for entry in load(root):
        path = f"{prefix}{entry.name}"
        yield path, entry
        if entry.is_dir:
            yield from walk(load, entry.oid, path + "/", depth + 1)


def files(load: Loader, root: Oid) -> dict[str, Entry]:
    """Flatten a tree into {relative path: file entry}."""
    return {path: e for path, e in walk(load, root) if not e.is_dir}


@dataclass(frozen=True)
class TreeDiff:
    """Files that differ between two trees, by relative path."""

    added: dict[str, Entry]
    deleted: dict[str, Entry]
    modified: dict[str, tuple[Entry, Entry]]
    # Folders (relative paths) only the new tree has, and only the old one has.
    added_folders: set[str] = field(default_factory=set)
    deleted_folders: set[str] = field(default_factory=set)


def diff(load: Loader, old: Oid | None, new: Oid | None) -> TreeDiff:
    """Compare two trees, descending only into subfolders whose manifest oids differ."""
    out = TreeDiff({}, {}, {})
    changes(load, old, new, collect_into(out))
    return out


def diff_folder(load: Loader, entries: list[Entry], new: Oid | None, prefix: str, out: TreeDiff) -> None:
    """Compare one folder's entries with the target folder new (None: absent), adding the target's subtrees the
    folder lacks; its own subfolders are left out, for a scan compares each of them as it builds it."""
    depth = prefix.count("/")
    check_depth(depth, new or "")
    compare_folder(load, entries, load(new) if new else [], collect_into(out), prefix, depth, walk_old=False)


# Receives each difference of two trees: its relative path, the old entry and the new one (None on the side
# where it is absent); a folder only one side has comes before the files below it.
Emit = Callable[[str, Entry | None, Entry | None], None]


def collect_into(out: TreeDiff) -> Emit:
    """Return an Emit that gathers differences into a TreeDiff."""
    def emit(path: str, a: Entry | None, b: Entry | None) -> None:
        if a is not None and b is not None:
            out.modified[path] = (a, b)
        elif a is not None and a.is_dir:
            out.deleted_folders.add(path)
        elif a is not None:
            out.deleted[path] = a
        elif b is not None and b.is_dir:
            out.added_folders.add(path)
        elif b is not None:
            out.added[path] = b
    return emit


def changes(load: Loader, old: Oid | None, new: Oid | None, emit: Emit, prefix: str = "", depth: int = 0) -> None:
    """Stream the differences of two trees to emit, one folder in memory at a time, skipping equal subtrees."""
    if old == new:
        return
    check_depth(depth, new or old or "")
    compare_folder(load, load(old) if old else [], load(new) if new else [], emit, prefix, depth)


def compare_folder(load: Loader, before: list[Entry], after: list[Entry], emit: Emit, prefix: str = "",
                   depth: int = 0, *, walk_old: bool = True, walk_new: bool = True) -> None:
    """Emit how one folder's entries differ, descending into differing subfolders.

    A scan compares each folder it builds itself and has no manifest of it: with walk_new (walk_old) False,
    the new (old) side's subfolders are neither read nor walked, and folders both sides hold are left to the
    scan; a folder only the other side has is still walked for its files.
    """
    old_by_name = {e.name: e for e in before}
    new_by_name = {e.name: e for e in after}
    for name in old_by_name.keys() | new_by_name.keys():
        a, b = old_by_name.get(name), new_by_name.get(name)
        path = prefix + name
        if a is not None and b is not None and a.is_dir and b.is_dir:
            if walk_old and walk_new:
                changes(load, a.oid, b.oid, emit, path + "/", depth + 1)
            continue
        if a is not None and a.is_dir:
            emit(path, a, None)
            if walk_old:
                changes(load, a.oid, None, emit, path + "/", depth + 1)
            a = None
        if b is not None and b.is_dir:
            emit(path, None, b)
            if walk_new:
                changes(load, None, b.oid, emit, path + "/", depth + 1)
            b = None
        if a is not None and b is not None:
            if (a.oid, a.kind) != (b.oid, b.kind):
                emit(path, a, b)
        elif a is not None or b is not None:
            emit(path, a, b)


def entry_at(load: Loader, root: Oid, sub: str) -> Entry | None:
    """Return the entry at a folder-relative path ("a/b.csv", "raw/2024") below root, or None if absent."""
    parts = sub.split("/")
    check_depth(len(parts), root)
    oid, found = root, None
    for i, name in enumerate(parts):
        found = next((e for e in load(oid) if e.name == name), None)
        if found is None or (not found.is_dir and i < len(parts) - 1):
            return None
        oid = found.oid
    return found


def replace_at(load: Loader, root: Oid, sub: str, new: Entry | None) -> tuple[Entry, dict[Oid, bytes]]:
    """Rebuild the manifests on the path to sub with its entry replaced by new (None removes it).

    Returns the new root as an entry (oid, total size and file count) and every manifest written on the
    way; all other folders keep their oids, as when add rewrites only the manifests on a changed path.
    """
    check_depth(sub.count("/") + 1, root)
    manifests: dict[Oid, bytes] = {}
    if new is None and entry_at(load, root, sub) is None:  # nothing to remove: no folder is made on the way
        entries = load(root)
        return Entry("", KIND_DIR, root, sum(e.size for e in entries), sum(e.files for e in entries)), manifests
    top = _replace(load, root, sub.split("/"), new, manifests)
    return top, manifests


def _replace(load: Loader, oid: Oid | None, parts: list[str], new: Entry | None,
             manifests: dict[Oid, bytes]) -> Entry:
    entries = {e.name: e for e in load(oid)} if oid is not None else {}
    name, rest = parts[0], parts[1:]
    if rest:
        below = entries.get(name)
        child = _replace(load, below.oid if below is not None and below.is_dir else None, rest, new, manifests)
        entries[name] = Entry(name, KIND_DIR, child.oid, child.size, child.files)
    elif new is None:
        entries.pop(name, None)
    else:
        entries[name] = Entry(name, new.kind, new.oid, new.size, new.files)
    oid_new, data = build(entries.values())
    manifests[oid_new] = data
    return Entry("", KIND_DIR, oid_new, sum(e.size for e in entries.values()),
                 sum(e.files for e in entries.values()))
