"""Credentials, from the environment or `.vtool/config.local.yaml`, never show up anywhere a user shares.

Checked on every output stream (stdout, stderr, --json), with -v and VTOOL_DEBUG=1 (tracebacks on), on
success and on failure (a wrong secret, an unreachable endpoint), and in every file git would commit.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from projectkit import Result, Workdir

from integration.faultserver import ECHO, FaultServer
from integration.s3helpers import S3Bucket

WRONG_SECRET = "wrong-secret-Zq81xK0pLm3v"
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
DEBUG = {"VTOOL_DEBUG": "1"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _commands() -> list[tuple[str, ...]]:
    """Commands that talk to the remote or show its settings, verbose or as JSON."""
    return [("push", "-v"), ("status", "--remote", "--json"), ("fetch", "-v", "--json"), ("pull", "-v"),
            ("verify", "-r", "origin", "-v"), ("remote", "list", "--json"), ("gc", "-r", "origin", "-v")]


@pytest.fixture
def tracked(project: Workdir, s3_bucket: S3Bucket) -> Workdir:
    project.write_tree("data", {"a.csv": "a,b\n1,2\n", "sub/b.bin": os.urandom(20_000)})
    project.add("data")
    project.add_remote(s3_bucket.url, endpoint=s3_bucket.server.endpoint, default=True)
    project.commit("data")
    return project


def _env_without_keys(s3_env: dict[str, str]) -> dict[str, str]:
    """The test server's environment minus the keys (which then come from config.local.yaml only)."""
    return {**{k: v for k, v in s3_env.items() if k not in CREDENTIAL_VARS}, **{k: "" for k in CREDENTIAL_VARS}}


def _local_keys(project: Workdir, key_id: str, secret: str) -> None:
    project.vtool_dir.joinpath("config.local.yaml").write_text(
        f"remotes:\n  origin:\n    access_key_id: {key_id}\n    secret_access_key: {secret}\n")


def _run(project: Workdir, args: tuple[str, ...], env: dict[str, str]) -> Result:
    return project.run_process(*args, env=env)


def _never_shows(results: list[Result], *secrets: str) -> None:
    for result in results:
        for secret in secrets:
            assert secret not in result.out and secret not in result.err, f"secret leaked: {result}"


def _not_in_tracked_files(project: Workdir, *secrets: str) -> None:
    """No file git tracks or would add (ignored ones aside) contains a secret, nor does any commit."""
    listed = project.git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    history = project.git("log", "-p", "--all")
    for rel in filter(None, listed):
        data = project.path(rel).read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{rel} holds a secret"
    for secret in secrets:
        assert secret not in history


def _runs(project: Workdir, env: dict[str, str]) -> list[Result]:
    """Run every command, half of them with VTOOL_DEBUG=1; after the push, an empty cache makes fetch download."""
    results = []
    for i, args in enumerate(_commands()):
        results.append(_run(project, args, {**env, **DEBUG} if i % 2 else env))
        if args[0] == "push":
            for oid in project.cache_oids():
                project.drop_object(oid)
    return results


def test_keys_from_the_environment_never_show(tracked: Workdir, s3_env: dict[str, str]) -> None:
    env = {**s3_env, **DEBUG}
    results = _runs(tracked, s3_env)
    assert all(r.code == 0 for r in results), [r.err for r in results if r.code]
    assert tracked.run("status", "--check").code == 0  # fetch and pull brought everything back
    failing = [_run(tracked, ("push", "-v"), {**env, "AWS_SECRET_ACCESS_KEY": WRONG_SECRET}),
               _run(tracked, ("status", "--remote", "-v", "--json"), {**env, "AWS_SECRET_ACCESS_KEY": WRONG_SECRET})]
    assert all(r.code == 1 for r in failing), [(r.code, r.out, r.err) for r in failing]
    _never_shows(results + failing, s3_env["AWS_SECRET_ACCESS_KEY"], WRONG_SECRET)
    _not_in_tracked_files(tracked, s3_env["AWS_SECRET_ACCESS_KEY"], WRONG_SECRET)


def test_keys_from_config_local_never_show(tracked: Workdir, s3_bucket: S3Bucket, s3_env: dict[str, str]) -> None:
    server = s3_bucket.server
    _local_keys(tracked, server.access_key, server.secret_key)
    results = _runs(tracked, _env_without_keys(s3_env))
    env = {**_env_without_keys(s3_env), **DEBUG}
    assert all(r.code == 0 for r in results), [r.err for r in results if r.code]
    assert tracked.run("status", "--check").code == 0  # fetch and pull brought everything back

    _local_keys(tracked, server.access_key, WRONG_SECRET)
    failing = [_run(tracked, ("push", "-v"), env), _run(tracked, ("status", "--remote", "--json", "-v"), env)]
    _local_keys(tracked, server.access_key, server.secret_key)
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    tracked.add_remote(f"s3://{s3_bucket.name}/x", "--force", endpoint=unreachable)
    failing += [_run(tracked, ("push", "-v"), env), _run(tracked, ("status", "--remote", "--json", "-v"), env)]
    assert all(r.code == 1 for r in failing), [r.err for r in failing]
    assert "Traceback" in failing[0].err  # -v: the traceback path is covered too
    _never_shows(results + failing, server.secret_key, WRONG_SECRET)
    _not_in_tracked_files(tracked, server.secret_key, WRONG_SECRET)
    assert tracked.git("check-ignore", ".vtool/config.local.yaml").strip() == ".vtool/config.local.yaml"


def test_a_secret_in_the_tracked_config_is_refused_without_echoing_it(tracked: Workdir, s3_env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    config = tracked.vtool_dir / "config.yaml"
    config.write_text(config.read_text().replace("origin:\n", f"origin:\n    secret_access_key: {WRONG_SECRET}\n"))
    result = _run(tracked, ("push", "-v"), {**s3_env, **DEBUG})
    assert result.code == 1
    assert "has secret_access_key in the tracked config" in result.err and "config.local.yaml" in result.err
    _never_shows([result], WRONG_SECRET)


# --- credentials vtool did not configure itself: environment, session tokens, profiles ---------------------------

ECHO_KEY_ID = "AKIAECHOKEYID7Q2Z"
ECHO_SECRET = "echo-secret-Hn4w9Xc2Lr"
ECHO_TOKEN = "SessTok-Fq7Wm2Kd9Zp1Lx"
PROFILE_KEY_ID = "AKIAPROFILEID3R8N"
PROFILE_SECRET = "profile-secret-Vb6Ty1Qe"
ECHOED = "denied: GET"  # proof the fake endpoint really quoted the request back


@pytest.fixture
def echoing(project: Workdir) -> Iterator[tuple[Workdir, FaultServer]]:
    """A project whose data is only on a remote served by an endpoint that quotes every request header back."""
    server = FaultServer(ECHO).start()
    project.write_tree("data", {"a.csv": "a,b\n1,2\n"})
    project.add("data")
    for oid in project.cache_oids():
        project.drop_object(oid)
    project.ok("remote", "add", "origin", "s3://bucket/p", "--endpoint-url", server.endpoint, "--default")
    yield project, server
    server.stop()


def _isolated(**extra: str) -> dict[str, str]:
    """An AWS environment with nothing from the user's own setup, plus extra."""
    return {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "",
            "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", **extra}


ECHO_COMMANDS = [("fetch", "-v"), ("fetch", "--json"), ("pull", "-v"), ("verify", "-r", "origin", "--json"),
                 ("gc", "-r", "origin", "-v")]


def _echo_runs(project: Workdir, env: dict[str, str]) -> list[Result]:
    """Every command that reads from the endpoint, half of them with VTOOL_DEBUG=1 (tracebacks)."""
    return [_run(project, args, {**env, **DEBUG} if i % 2 else env) for i, args in enumerate(ECHO_COMMANDS)]


def test_an_endpoint_echoing_headers_never_shows_environment_keys_or_session_tokens(
        echoing: tuple[Workdir, FaultServer]) -> None:
    project, _ = echoing
    env = _isolated(AWS_ACCESS_KEY_ID=ECHO_KEY_ID, AWS_SECRET_ACCESS_KEY=ECHO_SECRET, AWS_SESSION_TOKEN=ECHO_TOKEN)
    results = _echo_runs(project, env)
    assert all(r.code == 1 for r in results), [(r.code, r.err) for r in results]
    assert any(ECHOED in r.out + r.err for r in results), "the echo never reached the output"
    assert any("Traceback" in r.err for r in results)  # VTOOL_DEBUG output is covered too
    _never_shows(results, ECHO_KEY_ID, ECHO_SECRET, ECHO_TOKEN)


def test_an_endpoint_echoing_headers_never_shows_a_profiles_keys(echoing: tuple[Workdir, FaultServer],
                                                                 tmp_path: Path) -> None:
    project, server = echoing
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[other]\naws_access_key_id = AKIAOTHERPROFILE9\naws_secret_access_key = other-Ss2\n"
                           f"[echo]\naws_access_key_id = {PROFILE_KEY_ID}\naws_secret_access_key = {PROFILE_SECRET}\n")
    project.ok("remote", "add", "origin", "s3://bucket/p", "--endpoint-url", server.endpoint, "--profile", "echo",
               "--default", "--force")
    results = _echo_runs(project, _isolated(AWS_SHARED_CREDENTIALS_FILE=str(credentials)))
    assert all(r.code == 1 for r in results), [(r.code, r.err) for r in results]
    assert any(ECHOED in r.out + r.err for r in results)
    _never_shows(results, PROFILE_KEY_ID, PROFILE_SECRET)


def test_a_password_in_aws_endpoint_url_is_refused_and_never_shown(tracked: Workdir) -> None:
    password = "Pw-Zq81xK0pLm3v"
    env = _isolated(AWS_ENDPOINT_URL=f"http://user:{password}@127.0.0.1:{_closed_port()}",
                    AWS_ACCESS_KEY_ID="AKIAX", AWS_SECRET_ACCESS_KEY="x-secret")
    tracked.ok("remote", "add", "origin", "s3://bucket/p", "--force")  # no endpoint: the environment's is used
    results = [_run(tracked, args, {**env, **DEBUG}) for args in (("push", "-v"), ("status", "--remote", "--json"))]
    assert all(r.code == 1 for r in results), [(r.code, r.err) for r in results]
    assert all("AWS_ENDPOINT_URL: credentials inside a URL are not allowed" in r.err for r in results)
    _never_shows(results, password)
