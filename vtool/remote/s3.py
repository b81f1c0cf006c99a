"""An S3-compatible remote (AWS S3, MinIO, SeaweedFS, Ceph, R2): the only module that imports boto3."""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import botocore.config
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from vtool import scrub
from vtool.config import check_endpoint
from vtool.errors import RemoteAuthError, RemoteError, RemoteObjectMissingError, RemoteUnreachableError
from vtool.remote.base import RemoteConfig
from vtool.store.backend import Listed
from vtool.store.layout import shown_key

SCHEME = "s3://"
MiB = 1 << 20
# One PUT up to 64 MiB (a pack's cap: a pack is one request); multipart above, in 8 MiB parts, so
# S3's 10,000-part cap still allows 78 GiB.
MULTIPART_THRESHOLD = 64 * MiB + 1
MULTIPART_CHUNK = 8 * MiB
GET_CHUNK = 1 * MiB
MIN_POOL_CONNECTIONS = 10
# Retries after the first attempt; with connect and backoff bounds, a dead server fails in ~10-20 s.
MAX_RETRIES = 2
CONNECT_TIMEOUT = 5
# Per socket read, not per request: a hung server costs at most 3 x 30 s, a slow large body is fine.
READ_TIMEOUT = 30
# botocore retries a request until its response starts, not a body cut short after that: get() resumes
# such a body itself with a Range request, MAX_RETRIES times, waiting BACKOFF_S, then twice that.
BODY_ERRORS = (IncompleteReadError, HTTPClientError)  # HTTPClientError: resets and read timeouts
BACKOFF_S = 0.25
BUCKET_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,255}$")
ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
HTTP_NOT_FOUND = 404
HTTP_SERVER_ERROR = 500
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "403",
        "Forbidden",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidClientTokenId",
    }
)
BUSY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"}
)
AUTH_HINT = (
    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the remote's --profile or AWS_PROFILE, "
    "and that the bucket policy lets these credentials read, write and list"
)


class S3Remote:
    """Keys under `s3://bucket/prefix/`, through one thread-safe boto3 client."""

    def __init__(self, config: RemoteConfig, jobs: int) -> None:
        self.name = config.name
        self.bucket, self.prefix = parse_s3_url(config.url)
        # Masked in server-supplied error text with every other credential (vtool.scrub).
        scrub.register(config.access_key_id, config.secret_access_key)
        self._bucket_confirmed = False
        endpoint = config.endpoint_url or _endpoint_from_env()
        self._custom_endpoint = endpoint is not None
        self.endpoint = scrub.without_userinfo(endpoint) if endpoint else "the default AWS endpoint"
        with self._translated("connecting"):
            self._client = _make_client(config, jobs, path_style=self._custom_endpoint)
        self.endpoint = scrub.without_userinfo(self._client.meta.endpoint_url)

    def __repr__(self) -> str:
        return f"S3Remote({self.name!r}, {self.describe()!r})"

    @property
    def url(self) -> str:
        """Return the normalised `s3://bucket/prefix` URL."""
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    def describe(self) -> str:
        """Return the URL and the endpoint actually used."""
        return f"{self.url} (endpoint {self.endpoint})"

    def _key(self, key: str) -> str:
        """Return the full S3 key of a relative key under the prefix."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, prefix: str = "") -> Iterator[Listed]:
        """List the keys starting with prefix, paginated, relative to the remote's prefix."""
        start = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        with self._translated("listing objects"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start + prefix):
                for entry in page.get("Contents", ()):
                    modified = entry.get("LastModified")
                    yield Listed(entry["Key"][len(start):], int(entry.get("Size", 0)),
                                 modified.timestamp() if modified is not None else 0.0)

    def stat(self, key: str) -> int | None:
        """HEAD the key; a 404 is only trusted once the bucket itself is known to exist."""
        with self._translated(f"checking {shown_key(key)}"):
            try:
                response = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _status(exc) != HTTP_NOT_FOUND:
                    raise
                # HEAD has no body, so a missing bucket looks like a missing object; ask once.
                self._confirm_bucket()
                return None
        return int(response.get("ContentLength", 0))

    def put(self, key: str, src: Path | bytes) -> None:
        """Upload in one PUT or a multipart upload; both publish the key only once complete.

        Small values go straight to put_object: the transfer manager behind upload_file costs
        milliseconds of client CPU per call, which dominates for many small objects.
        """
        with self._translated(f"uploading {shown_key(key)}"):
            if isinstance(src, bytes):
                self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=src)
            elif os.stat(src).st_size < MULTIPART_THRESHOLD:
                with open(src, "rb") as body:
                    self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body)
            else:
                self._client.upload_file(str(src), self.bucket, self._key(key), Config=TRANSFER_CONFIG)

    def get(self, key: str, dest: BinaryIO, start: int = 0, length: int | None = None) -> None:
        """Stream the value (or one range of it) into `dest`; a body cut short is resumed where it stopped."""
        if length == 0:
            return
        end = None if length is None else start + length - 1
        with self._translated(f"downloading {shown_key(key)}"):
            offset = start
            for attempt in range(MAX_RETRIES + 1):
                body = self._body(key, offset, end, ranged=offset > 0 or end is not None)
                try:
                    for chunk in body.iter_chunks(GET_CHUNK):
                        dest.write(chunk)
                        offset += len(chunk)
                    return
                except BODY_ERRORS:
                    if attempt == MAX_RETRIES:
                        raise
                finally:
                    body.close()
                time.sleep(BACKOFF_S * 2**attempt * random.uniform(0.5, 1.0))  # jitter: workers retry apart

    def _body(self, key: str, offset: int, end: int | None, ranged: bool) -> Any:
        """Open the value's body from offset on (to end, inclusive, when given): one single-range GET."""
        extra = {"Range": f"bytes={offset}-{'' if end is None else end}"} if ranged else {}
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except ClientError as exc:
            if _code(exc) in MISSING_CODES:
                raise RemoteObjectMissingError(key, self.name) from None
            raise
        if ranged and not str(response.get("ContentRange") or "").startswith(f"bytes {offset}-"):
            response["Body"].close()  # the whole object again: what was written already cannot be taken back
            raise RemoteUnreachableError(f"remote {self.name!r}: {self.endpoint} ignored a ranged read of {key} "
                                         "(no Range support)", "retry later")
        return response["Body"]

    def remove(self, key: str) -> None:
        """Delete the key; S3 answers success for absent keys too."""
        with self._translated(f"removing {shown_key(key)}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()

    def _confirm_bucket(self) -> None:
        """Raise the real error (NoSuchBucket, access denied) when the bucket cannot be used."""
        if self._bucket_confirmed:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _status(exc) == HTTP_NOT_FOUND:
                raise self._no_such_bucket() from exc
            raise
        self._bucket_confirmed = True  # a benign race: two threads may both ask once

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Turn boto3/botocore exceptions raised inside the block into VtoolErrors."""
        try:
            yield
        except RemoteError:
            raise
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise self._classify(exc, action) from exc

    def _classify(self, exc: BaseException, action: str) -> RemoteError:
        """Map one boto3/botocore failure to unreachable, missing bucket, auth, or a plain RemoteError."""
        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, (ClientError, BotoCoreError)):
            exc = exc.__context__  # boto3 wraps upload errors in a string; the real error is the context
        where = f"remote {self.name!r}"
        if isinstance(exc, (IncompleteReadError, ResponseStreamingError)):
            return RemoteUnreachableError(
                f"{where}: the connection to {self.endpoint} kept breaking off while {action}: {self._scrub(exc)}",
                "check the network and the server, then retry",
            )
        if isinstance(exc, (BotoConnectionError, HTTPClientError)):
            return RemoteUnreachableError(
                f"{where}: cannot reach {self.endpoint} while {action}: {self._scrub(exc)}",
                "check the server is running and the remote's --endpoint-url",
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ProfileNotFound)):
            return RemoteAuthError(f"{where}: {self._scrub(exc)}", AUTH_HINT)
        if not isinstance(exc, ClientError):
            return RemoteError(f"{where}: {action} failed: {self._scrub(exc)}")
        code = _code(exc)
        if code == "NoSuchBucket":
            return self._no_such_bucket()
        message = exc.response.get("Error", {}).get("Message") or "no detail"
        # HEAD responses have no body: botocore then reports the bare HTTP status as the code.
        detail = self._scrub(f"HTTP {code} {message}" if code.isdigit() else f"{code}: {message}")
        location = f"{self.url} at {self.endpoint}"
        if code in AUTH_CODES:
            return RemoteAuthError(f"{where}: denied while {action} in {location}: {detail}", AUTH_HINT)
        if code in BUSY_CODES or _status(exc) >= HTTP_SERVER_ERROR:
            return RemoteUnreachableError(
                f"{where}: {self.endpoint} kept failing while {action}: {detail}", "retry later"
            )
        return RemoteError(f"{where}: {action} failed in {location}: {detail}")

    def _no_such_bucket(self) -> RemoteError:
        """Build the missing-bucket error with the command that creates it."""
        endpoint_arg = f" --endpoint-url {self.endpoint}" if self._custom_endpoint else ""
        return RemoteError(
            f"remote {self.name!r}: bucket {self.bucket!r} does not exist at {self.endpoint}",
            f"create it: aws s3 mb {SCHEME}{self.bucket}{endpoint_arg}",
        )

    def _scrub(self, exc: BaseException | str) -> str:
        """Render an error text with every credential and URL password masked, in case a server echoes them."""
        return scrub.scrub(str(exc))


TRANSFER_CONFIG = TransferConfig(
    multipart_threshold=MULTIPART_THRESHOLD,
    multipart_chunksize=MULTIPART_CHUNK,
    use_threads=False,  # transfer.py already runs one pool of workers; no pool inside each of them
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split `s3://bucket/some/prefix/` into ("bucket", "some/prefix"); the prefix may be empty."""
    if not url.startswith(SCHEME):
        raise RemoteError(f"not an S3 URL: {url}", "use s3://bucket/prefix")
    bucket, _, prefix = url.removeprefix(SCHEME).partition("/")
    if not BUCKET_NAME.match(bucket):
        raise RemoteError(f"invalid bucket name in {url}", "use s3://bucket/prefix")
    return bucket, prefix.strip("/")


def _make_client(config: RemoteConfig, jobs: int, path_style: bool) -> Any:
    """Build the one client all threads share, with bounded retries and timeouts."""
    if bool(config.access_key_id) != bool(config.secret_access_key):
        raise RemoteAuthError(
            f"remote {config.name!r}: an access key id needs its secret access key, and the reverse",
            "set both, or neither to use the standard AWS chain",
        )
    # profile_name=None lets the standard chain (AWS_PROFILE, env keys, instance roles) decide.
    session = boto3.session.Session(profile_name=config.profile or None)
    client_config = botocore.config.Config(
        max_pool_connections=max(jobs, MIN_POOL_CONNECTIONS),
        retries={"max_attempts": MAX_RETRIES, "mode": "standard"},  # retries after the first attempt
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        # MinIO, SeaweedFS and most self-hosted servers have no per-bucket DNS names.
        s3={"addressing_style": "path"} if path_style else None,
    )
    keys = (
        {"aws_access_key_id": config.access_key_id, "aws_secret_access_key": config.secret_access_key}
        if config.access_key_id
        else {}
    )
    return session.client(
        "s3", region_name=config.region, endpoint_url=config.endpoint_url, config=client_config, **keys
    )


def _endpoint_from_env() -> str | None:
    """Return (validated) the endpoint boto3 itself would take from AWS_ENDPOINT_URL(_S3), if any."""
    name = next((name for name in ENDPOINT_ENV_VARS if os.environ.get(name)), None)
    return check_endpoint(os.environ[name], name) if name else None


def _code(exc: ClientError) -> str:
    """Return the S3 error code ("NoSuchKey", "403"...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    """Return the HTTP status of a failed request, 0 if unknown."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
