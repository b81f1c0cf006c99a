"""Fixtures for tests/: the shared project fixtures, and no fsync (durability is not under test here)."""

from __future__ import annotations

import os

import pytest
from projectfixtures import git_repo, git_template, project, project_template

__all__ = ["git_repo", "git_template", "project", "project_template"]


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip fsync/syncfs in-process: durability is not under test here, and on a busy disk it costs seconds."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    if hasattr(os, "syncfs"):
        monkeypatch.setattr(os, "syncfs", lambda fd: None)
    monkeypatch.setattr(os, "sync", lambda: None)
