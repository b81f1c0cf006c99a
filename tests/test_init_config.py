"""`vtool init` and `vtool config`: project setup and settings, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from projectkit import Workdir, invoke

from vtool.cache import Cache

VTOOL_GITIGNORE = b"/cache/\n/state/\n/tmp/\n/lock\n/config.local.yaml\n"


def test_init_creates_tracked_config_and_ignores_local_state(git_repo: Workdir) -> None:
    result = git_repo.ok("init")
    assert f"Initialised vtool in {git_repo.root}" in result.err
    assert (git_repo.vtool_dir / ".gitignore").read_bytes() == VTOOL_GITIGNORE
    assert yaml.safe_load((git_repo.vtool_dir / "config.yaml").read_bytes()) == {}
    git_repo.write(".vtool/cache/ab/cdef", b"x")
    git_repo.write(".vtool/state/stat.db", b"x")
    git_repo.write(".vtool/config.local.yaml", b"x")
    git_repo.write(".vtool/lock", b"x")
    status = git_repo.git("status", "--porcelain", "--untracked-files=all")
    assert sorted(status.splitlines()) == ["?? .vtool/.gitignore", "?? .vtool/config.yaml"]


def test_init_is_idempotent_and_keeps_settings(git_repo: Workdir) -> None:
    git_repo.ok("init")
    git_repo.ok("config", "cache.link", "copy")
    before = git_repo.snapshot(".vtool")
    result = git_repo.ok("init")
    assert f"Already initialised vtool in {git_repo.root}" in result.err
    assert git_repo.snapshot(".vtool") == before


def test_init_from_a_subfolder_sets_up_the_repo_root(git_repo: Workdir) -> None:
    (git_repo.root / "src" / "deep").mkdir(parents=True)
    git_repo.ok("init", cwd="src/deep")
    assert (git_repo.vtool_dir / "config.yaml").is_file()
    assert not (git_repo.root / "src" / "deep" / ".vtool").exists()


def test_init_outside_git_fails_and_says_to_run_git_init(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    result = invoke(("init",), folder)
    assert result.code == 1
    assert "error: not a git repository" in result.err
    assert "git init" in result.err
    assert "Traceback" not in result.err
    assert not (folder / ".vtool").exists()


def test_commands_in_a_repo_without_init_say_to_run_vtool_init(git_repo: Workdir) -> None:
    git_repo.write("data.csv", b"1,2\n")
    for args in (("add", "data.csv"), ("status",), ("checkout",), ("config", "cache.link")):
        result = git_repo.fails(*args)
        assert "is not a vtool project" in result.err
        assert "vtool init" in result.err
    assert not git_repo.vtool_dir.exists()


def _config(project: Workdir, local: bool = False) -> dict:
    name = "config.local.yaml" if local else "config.yaml"
    return yaml.safe_load((project.vtool_dir / name).read_bytes()) or {}


def test_config_set_get_and_unset(project: Workdir) -> None:
    assert project.ok("config", "cache.link").out == "auto\n"  # unset: the default in effect
    assert project.run("config", "core.remote").code == 1  # no value at all: nothing printed, exit 1
    assert project.ok("config", "cache.link", "hardlink").out == ""
    assert _config(project) == {"cache": {"link": "hardlink"}}
    assert project.ok("config", "cache.link").out == "hardlink\n"
    project.ok("config", "--unset", "cache.link")
    assert "cache" not in _config(project)
    assert project.ok("config", "cache.link").out == "auto\n"


def test_config_local_overrides_tracked_and_stays_out_of_git(project: Workdir) -> None:
    project.ok("config", "core.jobs", "4")
    project.ok("config", "--local", "core.jobs", "2")
    assert _config(project) == {"core": {"jobs": 4}}
    assert _config(project, local=True) == {"core": {"jobs": 2}}
    assert project.ok("config", "core.jobs").out == "2\n"
    assert project.git("status", "--porcelain", "--untracked-files=all").splitlines() == [" M .vtool/config.yaml"]
    project.ok("config", "--local", "--unset", "core.jobs")
    assert project.ok("config", "core.jobs").out == "4\n"


@pytest.mark.parametrize("mode", ["auto", "reflink", "hardlink", "symlink", "copy"])
def test_config_accepts_every_link_mode(project: Workdir, mode: str) -> None:
    project.ok("config", "cache.link", mode)
    assert project.ok("config", "cache.link").out == mode + "\n"


@pytest.mark.parametrize(("args", "message"), [
    (("nope.key",), "unknown setting 'nope.key'"),
    (("nope.key", "1"), "unknown setting 'nope.key'"),
    (("cache",), "unknown setting 'cache'"),
    (("cache.link", "bogus"), "cache.link: unknown mode 'bogus'"),
    (("cache.link", ""), "cache.link: unknown mode ''"),
    (("core.jobs", "0"), "core.jobs: 0 is out of range 1..256"),
    (("core.jobs", "257"), "core.jobs: 257 is out of range 1..256"),
    (("core.jobs", "abc"), "core.jobs: 'abc' is not a number"),
])
def test_config_refuses_unknown_keys_and_bad_values(project: Workdir, args: tuple[str, ...], message: str) -> None:
    before = project.snapshot(".vtool")
    result = project.fails("config", *args, code=2 if "unknown setting" in message else 1)
    assert f"error: {message}" in result.err
    assert project.snapshot(".vtool") == before


def test_unknown_key_hint_lists_the_known_settings(project: Workdir) -> None:
    result = project.fails("config", "cache.type", code=2)
    assert "known settings: cache.dir, cache.link, cache.packs, core.jobs, core.remote, gc.grace" in result.err


def test_bad_link_mode_hint_lists_the_modes(project: Workdir) -> None:
    result = project.fails("config", "cache.link", "softlink")
    assert "use one of auto, reflink, hardlink, symlink, copy" in result.err


def test_a_broken_config_file_is_reported_not_crashed_on(project: Workdir) -> None:
    (project.vtool_dir / "config.yaml").write_bytes(b"cache: [\n")
    result = project.fails("status")
    assert "config.yaml: not valid YAML" in result.err
    (project.vtool_dir / "config.yaml").write_bytes(b"cache:\n  link: teleport\n")
    result = project.fails("status")
    assert "cache.link: unknown mode 'teleport'" in result.err


def test_cache_dir_setting_moves_the_cache(project: Workdir, tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    project.ok("config", "cache.dir", str(shared))
    project.write("model.bin", b"weights")
    oid = project.add("model.bin")["added"][0]["oid"]
    assert Cache(shared).read_bytes(oid) == b"weights"
    assert project.cache_oids() == set()


def test_relative_cache_dir_is_relative_to_the_repo_root(project: Workdir) -> None:
    project.ok("config", "cache.dir", "../elsewhere")
    project.write("sub/model.bin", b"weights")
    oid = project.add("sub/model.bin")["added"][0]["oid"]
    assert Cache(project.root.parent / "elsewhere").read_bytes(oid) == b"weights"
