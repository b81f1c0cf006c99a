"""A roll-forward journal: the steps of a multi-file change, written down first, so a killed command is finished.

`vtool rm` and `vtool mv` change several files (data, pointers, .gitignore lines) that no single rename covers.
They write every step here before taking the first, then run them in an order where no moment shows a pointer
without its ignore line; a kill leaves the journal, and the next vtool command in the repo (under the repo lock)
runs the steps again. Each step is idempotent, so a step that already happened is a no-op the second time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from vtool import gitrepo
from vtool.errors import FormatError, VtoolError, WorkspaceError
from vtool.fsutil import atomic_write, check_real_folder, make_dirs_inside, remove_file

JOURNAL_NAME = "journal.json"
JOURNAL_VERSION = 1
MAX_JOURNAL_BYTES = 1024 * 1024

Step = list[str]  # [kind, repo-relative path, second path or text for some kinds]


def run(root: Path, state_dir: Path, command: str, steps: list[Step]) -> None:
    """Write the steps down durably in the project's (ignored) state folder, carry them out, then drop them."""
    path = state_dir / JOURNAL_NAME
    state_dir.mkdir(parents=True, exist_ok=True)
    doc = {"version": JOURNAL_VERSION, "command": command, "steps": steps}
    import json  # here, not at the top: every command opens the project, few have a journal to write or read

    atomic_write(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    _apply(root, steps)
    remove_file(path)


def finish_interrupted(root: Path, state_dir: Path) -> str | None:
    """Finish the change a killed command left in the journal; return that command, or None if there was none."""
    path = state_dir / JOURNAL_NAME
    try:
        data = path.read_bytes()[:MAX_JOURNAL_BYTES + 1]
    except FileNotFoundError:
        return None
    command, steps = _decode(data, path)
    try:
        _apply(root, steps)
    except (OSError, VtoolError) as exc:
        raise WorkspaceError(f"the interrupted `{command}` could not be finished: {exc}",
                             f"fix that and run any vtool command again, or delete {path} to leave things as they "
                             "are") from None
    remove_file(path)
    return command


def _decode(data: bytes, path: Path) -> tuple[str, list[Step]]:
    import json

    try:
        doc = json.loads(data.decode("utf-8"))
        command, steps = doc["command"], doc["steps"]
        ok = (doc["version"] == JOURNAL_VERSION and isinstance(command, str) and isinstance(steps, list)
              and all(isinstance(s, list) and s and s[0] in STEPS and all(isinstance(a, str) for a in s)
                      for s in steps))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise FormatError(f"{path} is not a vtool journal", "delete it if no vtool rm or mv was interrupted")
    return command, steps


def _apply(root: Path, steps: list[Step]) -> None:
    for kind, *args in steps:
        STEPS[kind](root, *args)


def _target(root: Path, rel: str) -> Path:
    """A repo path a step writes, refused when it would go through a symlinked folder or leave the repo."""
    path = root / rel
    check_real_folder(root, path)
    return path


def _mkdir(root: Path, rel: str) -> None:
    make_dirs_inside(root, root / rel)


def _ignore(root: Path, data_rel: str) -> None:
    path = _target(root, data_rel)
    gitrepo.ensure_ignored(path.parent, path.name)


def _unignore(root: Path, data_rel: str) -> None:
    path = _target(root, data_rel)
    gitrepo.remove_ignored(path.parent, path.name)


def _write(root: Path, rel: str, text: str) -> None:
    path = _target(root, rel)
    data = text.encode("utf-8")
    if not os.path.isfile(path) or path.read_bytes() != data:
        atomic_write(path, data)


def _unlink(root: Path, rel: str) -> None:
    remove_file(_target(root, rel))


def _rename(root: Path, src_rel: str, dst_rel: str) -> None:
    """Move data; done already when only the destination exists, nothing to do when neither does."""
    src, dst = _target(root, src_rel), _target(root, dst_rel)
    if not os.path.lexists(src):
        return
    if os.path.lexists(dst):
        raise WorkspaceError(f"both {src_rel} and {dst_rel} exist", "move or delete one of them by hand")
    os.rename(src, dst)


STEPS: dict[str, Callable[..., None]] = {
    "mkdir": _mkdir, "ignore": _ignore, "unignore": _unignore, "write": _write, "unlink": _unlink,
    "rename": _rename,
}
