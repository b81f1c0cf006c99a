"""The architecture as a test: imports only go down the layers, and third-party libraries stay in their module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vtool"
# Top to bottom: a module may import only from its own layer's peers listed as allowed, or from lower layers.
LAYERS = [
    {"cli"},
    {"api"},
    {"ops"},
    {"transfer"},
    {"cache", "remote", "gitrepo", "workspace"},
    {"checks", "pipeline"},
    {"store"},
    {"statcache", "lock"},
    {"manifest"},
    {"pointer"},
    {"config"},
    {"flatyaml"},
    {"hashing", "safeyaml", "scrub", "workers"},
    {"fsutil"},
    {"progress"},
    {"errors"},
]
SAME_LAYER_ALLOWED = {("workspace", "cache"): False, ("cache", "workspace"): False}
ONLY_IN = {"typer": {"cli"}, "rich": {"cli"}, "boto3": {"remote"}, "botocore": {"remote"}, "git": {"gitrepo"}}
# Names only gitrepo may use: every git command vtool runs is spelled out there, once.
GIT_RUNNERS = ("run_git", "run_git_bytes")


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _layer(unit: str) -> int:
    for i, names in enumerate(LAYERS):
        if unit in names:
            return i
    raise AssertionError(f"module group {unit!r} is not placed in LAYERS")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names if node.module == "vtool"]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    unit = _unit(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] in ONLY_IN:
            assert unit in ONLY_IN[parts[0]], f"{path.name} imports {name}, reserved for {ONLY_IN[parts[0]]}"
        if parts[0] != "vtool" or len(parts) < 2:
            continue
        target = parts[1]
        if target in (unit, "__init__", "__version__"):
            continue
        assert _layer(target) > _layer(unit) or (
            _layer(target) == _layer(unit) and SAME_LAYER_ALLOWED.get((unit, target), False)
        ), f"{path.relative_to(PACKAGE)} ({unit}) imports vtool.{target}: imports must go down the layers"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_gitrepo_runs_git(path: Path) -> None:
    if _unit(path) == "gitrepo":
        return
    tree = ast.parse(path.read_text())
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert not used & set(GIT_RUNNERS), f"{path.name} runs git itself; add a function to vtool/gitrepo.py instead"
    argvs = [node for node in ast.walk(tree) if isinstance(node, ast.List | ast.Tuple) and node.elts]
    spawned = [a for a in argvs if isinstance(a.elts[0], ast.Constant) and a.elts[0].value == "git"]
    assert not spawned, f"{path.name} spawns git itself (line {spawned[0].lineno if spawned else 0}); use gitrepo"
