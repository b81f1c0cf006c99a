"""Fixtures for tests/ only: no fsync (durability is not under test here; integration/ keeps it).

The shared project fixtures are the projectkit plugin, loaded by the root conftest.py.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip fsync/syncfs in-process: durability is not under test here, and on a busy disk it costs seconds."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    if hasattr(os, "syncfs"):
        monkeypatch.setattr(os, "syncfs", lambda fd: None)
    monkeypatch.setattr(os, "sync", lambda: None)
