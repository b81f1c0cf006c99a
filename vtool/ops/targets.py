"""Which pointers an op works on: the workspace's or a revision's, each dataset whole or a path inside it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from vtool import gitrepo, manifest
from vtool import pointer as ptr
from vtool.errors import FormatError, UsageError
from vtool.ops.project import (
    Dataset,
    Project,
    all_datasets,
    checked_dataset,
    dataset_for,
    locate,
    outermost,
    read_pointer,
    select,
)
from vtool.pointer import Kind, Pointer


@dataclass(frozen=True)
class RevsOnRemote:
    """Which revisions count besides the workspace, the remote to work on, and how many jobs (sync and gc alike)."""

    revs: list[str] = field(default_factory=list)
    all_commits: bool = False
    remote: str | None = None
    jobs: int | None = None


@dataclass(frozen=True)
class Tracked:
    """A pointer and where it came from (the workspace, or a commit and the pointer file's bytes there).

    sub names a path inside the dataset when the target was one ("" for all of it); narrow() turns such a
    target into a dataset of its own: the part of the tree it names.
    """

    ds: Dataset
    pointer: Pointer
    rev: str | None = None
    data: bytes | None = None
    sub: str = ""

    @property
    def path(self) -> str:
        """Return the repo-relative path this names: the dataset's, or the one inside it."""
        return f"{self.ds.data_rel}/{self.sub}" if self.sub else self.ds.data_rel


def workspace_pointers(project: Project, targets: list[str]) -> list[Tracked]:
    """The pointers in the work tree, restricted to targets (datasets or paths inside them)."""
    return [_inside(Tracked(t.ds, read_pointer(project.root, t.ds)), t.sub) for t in select(project.root, targets)]


def _inside(t: Tracked, sub: str) -> Tracked:
    """Aim a dataset's pointer at a path inside it, which only a folder dataset has."""
    if sub and t.pointer.kind != Kind.DIR:
        raise UsageError(f"{t.ds.data_rel}/{sub}: {t.ds.data_rel} is a file, not a folder",
                         f"name the dataset itself: {t.ds.data_rel}")
    return replace(t, sub=sub)


def worktree_pointers(tree_root: Path) -> list[Tracked]:
    """The pointers in another work tree of the same repository (linked worktrees share one cache)."""
    return [Tracked(ds, read_pointer(tree_root, ds)) for ds in all_datasets(tree_root)]


def revision_pointers(project: Project, rev: str, targets: list[str]) -> list[Tracked]:
    """The pointers committed at rev, restricted to targets (paths in the work tree: datasets or inside them)."""
    committed = gitrepo.pointers_at(project.root, rev)
    subs: dict[str, list[str]] = {}
    if targets:
        found = [locate(project.root, t, [path for path, _ in committed]) for t in targets]
        for target in outermost([f for f in found if f is not None]):
            subs.setdefault(target.ds.pointer_rel, []).append(target.sub)
    out = []
    for path, data in committed:
        ds = checked_dataset(path, f"{rev}:{path}")
        if targets and path not in subs:
            continue
        try:
            whole = Tracked(ds, ptr.loads(data, path.rsplit("/", 1)[-1]), rev, data)
        except FormatError as exc:
            raise type(exc)(f"{rev}:{path}: {exc.message}", exc.hint) from None
        out += [_inside(whole, sub) for sub in subs.get(path, [""])]
    return out


def require_found(project: Project, targets: list[str], found: set[str], where: str) -> None:
    """Refuse a target that names no dataset (nor a path in one) at a revision, instead of showing nothing."""
    for target in targets:
        path = dataset_for(project.root, target).data_rel
        if not any(path == f or path.startswith(f + "/") for f in found):
            raise UsageError(f"{target}: not tracked by vtool at {where}", f"see: vtool log {target}")


def narrow(project: Project, t: Tracked, load: manifest.Loader | None = None) -> Tracked | None:
    """A target inside a dataset as a dataset of its own, the part of the tree it names; None where it is absent.

    Reads the manifests on the way down (from the cache unless load is given): a CacheError says they are missing.
    """
    if not t.sub:
        return t
    entry = manifest.entry_at(load or (lambda oid: project.read_manifest(oid)[0]), t.pointer.oid, t.sub)
    if entry is None:
        return None
    part = Pointer(entry.name, Kind.DIR if entry.is_dir else Kind.FILE, entry.oid, entry.size,
                   entry.files if entry.is_dir else 1, executable=entry.kind == manifest.KIND_EXEC)
    return Tracked(Dataset(t.ds.pointer_rel, t.path), part, t.rev)


def narrowed(project: Project, tracked: list[Tracked]) -> list[Tracked]:
    """Narrow every target; a path the dataset does not hold is an error naming where it was looked for."""
    out = []
    for t in tracked:
        part = narrow(project, t)
        if part is None:
            where = f"at {t.rev[:12]}" if t.rev else "in its pointer"
            raise UsageError(f"{t.path}: no such file or folder in the dataset {t.ds.data_rel} {where}",
                             f"see: vtool ls {t.ds.data_rel}")
        out.append(part)
    return out
