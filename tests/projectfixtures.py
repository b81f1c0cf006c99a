"""Project fixtures shared by tests/ and integration/: real git repos built once per session, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from projectkit import Project, git_in, invoke


def _make_git_repo(root: Path) -> None:
    root.mkdir(parents=True)
    git_in(root, "init", "-q", "-b", "main")
    git_in(root, "config", "user.name", "Test User")
    git_in(root, "config", "user.email", "test@example.com")
    git_in(root, "config", "commit.gpgsign", "false")
    for sample in (root / ".git" / "hooks").glob("*.sample"):
        sample.unlink()  # fewer files to copy per test


@pytest.fixture(scope="session")
def git_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare-bones git repo (no vtool), built once."""
    root = tmp_path_factory.mktemp("template") / "git"
    _make_git_repo(root)
    return root


@pytest.fixture(scope="session")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with `vtool init` run and committed, built once."""
    root = tmp_path_factory.mktemp("template") / "project"
    _make_git_repo(root)
    result = invoke(("init",), root)
    assert result.code == 0, result.err
    git_in(root, "add", ".vtool")
    git_in(root, "commit", "-q", "-m", "vtool init")
    return root


@pytest.fixture
def git_repo(git_template: Path, tmp_path: Path) -> Project:
    """A fresh git repo where vtool is not initialised."""
    root = tmp_path / "repo"
    shutil.copytree(git_template, root, symlinks=True)
    return Project(root)


@pytest.fixture
def project(project_template: Path, tmp_path: Path) -> Project:
    """A fresh copy of the initialised project template."""
    root = tmp_path / "repo"
    shutil.copytree(project_template, root, symlinks=True)
    return Project(root)
