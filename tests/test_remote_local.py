"""The remote contract on LocalRemote, a folder in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote_contract import Plant, RemoteContract
from vtool.errors import RemoteError
from vtool.remote.base import RemoteConfig
from vtool.remote.local import LocalRemote


class TestLocalRemoteContract(RemoteContract):
    """LocalRemote must behave exactly like every other remote."""

    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        folder = tmp_path / "nas"
        folder.mkdir()
        return folder

    @pytest.fixture
    def remote(self, root: Path) -> Iterator[LocalRemote]:
        remote = LocalRemote(RemoteConfig(name="nas", url=str(root)))
        yield remote
        remote.close()

    @pytest.fixture
    def plant(self, root: Path) -> Plant:
        def write(relative: str, data: bytes) -> None:
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return write


def test_a_missing_folder_is_refused_with_the_command_that_creates_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(RemoteError, match="does not exist") as caught:
        LocalRemote(RemoteConfig(name="nas", url=str(missing)))
    assert f"mkdir -p {missing}" in str(caught.value)
