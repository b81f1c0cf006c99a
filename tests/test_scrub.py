"""Credentials vtool can see are masked in everything it prints: the sources, and the outputs they pass through."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from projectkit import Workdir

from vtool.errors import RemoteError

KEY_ID = "AKIASCRUBTEST4Q7Z"
SECRET = "scrub-secret-Lq2Vb8Nx"
TOKEN = "SessTok-Pp3Kd8Wq1Zr"
PROFILE_SECRET = "prof-secret-Rt5Yh1Mn"
CONFIG_SECRET = "local-secret-Xc9Jf4Ga"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """AWS variables, a credentials file with two profiles, and a config file, as a user's machine has them."""
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = AKIADEFAULTPROF1\n"
                           f"aws_secret_access_key = {PROFILE_SECRET}\n"
                           "[ci]\naws_session_token = ci-token-Wq2Er5Ty\nregion = eu-west-1\n")
    aws_config = tmp_path / "config"
    aws_config.write_text("[profile sso]\nsso_start_url = https://example.com/start\nsecret_thing = cfg-Ab3Cd4Ef5\n")
    for name, value in {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
                        "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(aws_config),
                        "MY_API_TOKEN": "tok-Gh7Jk2Lm9", "SHORT_TOKEN": "1"}.items():
        monkeypatch.setenv(name, value)
    _scrub().refresh()
    return tmp_path


def _scrub() -> ModuleType:
    """Import vtool.scrub late, so the CLI tests here also run against code that predates it."""
    from vtool import scrub

    return scrub


def test_every_source_of_credentials_is_masked(environment: Path) -> None:
    scrub = _scrub()
    scrub.register(CONFIG_SECRET)
    text = (f"key {KEY_ID} secret {SECRET} token {TOKEN} profile {PROFILE_SECRET} ci ci-token-Wq2Er5Ty "
            f"sso cfg-Ab3Cd4Ef5 api tok-Gh7Jk2Lm9 config {CONFIG_SECRET} http://u:pw@host:9000/x s3://K:S@b/p")
    assert scrub.scrub(text) == ("key *** secret *** token *** profile *** ci *** sso *** api *** config *** "
                                 "http://***@host:9000/x s3://***@b/p")


def test_short_and_public_values_are_left_alone(environment: Path) -> None:
    text = "region eu-west-1, 1 file, https://example.com/start, user@example.com"
    assert _scrub().scrub(text) == text


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole(environment: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY_ID + "-and-more")
    _scrub().refresh()
    assert _scrub().scrub(f"{KEY_ID}-and-more / {KEY_ID}") == "*** / ***"


def test_errors_and_json_are_masked_at_the_boundary(project: Workdir, environment: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky(*args: object, **kwargs: object) -> None:
        raise RemoteError(f"server said: Credential={KEY_ID}/x, token {TOKEN}", f"try http://me:{SECRET}@host")

    monkeypatch.setattr("vtool.cli.remotes.push", leaky)
    for args in (("push",), ("push", "-v"), ("push", "--json")):
        result = project.run(*args)
        assert result.code == 1
        assert "Credential=***/x" in result.err and "http://***@host" in result.err
        for secret in (KEY_ID, TOKEN, SECRET):
            assert secret not in result.out + result.err
    assert "Traceback" in project.run("push", "-v").err  # -v shows the traceback, masked too


def test_a_remote_url_with_a_password_is_refused_without_quoting_it(project: Workdir, environment: Path) -> None:
    for url in (f"s3://KEY:{SECRET}@bucket/p", f"https://user:{SECRET}@example.com/data"):
        result = project.fails("remote", "add", "x", url)
        assert "credentials inside a URL are not allowed" in result.err
        assert SECRET not in result.out + result.err
    assert SECRET not in (project.vtool_dir / "config.yaml").read_text()


def test_keys_in_config_local_are_masked_in_json(project: Workdir, environment: Path) -> None:
    (project.vtool_dir / "config.local.yaml").write_text(
        f"remotes:\n  origin:\n    url: {project.root / 'nowhere'}\n    secret_access_key: {CONFIG_SECRET}\n"
        f"    access_key_id: {CONFIG_SECRET[::-1]}\n")
    os.mkdir(project.root / "nowhere")
    project.write(CONFIG_SECRET + ".txt", "a file named like the key\n")
    result = project.ok("add", CONFIG_SECRET + ".txt", "--json")
    assert CONFIG_SECRET not in result.out and '"path": "***.txt"' in result.out
