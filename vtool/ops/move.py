"""`vtool rm` (stop tracking, keep the data) and `vtool mv` (data, pointer and ignore lines, like `git mv`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from vtool import pointer as ptr
from vtool.errors import UsageError, WorkspaceError
from vtool.gitrepo import GITIGNORE, is_tracked, list_pointer_files
from vtool.ops import journal
from vtool.ops.project import STATE_DIR, Dataset, Project, dataset_for, open_project, read_pointer
from vtool.pointer import POINTER_SUFFIX
from vtool.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class GitUpdate:
    """What to run so git records the change: paths to `git add`, and deleted tracked paths to `git rm --cached`."""

    add: list[str]
    rm: list[str]


@dataclass(frozen=True)
class RemoveResult:
    """Datasets no longer tracked (their data stays), and the git commands to run."""

    removed: list[str]
    git: GitUpdate


@dataclass(frozen=True)
class MoveResult:
    """A dataset moved from src to dst, and the git commands to run."""

    src: str
    dst: str
    git: GitUpdate


def remove(targets: list[str], progress: Progress = NULL_PROGRESS) -> RemoveResult:
    """Delete each target's pointer, then its ignore line; data and cache stay as they are."""
    if not targets:
        raise UsageError("nothing to remove", "name a tracked path: vtool rm data")
    with open_project(progress) as project:
        datasets = list(dict.fromkeys(_tracked(project, t) for t in targets))
        steps: list[journal.Step] = []
        for ds in datasets:  # pointer first: a kill in between leaves an ignore line, never a bare pointer
            steps += [["unlink", ds.pointer_rel], ["unignore", ds.data_rel]]
        journal.run(project.root, project.vtool_dir / STATE_DIR, f"vtool rm {' '.join(targets)}", steps)
        return RemoveResult([ds.data_rel for ds in datasets], _git_update(project, datasets))


def move(src: str, dst: str, progress: Progress = NULL_PROGRESS) -> MoveResult:
    """Move a dataset's data, pointer and ignore line to dst; refuse a destination that exists."""
    with open_project(progress) as project:
        old = _tracked(project, src)
        new = _destination(project, old, dst)
        pointer = read_pointer(project.root, old)
        text = ptr.dumps(dataclasses.replace(pointer, path=new.name)).decode("utf-8")
        parent = os.path.dirname(new.data_rel)
        # Every moment between two steps has each pointer's data ignored: the new line comes first, the
        # old one last, and the data moves (one rename) before the pointer that names it appears.
        steps: list[journal.Step] = ([["mkdir", parent]] if parent else []) + [
            ["ignore", new.data_rel], ["rename", old.data_rel, new.data_rel], ["write", new.pointer_rel, text],
            ["unlink", old.pointer_rel], ["unignore", old.data_rel]]
        journal.run(project.root, project.vtool_dir / STATE_DIR, f"vtool mv {src} {dst}", steps)
        project.stats.carry(old.data_rel, new.data_rel)
        return MoveResult(old.data_rel, new.data_rel, _git_update(project, [old, new]))


def _tracked(project: Project, user_path: str) -> Dataset:
    """The dataset a path names; a path inside one is refused, since rm and mv act on whole datasets."""
    ds = dataset_for(project.root, user_path)
    if (project.root / ds.pointer_rel).is_file():
        return ds
    for other in list_pointer_files(project.root):
        data = other[: -len(POINTER_SUFFIX)]
        if ds.data_rel.startswith(data + "/"):
            raise UsageError(f"{user_path} is inside the dataset {data}; vtool rm and mv act on whole datasets",
                             f"name {data}, or change the files and run: vtool add {data}")
    raise UsageError(f"{user_path}: not tracked by vtool (no {ds.pointer_rel})", "see: vtool status")


def _destination(project: Project, src: Dataset, user_path: str) -> Dataset:
    """Where src goes: dst itself, or inside dst when it is an existing folder (like `mv` and `git mv`)."""
    root = project.root
    target = user_path.rstrip("/") or user_path
    target = target[: -len(POINTER_SUFFIX)] if target.endswith(POINTER_SUFFIX) else target
    if os.path.isdir(target) and not os.path.islink(target):
        target = os.path.join(target, src.name)
    new = dataset_for(root, target)
    ptr.check_component(new.name, user_path)
    if new.data_rel == src.data_rel or new.data_rel.startswith(src.data_rel + "/"):
        raise UsageError(f"cannot move {src.data_rel} into itself ({new.data_rel})")
    for path in (new.data_rel, new.pointer_rel):
        if os.path.lexists(root / path):
            raise WorkspaceError(f"{path} already exists; vtool mv never overwrites", "move or delete it first")
    for other in list_pointer_files(root):
        data = other[: -len(POINTER_SUFFIX)]
        if data != src.data_rel and (new.data_rel.startswith(data + "/") or data.startswith(new.data_rel + "/")):
            raise WorkspaceError(f"{new.data_rel} would overlap {data}, which vtool already tracks")
    if is_tracked(root, new.data_rel):
        raise WorkspaceError(f"{new.data_rel} is tracked by git", "choose another destination")
    return new


def _git_update(project: Project, datasets: list[Dataset]) -> GitUpdate:
    """The pointers and .gitignore files touched: existing ones to add, vanished tracked ones to remove."""
    paths: list[str] = []
    for ds in datasets:
        folder = os.path.dirname(ds.data_rel)
        paths += [ds.pointer_rel, f"{folder}/{GITIGNORE}" if folder else GITIGNORE]
    add, rm = [], []
    for path in sorted(set(paths)):
        if os.path.lexists(project.root / path):
            add.append(path)
        elif is_tracked(project.root, path):
            rm.append(path)
    return GitUpdate(add, rm)

