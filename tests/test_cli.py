"""The command line itself: help, usage errors, exit codes, quiet/verbose, tracebacks, and output hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
import typer
from projectkit import Workdir, invoke
from typer import _click as click

from vtool import __version__
from vtool.cli import app as cli_app
from vtool.statcache import settle


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand the CLI registers, hidden ones included (building each one imports it)."""
    root = typer.main.get_command(cli_app.app)
    out: list[tuple[str, ...]] = []

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        ctx = click.Context(command)
        for name in sorted(command.list_commands(ctx)) if hasattr(command, "list_commands") else []:
            out.append((*prefix, name))
            walk(command.get_command(ctx, name), (*prefix, name))

    walk(root, ())
    return out


CORE_COMMANDS = {("init",), ("add",), ("status",), ("checkout",), ("config",)}


def test_the_core_commands_are_registered() -> None:
    assert set(_command_paths()) >= CORE_COMMANDS


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_help_of_every_command_exits_0(project: Workdir, path: tuple[str, ...]) -> None:
    result = project.ok(*path, "--help")
    assert "Usage:" in result.out
    assert "--help" in result.out
    short = project.ok(*path, "-h")
    assert short.out == result.out


@pytest.mark.parametrize("path", sorted(CORE_COMMANDS), ids=" ".join)
def test_core_commands_take_quiet_and_verbose_after_their_name(project: Workdir, path: tuple[str, ...]) -> None:
    help_text = project.ok(*path, "--help").out
    assert "--quiet" in help_text
    assert "-q" in help_text
    assert "--verbose" in help_text


def test_top_level_help_lists_the_core_commands(project: Workdir) -> None:
    result = project.ok("--help")
    for (name,) in CORE_COMMANDS:
        assert name in result.out


def test_top_level_help_lists_every_visible_command_under_its_panel(project: Workdir) -> None:
    lines = project.ok("--help").out.splitlines()
    for name, spec in cli_app.COMMANDS.items():
        rows = [i for i, line in enumerate(lines) if line.split()[:1] == [name]]
        if spec.hidden:
            assert rows == [], name
            continue
        assert len(rows) == 1, name
        heading = next(line for line in reversed(lines[:rows[0]]) if line and not line.startswith(" "))
        assert heading == f"{spec.panel}:", name


def test_the_command_table_matches_what_the_modules_register() -> None:
    root = typer.main.get_command(cli_app.app)
    ctx = click.Context(root)
    for name, spec in cli_app.COMMANDS.items():
        command = root.get_command(ctx, name)
        assert command.help.splitlines()[0] == spec.summary, f"{name}: the table's summary is its docstring's line"
        assert command.hidden == spec.hidden, name
    registered = {info.name for info in cli_app.app.registered_commands}
    registered |= {info.name for info in cli_app.app.registered_groups}
    assert registered == set(cli_app.COMMANDS), "every command needs a row in vtool.cli.app.COMMANDS"


def test_version(project: Workdir) -> None:
    assert project.ok("--version").out == f"vtool {__version__}\n"


@pytest.mark.parametrize(("args", "fragment"), [
    (("frobnicate",), "No such command 'frobnicate'"),
    (("status", "--frobnicate"), "No such option: --frobnicate"),
    (("add", "--frobnicate", "x"), "No such option: --frobnicate"),
    (("checkout", "-z"), "No such option: -z"),
    (("add",), "Missing argument"),
    (("config",), "Missing argument"),
    (("config", "a", "b", "c"), "unexpected extra argument"),
])
def test_usage_errors_exit_2(project: Workdir, args: tuple[str, ...], fragment: str) -> None:
    result = project.fails(*args, code=2)
    assert fragment in result.err
    assert result.out == ""
    assert "Traceback" not in result.err


def test_usage_error_exit_code_is_real_in_a_process(project: Workdir) -> None:
    result = project.run_process("frobnicate")
    assert result.code == 2
    assert "No such command" in result.err


def test_errors_are_one_line_with_a_hint_and_exit_1(project: Workdir) -> None:
    result = project.fails("config", "cache.link", "bogus")
    assert result.out == ""
    assert result.err.splitlines() == [
        "error: cache.link: unknown mode 'bogus'",
        "  hint: use one of auto, reflink, hardlink, symlink, copy",
    ]


def test_quiet_silences_messages_but_not_data(project: Workdir) -> None:
    project.write("data/a", b"1")
    loud = project.ok("add", "data")
    assert "git add" in loud.err
    project.write("data/a", b"2")
    quiet = project.ok("add", "-q", "data")
    assert (quiet.out, quiet.err) == ("", "")
    assert project.ok("checkout", "--quiet").err == ""
    assert project.ok("status", "-q").out == "data: in sync\n"  # the report is data, on stdout
    doc = project.ok("status", "-q", "--json").json()
    assert doc["datasets"][0]["state"] == "in sync"


def test_quiet_still_prints_errors(project: Workdir) -> None:
    result = project.fails("add", "-q", "nope", code=2)
    assert "error: nope: no such file or folder" in result.err


def test_json_output_is_one_document_on_stdout(project: Workdir) -> None:
    project.write("data/a", b"1")
    for args in (("add", "data", "--json"), ("status", "--json"), ("checkout", "--json")):
        result = project.ok(*args)
        assert isinstance(json.loads(result.out), dict)
    assert "git add" not in project.ok("add", "data", "--json").out


def test_no_traceback_by_default(git_repo: Workdir) -> None:
    result = git_repo.run_process("status")
    assert result.code == 1
    assert "is not a vtool project" in result.err
    assert "Traceback" not in result.err


def test_vtool_debug_shows_the_traceback(git_repo: Workdir) -> None:
    result = git_repo.run_process("status", env={"VTOOL_DEBUG": "1"})
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert "NotARepoError" in result.err
    assert "error: " in result.err


def test_verbose_shows_the_traceback(git_repo: Workdir) -> None:
    result = git_repo.fails("status", "-v")
    assert "Traceback (most recent call last)" in result.err
    assert "is not a vtool project" in result.err


def test_names_that_look_like_markup_print_verbatim(project: Workdir) -> None:
    project.write("data[1]/a[/]b", b"1")
    project.write("data[1]/[bold]c", b"2")
    result = project.ok("add", "data[1]")
    assert "added data[1]: 2 file(s)" in result.err
    assert "git add .gitignore 'data[1].vtool'" in result.err
    project.write("data[1]/a[/]b", b"changed")
    project.write("data[1]/[red]new", b"3")
    result = project.fails("status", "data[1]", "--check")
    assert result.out == (
        "data[1]: modified (1 added, 1 modified, 0 deleted)\n    + [red]new\n    ~ a[/]b\n"
    )


def test_error_messages_that_look_like_markup_print_verbatim(project: Workdir) -> None:
    result = project.fails("add", "q[/]", code=2)
    assert result.err == "error: q[/]: no such file or folder\n"
    assert "Traceback" not in result.err


def test_commands_outside_a_git_repo_fail_cleanly(tmp_path) -> None:
    result = invoke(("status",), tmp_path)
    assert result.code == 1
    assert "not a git repository" in result.err


def test_no_arguments_shows_help(project: Workdir) -> None:
    result = project.run()
    assert result.code == 2  # click's convention for a group called without a command
    assert "Track and sync:" in result.out + result.err


@pytest.mark.parametrize("args", [("status",), ("add", "data"), ("checkout",), ("gc", "-w"), ("--version",)])
def test_local_commands_do_not_import_boto3_or_gitpython(project: Workdir, args: tuple[str, ...]) -> None:
    project.write("data/a.txt", "a")
    probe = ("import sys, runpy; sys.argv = ['vtool', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('vtool', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'git')))")
    proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=project.root, capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr


# What start-up may import. The whole CLI is one typer app whose commands are built only when they run,
# so a new eager import (of an ops module, yaml, sqlite3, rich...) on these paths fails here.
STARTUP_MODULES = {"vtool", "vtool.cli", "vtool.cli.app", "vtool.cli.ui", "vtool.errors", "vtool.scrub"}
HEAVY = ("rich", "yaml", "sqlite3", "git", "boto3", "botocore", "xxhash", "concurrent", "json")
# The pack format and its indexes: read only when an object is, never by a no-change status.
STORE_FORMATS = {"vtool.store.pack", "vtool.store.local", "vtool.store.index", "vtool.store.oidindex"}
# status may import what it uses, never another command's modules or the remote layers.
NOT_FOR_STATUS = {"vtool.transfer", "vtool.remote", "vtool.ops.sync", "vtool.ops.add", "vtool.ops.checkout",
                  "vtool.ops.switch", "vtool.ops.gc", "vtool.ops.verify", "vtool.ops.history", "vtool.ops.hooks",
                  "vtool.ops.precommit", "vtool.ops.stagestate"}


def _imported(project: Workdir, *args: str) -> tuple[set[str], set[str]]:
    """Run the CLI in a fresh interpreter; return the vtool modules and the heavy libraries it imported."""
    probe = ("import sys, runpy; sys.argv = ['vtool', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('vtool', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=project.root, capture_output=True, text=True)
    modules = set(proc.stdout.strip().splitlines()[-1].split())
    ours = {m for m in modules if m.split(".")[0] == "vtool"} - {"vtool.__main__"}
    return ours, {m for m in modules if m in HEAVY}


@pytest.mark.parametrize("args", [("--version",), ("--help",), ()])
def test_start_up_imports_no_command(project: Workdir, args: tuple[str, ...]) -> None:
    ours, heavy = _imported(project, *args)
    assert ours == STARTUP_MODULES
    assert heavy == set()


def test_status_imports_only_what_status_uses(project: Workdir) -> None:
    ours, heavy = _imported(project, "status")
    assert "vtool.ops.status" in ours
    assert ours & NOT_FOR_STATUS == set()
    assert {m for m in ours if m.startswith("vtool.pipeline")} == set()  # lock checks are the pre-commit hook's
    assert {m for m in ours if m.startswith("vtool.cli.")} == {"vtool.cli.app", "vtool.cli.ui", "vtool.cli.common",
                                                              "vtool.cli.status", "vtool.cli.render"}
    assert heavy & {"rich", "git", "boto3", "botocore"} == set()


def test_status_with_nothing_changed_imports_no_yaml_nor_threads(project: Workdir) -> None:
    """Pointers and config as vtool writes them are read without PyYAML; nothing to hash starts no pool."""
    project.write("data/a.txt", "a")
    project.add("data")
    project.add_remote("s3://bucket/prefix", endpoint="http://127.0.0.1:9", default=True)
    settle(time.time_ns())
    project.ok("status")  # the first status after add settles the stat cache
    ours, heavy = _imported(project, "status")
    assert heavy - {"sqlite3", "xxhash"} == set()  # the stat cache, and hashing's module
    assert ours & STORE_FORMATS == set()  # the cache's signature vouches for its objects: no pack is opened


# add may import what it uses, never checkout's, a revision switch's or the remote layers.
NOT_FOR_ADD = {"vtool.transfer", "vtool.remote", "vtool.ops.sync", "vtool.ops.checkout", "vtool.ops.switch",
               "vtool.ops.gc", "vtool.ops.verify", "vtool.ops.history", "vtool.cli.revisions", "vtool.cli.data"}


def test_add_with_nothing_changed_imports_only_what_add_uses(project: Workdir) -> None:
    """A no-change add writes the same pointer without PyYAML and starts no hashing pool."""
    project.write("data/a.txt", "a")
    project.add("data")
    settle(time.time_ns())  # past the racy window of the cache folders add made, status can vouch for them
    project.ok("status")
    ours, heavy = _imported(project, "add", "data")
    assert "vtool.ops.add" in ours
    assert ours & NOT_FOR_ADD == set()
    assert ours & STORE_FORMATS == set()
    assert heavy - {"sqlite3", "xxhash"} == set()
    assert project.ok("status").out.strip() == "data: in sync"


# A checkout the cache can serve never talks to a remote: neither pull's nor the remote layers' modules (nor,
# for the workspace's own pointers, a revision switch's).
NOT_FOR_CHECKOUT = {"vtool.transfer", "vtool.remote", "vtool.ops.sync", "vtool.ops.pull", "vtool.ops.switch",
                    "vtool.ops.objects", "vtool.ops.add", "vtool.ops.gc", "vtool.ops.verify", "vtool.ops.history",
                    "vtool.store.remote", "vtool.workers"}


@pytest.mark.parametrize("rev", [None, "v1"])
def test_a_checkout_the_cache_can_serve_imports_no_remote_layer(project: Workdir, rev: str | None) -> None:
    """Neither checkout nor checkout REV imports the remote layers while the cache holds what they write."""
    project.commit_two_versions("data", {"a.txt": "a"}, {"a.txt": "b"})
    branch = project.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    project.ok("checkout", "v1")  # the stat cache now knows the cache holds v1 whole
    project.ok("checkout", branch)
    (project.root / "data/a.txt").unlink()
    ours, heavy = _imported(project, "checkout", *([rev] if rev else []))
    assert "vtool.ops.checkout" in ours
    assert ours & NOT_FOR_CHECKOUT == ({"vtool.ops.switch"} if rev else set())
    assert heavy & {"boto3", "botocore", "git", "rich", "concurrent"} == set()
    assert (project.root / "data/a.txt").read_text() == ("a" if rev else "b")  # the probe's checkout did run


# A gc of the cache talks to no remote: it imported the remote layers through ops.sync (RevsOnRemote,
# connected) and transfer (Obj), about 20-25 ms of every local gc.
NOT_FOR_GC = {"vtool.ops.gc_remote", "vtool.ops.verify", "vtool.cli.verify", "vtool.ops.status", "vtool.ops.sync",
              "vtool.transfer", "vtool.remote", "vtool.store.remote", "vtool.workers"}


def test_gc_of_the_cache_imports_no_remote_gc_nor_verify(project: Workdir) -> None:
    project.write("data/a.txt", "a")
    project.add("data")
    project.write("data/a.txt", "b")
    project.add("data")
    ours, heavy = _imported(project, "gc", "-w", "--yes")
    assert "vtool.ops.gc" in ours
    assert ours & NOT_FOR_GC == set()
    assert {m for m in ours if m.startswith("vtool.remote")} == set()
    assert heavy & {"boto3", "botocore", "concurrent"} == set()
    assert project.ok("gc", "-w").out.startswith("would remove 0 object(s)")  # the probe's gc removed the old one
    probe = ("import sys, runpy; sys.argv = ['vtool', 'gc', '-w']\n"
             "try:\n    runpy.run_module('vtool', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted({'socket', 'secrets', 'hashlib', 'random'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=project.root, capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr
