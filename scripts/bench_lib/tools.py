"""The command lines of each tool under test, behind one small driver interface."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

Argv = list[str]

ENV_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def base_env(aws_env: dict[str, str], bench_root: Path) -> dict[str, str]:
    """Return the environment every command runs with: no stray Python paths, the S3 credentials."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP and not k.startswith("AWS_")}
    env.update(GIT_IDENTITY)
    env.update(aws_env)
    # Keep boto from reading a user's ~/.aws or probing an instance metadata service.
    env["AWS_CONFIG_FILE"] = str(bench_root / "aws-config-none")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(bench_root / "aws-credentials-none")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    return env


@dataclass(frozen=True)
class Driver:
    """What the harness needs of a tool: its command lines, files and environment."""

    name: str
    exe: tuple[str, ...]
    pointer: str
    state_dir: str
    cache_dir: str
    env_base: dict[str, str] = field(repr=False)
    tracked_extra: tuple[str, ...] = ()

    def env(self, repo: Path) -> dict[str, str]:
        """Return the environment for commands run inside repo."""
        return dict(self.env_base)

    def outside_state(self, repo: Path) -> tuple[Path, ...]:
        """Return per-repo state the tool keeps outside the repo (wiped for a cold start)."""
        return ()

    def cmd(self, *args: str) -> Argv:
        """Return the argv running the tool with args."""
        return [*self.exe, *args]

    def version(self) -> Argv:
        """Return the argv printing the tool's version."""
        return self.cmd("--version")

    def init(self, url: str, endpoint: str) -> list[Argv]:
        """Return the commands setting up the tool and its default remote in a fresh git repo."""
        raise NotImplementedError

    def set_remote(self, url: str, endpoint: str) -> list[Argv]:
        """Return the commands pointing the default remote at another bucket prefix."""
        raise NotImplementedError

    def add(self) -> list[Argv]:
        """Return the commands tracking the data folder."""
        return [self.cmd("add", "data")]

    def status(self) -> list[Argv]:
        """Return the commands comparing workspace and cache."""
        return [self.cmd("status")]

    def status_check(self) -> Argv:
        """Return a status whose exit code says in sync (0) or not (1), to check a status answer."""
        raise NotImplementedError

    def push(self, jobs: int) -> list[Argv]:
        """Return the commands uploading what the remote lacks."""
        return [self.cmd("push", "-j", str(jobs))]

    def pull(self, jobs: int) -> list[Argv]:
        """Return the commands fetching and checking out the data of HEAD."""
        return [self.cmd("pull", "-j", str(jobs))]

    def checkout(self, rev: str) -> list[Argv]:
        """Return the commands switching code and data to rev."""
        raise NotImplementedError

    def gc(self) -> list[Argv]:
        """Return the commands removing cache objects the workspace does not use."""
        raise NotImplementedError


@dataclass(frozen=True)
class DvcDriver(Driver):
    """DVC 3 from its own venv, analytics and update checks off, state kept per repo."""

    def env(self, repo: Path) -> dict[str, str]:
        """Return the environment with DVC's site cache (state db, index) beside this repo."""
        env = dict(self.env_base)
        env["DVC_SITE_CACHE_DIR"] = str(self.outside_state(repo)[0])
        return env

    def outside_state(self, repo: Path) -> tuple[Path, ...]:
        """Return DVC's site cache folder of this repo (hash state and data index live there)."""
        return (repo.with_name(repo.name + ".dvc-site-cache"),)

    def init(self, url: str, endpoint: str) -> list[Argv]:
        """Return dvc init, config and remote add commands."""
        return [
            self.cmd("init", "-q"),
            self.cmd("config", "core.analytics", "false"),
            self.cmd("config", "core.check_update", "false"),
            self.cmd("remote", "add", "-d", "origin", url),
            self.cmd("remote", "modify", "origin", "endpointurl", endpoint),
        ]

    def status_check(self) -> Argv:
        """Return dvc status -q (exit 1 when anything changed)."""
        return self.cmd("status", "-q")

    def set_remote(self, url: str, endpoint: str) -> list[Argv]:
        """Return the dvc remote modify command changing the url."""
        return [self.cmd("remote", "modify", "origin", "url", url)]

    def checkout(self, rev: str) -> list[Argv]:
        """Return git checkout then dvc checkout (DVC has no single command for both)."""
        return [["git", "checkout", "-q", rev], self.cmd("checkout")]

    def gc(self) -> list[Argv]:
        """Return dvc gc keeping only the workspace."""
        return [self.cmd("gc", "-w", "-f")]


@dataclass(frozen=True)
class VtoolDriver(Driver):
    """vtool from the project venv (or from the source tree when it is not installed yet)."""

    def init(self, url: str, endpoint: str) -> list[Argv]:
        """Return vtool init and remote add commands."""
        return [self.cmd("init"), *self._remote_add(url, endpoint)]

    def _remote_add(self, url: str, endpoint: str) -> list[Argv]:
        """Return the remote add command of the default remote."""
        return [self.cmd("remote", "add", "origin", url, "--endpoint-url", endpoint, "--default")]

    def status_check(self) -> Argv:
        """Return vtool status --check (exit 1 when out of sync)."""
        return self.cmd("status", "--check")

    def set_remote(self, url: str, endpoint: str) -> list[Argv]:
        """Return remote remove + add (the contract has no remote modify)."""
        return [self.cmd("remote", "remove", "origin"), *self._remote_add(url, endpoint)]

    def checkout(self, rev: str) -> list[Argv]:
        """Return vtool checkout REV (git checkout and data in one command)."""
        return [self.cmd("checkout", rev)]

    def gc(self) -> list[Argv]:
        """Return vtool gc keeping only the workspace, the same semantics as dvc gc -w."""
        return [self.cmd("gc", "--workspace", "--yes")]


def make_dvc(dvc_venv: Path, env: dict[str, str], bench_root: Path) -> DvcDriver:
    """Return the DVC driver, with global and system config isolated under .bench."""
    env = dict(env)
    env.update({
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(bench_root / "dvc-config" / "global"),
        "DVC_SYSTEM_CONFIG_DIR": str(bench_root / "dvc-config" / "system"),
    })
    return DvcDriver("dvc", (str(dvc_venv / "bin" / "dvc"),), "data.dvc", ".dvc", ".dvc/cache", env,
                     tracked_extra=(".dvcignore",))


def make_vtool(repo_root: Path, venv: Path, env: dict[str, str]) -> VtoolDriver:
    """Return the vtool driver: the console script when installed, else python -m with PYTHONPATH."""
    env = dict(env)
    script = venv / "bin" / "vtool"
    if script.exists():
        exe: tuple[str, ...] = (str(script),)
    else:
        exe = (str(venv / "bin" / "python"), "-m", "vtool")
        env["PYTHONPATH"] = str(repo_root)
    return VtoolDriver("vtool", exe, "data.vtool", ".vtool", ".vtool/cache", env)
