"""S3Remote against a real S3 server: the shared contract, then what only S3 can get wrong."""

from __future__ import annotations

import io
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integration.s3helpers import S3Bucket, new_bucket_name
from integration.s3server import S3Server, free_ports
from tests.remote_contract import MULTIPART_SIZE, Plant, RemoteContract, fetch, oid_of, payload
from vtool.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteObjectMissingError,
    RemoteUnreachableError,
)
from vtool.remote import open_remote
from vtool.remote.base import RemoteConfig, object_key
from vtool.remote.s3 import S3Remote

JOBS = 8
# The remote's bounded retries fail a dead endpoint in seconds; 30 s leaves room for a slow CI box.
UNREACHABLE_BOUND_S = 30.0
WRONG_SECRET = "wrong-secret-5f3a9c0d7e"
UNKNOWN_KEY_ID = "AKIAUNKNOWNKEY000000"

Operation = Callable[[S3Remote, Path], object]
MakeRemote = Callable[[RemoteConfig], S3Remote]
OPERATIONS: dict[str, Operation] = {
    "stat": lambda remote, src: remote.stat(object_key(oid_of(b"x"))),
    "put": lambda remote, src: remote.put(object_key(oid_of(src.read_bytes())), src),
    "get": lambda remote, src: remote.get(object_key(oid_of(b"x")), io.BytesIO()),
    "list": lambda remote, src: list(remote.list()),
    "remove": lambda remote, src: remote.remove(object_key(oid_of(b"x"))),
}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A small file to upload."""
    path = tmp_path / "src"
    path.write_bytes(b"some bytes")
    return path


@pytest.fixture
def make_remote() -> Iterator[MakeRemote]:
    """Open S3 remotes through open_remote and close them all afterwards."""
    opened: list[S3Remote] = []

    def make(config: RemoteConfig) -> S3Remote:
        remote = open_remote(config, JOBS)
        assert isinstance(remote, S3Remote)
        opened.append(remote)
        return remote

    yield make
    for remote in opened:
        remote.close()


class TestS3RemoteContract(RemoteContract):
    """S3Remote must behave exactly like the folder remote."""

    @pytest.fixture
    def remote(self, s3_bucket: S3Bucket, make_remote: MakeRemote) -> S3Remote:
        return make_remote(s3_bucket.config())

    @pytest.fixture
    def plant(self, s3_bucket: S3Bucket) -> Plant:
        return s3_bucket.put_raw


def test_keys_are_prefix_then_fanout(s3_bucket: S3Bucket, make_remote: MakeRemote, src: Path) -> None:
    remote = make_remote(s3_bucket.config())
    oid = oid_of(src.read_bytes())
    remote.put(object_key(oid), src)
    assert s3_bucket.list_keys() == [f"{s3_bucket.prefix}/{object_key(oid)}"]


def test_over_64_mib_goes_up_as_a_multipart_upload(
    s3_bucket: S3Bucket, make_remote: MakeRemote, tmp_path: Path
) -> None:
    data = payload(MULTIPART_SIZE)
    path = tmp_path / "big"
    path.write_bytes(data)
    oid = oid_of(data)
    make_remote(s3_bucket.config()).put(object_key(oid), path)
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=s3_bucket.key(object_key(oid)))
    assert head["ContentLength"] == MULTIPART_SIZE
    assert head["ETag"].strip('"').endswith("-9"), "a multipart upload's ETag ends with -<parts>"


@pytest.mark.parametrize("url_prefix", ["", "/", "/team/datasets/", "/team/datasets"])
def test_prefix_slashes_are_normalised(
    s3_bucket: S3Bucket, make_remote: MakeRemote, src: Path, url_prefix: str
) -> None:
    remote = make_remote(s3_bucket.config(url=f"s3://{s3_bucket.name}{url_prefix}"))
    oid = oid_of(src.read_bytes())
    remote.put(object_key(oid), src)
    expected = url_prefix.strip("/")
    assert s3_bucket.list_keys() == [f"{expected}/{object_key(oid)}" if expected else object_key(oid)]
    assert [e.key for e in remote.list()] == [object_key(oid)]
    assert remote.describe().startswith(
        f"s3://{s3_bucket.name}{'/' + expected if expected else ''} (endpoint "
    )


def test_sibling_prefixes_and_the_bucket_root_are_not_listed(
    s3_bucket: S3Bucket, make_remote: MakeRemote
) -> None:
    remote = make_remote(s3_bucket.config(url=f"s3://{s3_bucket.name}/data"))
    ours, theirs = oid_of(b"ours"), oid_of(b"theirs")
    for key in (f"data/{object_key(ours)}", f"data2/{object_key(theirs)}", object_key(theirs)):
        s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=b"x")
    assert [e.key for e in remote.list()] == [object_key(ours)]


def test_describe_names_url_and_endpoint(s3_bucket: S3Bucket, make_remote: MakeRemote) -> None:
    remote = make_remote(s3_bucket.config())
    assert remote.describe() == f"{s3_bucket.url} (endpoint {s3_bucket.server.endpoint})"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unreachable_endpoint_fails_fast_as_retriable(
    make_remote: MakeRemote, src: Path, operation: str
) -> None:
    (closed_port,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{closed_port}"
    remote = make_remote(
        RemoteConfig(
            name="origin",
            url="s3://bucket/p",
            endpoint_url=endpoint,
            access_key_id="k",
            secret_access_key="s",
        )
    )
    started = time.monotonic()
    with pytest.raises(RemoteUnreachableError) as caught:
        OPERATIONS[operation](remote, src)
    assert time.monotonic() - started < UNREACHABLE_BOUND_S
    assert caught.value.retriable
    assert f"cannot reach {endpoint}" in str(caught.value)
    assert "--endpoint-url" in str(caught.value)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_missing_bucket_says_how_to_create_it(
    s3_server: S3Server, make_remote: MakeRemote, src: Path, operation: str
) -> None:
    bucket = new_bucket_name()
    remote = make_remote(
        RemoteConfig(
            name="origin",
            url=f"s3://{bucket}/p",
            endpoint_url=s3_server.endpoint,
            access_key_id=s3_server.access_key,
            secret_access_key=s3_server.secret_key,
        )
    )
    with pytest.raises(RemoteError) as caught:
        OPERATIONS[operation](remote, src)
    assert not isinstance(caught.value, (RemoteObjectMissingError, RemoteAuthError, RemoteUnreachableError))
    message = str(caught.value)
    assert f"bucket {bucket!r} does not exist" in message
    assert f"aws s3 mb s3://{bucket} --endpoint-url {s3_server.endpoint}" in message


def _bad_credentials(s3_bucket: S3Bucket, which: str) -> RemoteConfig:
    if which == "wrong-secret":
        return s3_bucket.config(secret_access_key=WRONG_SECRET)
    return s3_bucket.config(access_key_id=UNKNOWN_KEY_ID, secret_access_key=WRONG_SECRET)


@pytest.mark.parametrize("which", ["wrong-secret", "unknown-key"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_bad_credentials_are_an_auth_error_that_never_shows_the_secret(
    s3_bucket: S3Bucket, make_remote: MakeRemote, src: Path, operation: str, which: str
) -> None:
    remote = make_remote(_bad_credentials(s3_bucket, which))
    with pytest.raises(RemoteAuthError) as caught:
        OPERATIONS[operation](remote, src)
    error = caught.value
    assert "AWS_ACCESS_KEY_ID" in str(error)
    shown = [
        str(error),
        repr(error),
        remote.describe(),
        repr(remote),
        "".join(traceback.format_exception(error)),
    ]
    for text in shown:
        assert WRONG_SECRET not in text
        assert s3_bucket.server.secret_key not in text


def test_no_credentials_anywhere_is_an_auth_error(
    s3_bucket: S3Bucket, make_remote: MakeRemote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    remote = make_remote(s3_bucket.config(access_key_id=None, secret_access_key=None))
    with pytest.raises(RemoteAuthError, match="AWS_ACCESS_KEY_ID"):
        remote.stat(object_key(oid_of(b"x")))


def test_credentials_and_endpoint_from_the_environment(
    s3_bucket: S3Bucket,
    s3_environ: dict[str, str],
    make_remote: MakeRemote,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A host name, as users write it, rather than the IP the fixtures use.
    endpoint = s3_environ["AWS_ENDPOINT_URL"].replace("127.0.0.1", "localhost")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    remote = make_remote(RemoteConfig(name="origin", url=s3_bucket.url))
    oid = oid_of(src.read_bytes())
    remote.put(object_key(oid), src)
    assert [e.key for e in remote.list()] == [object_key(oid)]
    assert remote.describe() == f"{s3_bucket.url} (endpoint {endpoint})"


def test_credentials_from_a_named_profile(
    s3_bucket: S3Bucket,
    s3_environ: dict[str, str],
    make_remote: MakeRemote,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[vtool-test]\n"
        f"aws_access_key_id = {s3_bucket.server.access_key}\n"
        f"aws_secret_access_key = {s3_bucket.server.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    remote = make_remote(s3_bucket.config(access_key_id=None, secret_access_key=None, profile="vtool-test"))
    assert remote.stat(object_key(oid_of(b"x"))) is None
    with pytest.raises(RemoteAuthError, match="no-such-profile"):
        make_remote(s3_bucket.config(access_key_id=None, secret_access_key=None, profile="no-such-profile"))


def test_objects_survive_a_server_crash_and_the_remote_recovers(
    s3_bucket: S3Bucket, s3_outage: S3Server, make_remote: MakeRemote, src: Path
) -> None:
    remote = make_remote(s3_bucket.config())
    oid = oid_of(src.read_bytes())
    remote.put(object_key(oid), src)
    s3_outage.kill()
    started = time.monotonic()
    with pytest.raises(RemoteUnreachableError):
        remote.stat(object_key(oid))
    assert time.monotonic() - started < UNREACHABLE_BOUND_S
    s3_outage.start()
    assert remote.stat(object_key(oid)) == len(src.read_bytes())
    assert fetch(remote, oid) == src.read_bytes()
