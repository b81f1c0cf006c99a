"""The tools under test: one table of command lines per tool, behind one small driver."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench_lib.config import DATA_DIRNAME

Argv = list[str]
# The command lines of one step; "{name}" fields are filled in, and a line starting with "git" runs git.
Template = tuple[tuple[str, ...], ...]
GIT = "git"

ENV_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
}
COMMON: dict[str, Template] = {
    "version": (("--version",),),
    "help": (("--help",),),
    "add": (("add", DATA_DIRNAME),),
    "status": (("status",),),
    "push": (("push", "-j", "{jobs}"),),
    "pull": (("pull", "-j", "{jobs}"),),
}
DVC: dict[str, Template] = {
    **COMMON,
    "init": (("init", "-q"), ("config", "core.analytics", "false"), ("config", "core.check_update", "false"),
             ("remote", "add", "-d", "origin", "{url}"), ("remote", "modify", "origin", "endpointurl", "{endpoint}")),
    "set_remote": (("remote", "modify", "origin", "url", "{url}"),),
    "status_check": (("status", "-q"),),  # exit 1 when anything changed
    "checkout": ((GIT, "checkout", "-q", "{rev}"), ("checkout",)),  # DVC has no single command for both
    "gc": (("gc", "-w", "-f"),),
}
VTOOL_REMOTE_ADD = ("remote", "add", "origin", "{url}", "--endpoint-url", "{endpoint}", "--default")
VTOOL: dict[str, Template] = {
    **COMMON,
    "init": (("init",), VTOOL_REMOTE_ADD),
    "set_remote": (("remote", "remove", "origin"), VTOOL_REMOTE_ADD),  # the contract has no remote modify
    "status_check": (("status", "--check"),),
    "checkout": (("checkout", "{rev}"),),  # git checkout and data in one command
    "gc": (("gc", "--workspace", "--yes"),),  # the same semantics as dvc gc -w
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
    commands: Mapping[str, Template] = field(repr=False)
    env_base: dict[str, str] = field(repr=False)
    tracked_extra: tuple[str, ...] = ()
    # DVC keeps per-repo state (hash db, data index) in a site cache outside the repo.
    site_cache_env: str | None = None

    @property
    def cache_dir(self) -> str:
        """Return the cache folder, relative to the repo."""
        return f"{self.state_dir}/cache"

    def argv(self, step: str, **values: object) -> list[Argv]:
        """Return the command lines of a step, with {url}, {endpoint}, {jobs} or {rev} filled in."""
        return [[*(() if line[0] == GIT else self.exe), *(arg.format(**values) for arg in line)]
                for line in self.commands[step]]

    def env(self, repo: Path) -> dict[str, str]:
        """Return the environment for commands run inside repo."""
        state = self.outside_state(repo)
        return {**self.env_base, **({self.site_cache_env: str(state[0])} if self.site_cache_env else {})}

    def outside_state(self, repo: Path) -> tuple[Path, ...]:
        """Return per-repo state the tool keeps outside the repo (wiped for a cold start)."""
        return (repo.with_name(repo.name + ".dvc-site-cache"),) if self.site_cache_env else ()


def make_dvc(dvc_venv: Path, env: dict[str, str], bench_root: Path) -> Driver:
    """Return DVC 3 from its own venv: analytics and update checks off, global and system config under .bench."""
    env = {**env, "DVC_NO_ANALYTICS": "1", "DVC_STUDIO_OFFLINE": "1",
           "DVC_GLOBAL_CONFIG_DIR": str(bench_root / "dvc-config" / "global"),
           "DVC_SYSTEM_CONFIG_DIR": str(bench_root / "dvc-config" / "system")}
    return Driver("dvc", (str(dvc_venv / "bin" / "dvc"),), "data.dvc", ".dvc", DVC, env,
                  tracked_extra=(".dvcignore",), site_cache_env="DVC_SITE_CACHE_DIR")


def make_vtool(repo_root: Path, venv: Path, env: dict[str, str]) -> Driver:
    """Return vtool: the console script when installed, else python -m vtool from the source tree."""
    script = venv / "bin" / "vtool"
    if script.exists():
        return Driver("vtool", (str(script),), "data.vtool", ".vtool", VTOOL, env)
    exe = (str(venv / "bin" / "python"), "-m", "vtool")
    return Driver("vtool", exe, "data.vtool", ".vtool", VTOOL, {**env, "PYTHONPATH": str(repo_root)})
