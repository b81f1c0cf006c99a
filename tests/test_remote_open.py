"""open_remote's choice of implementation, and what S3Remote decides before any request is sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vtool.errors import RemoteAuthError, RemoteError
from vtool.remote import open_remote
from vtool.remote.base import RemoteConfig
from vtool.remote.local import LocalRemote
from vtool.remote.s3 import S3Remote, parse_s3_url

SECRET = "very-secret-value-93f1"
KEY_ID = "AKIAEXAMPLEKEYID0000"
ENDPOINT = "http://127.0.0.1:9"
JOBS = 4


@pytest.fixture(autouse=True)
def no_user_aws_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own AWS profile and endpoint out of these tests."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def s3_config(url: str = "s3://bucket/team/data", **changes: str | None) -> RemoteConfig:
    fields: dict[str, str | None] = {
        "endpoint_url": ENDPOINT,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        **changes,
    }
    return RemoteConfig(name="origin", url=url, **fields)


@pytest.mark.parametrize("url", ["{root}", "file://{root}"])
def test_a_path_or_file_url_opens_a_local_remote(tmp_path: Path, url: str) -> None:
    remote = open_remote(RemoteConfig(name="nas", url=url.format(root=tmp_path)), JOBS)
    assert isinstance(remote, LocalRemote)
    assert remote.describe() == str(tmp_path)


def test_an_s3_url_opens_an_s3_remote() -> None:
    remote = open_remote(s3_config(), JOBS)
    assert isinstance(remote, S3Remote)
    remote.close()


@pytest.mark.parametrize("url", ["gs://bucket/x", "http://host/x", "https://host/x", "azure://c/x"])
def test_other_schemes_are_refused_naming_the_supported_ones(url: str) -> None:
    with pytest.raises(RemoteError) as caught:
        open_remote(RemoteConfig(name="origin", url=url), JOBS)
    assert "unsupported URL scheme" in str(caught.value)
    assert "s3://" in str(caught.value)
    assert "local folder" in str(caught.value)


def test_opening_a_local_remote_does_not_import_boto3(tmp_path: Path) -> None:
    code = (
        "import sys; from vtool.remote import open_remote; from vtool.remote.base import RemoteConfig; "
        f"open_remote(RemoteConfig(name='nas', url={str(tmp_path)!r}), 1); print('boto3' in sys.modules)"
    )
    repo = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/team", "bucket", "team"),
        ("s3://bucket/team/data/", "bucket", "team/data"),
        ("s3://my.bucket-1/a//b", "my.bucket-1", "a//b"),
    ],
)
def test_s3_urls_split_into_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://bad bucket/x", "s3://bu?cket/x"])
def test_malformed_s3_urls_are_refused(url: str) -> None:
    with pytest.raises(RemoteError, match="invalid bucket name"):
        parse_s3_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [("s3://bucket/team/data/", "s3://bucket/team/data"), ("s3://bucket", "s3://bucket")],
)
def test_describe_shows_url_and_endpoint(url: str, shown: str) -> None:
    remote = S3Remote(s3_config(url), JOBS)
    assert remote.describe() == f"{shown} (endpoint {ENDPOINT})"


def test_the_endpoint_can_come_from_aws_endpoint_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:7")
    remote = S3Remote(s3_config(endpoint_url=None), JOBS)
    assert remote.describe().endswith("(endpoint http://127.0.0.1:7)")


def test_neither_describe_nor_repr_shows_credentials() -> None:
    remote = S3Remote(s3_config(endpoint_url="http://user:pass@127.0.0.1:9"), JOBS)
    for text in (remote.describe(), repr(remote), str(remote)):
        assert SECRET not in text
        assert KEY_ID not in text
        assert "pass" not in text


@pytest.mark.parametrize("missing", ["access_key_id", "secret_access_key"])
def test_half_a_key_pair_is_refused(missing: str) -> None:
    with pytest.raises(RemoteAuthError, match="set both"):
        S3Remote(s3_config(**{missing: None}), JOBS)


def test_an_unknown_profile_is_an_auth_error() -> None:
    with pytest.raises(RemoteAuthError, match="no-such-profile"):
        S3Remote(s3_config(access_key_id=None, secret_access_key=None, profile="no-such-profile"), JOBS)
