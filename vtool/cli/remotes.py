"""Commands that talk to remotes: remote add/list/remove/default, push, fetch, pull."""

from __future__ import annotations

from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JobsOpt, JsonOpt, RemoteOpt, TargetsArg, command
from vtool.cli.ui import ui
from vtool.config import LOOSE_LAYOUT, RemoteConfig
from vtool.ops.pull import pull
from vtool.ops.remotes import RemoteSpec, add_remote, list_remotes, remove_remote, set_default
from vtool.ops.sync import SyncOptions, SyncResult, fetch, push

remote_app = typer.Typer(help="Manage remotes (where objects are pushed).", no_args_is_help=True)
app.add_typer(remote_app, name="remote")

RevOpt = Annotated[list[str] | None, typer.Option("--rev", help="Also the data of this revision (repeatable).")]
AllCommitsOpt = Annotated[bool, typer.Option("--all-commits", help="The data of every commit.")]
FAILED_SHOWN = 10


@command(remote_app, "add")
def remote_add_cmd(
    name: Annotated[str, typer.Argument(help="Remote name, e.g. origin.")],
    url: Annotated[str, typer.Argument(help="s3://bucket/prefix or a folder path.")],
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="S3 endpoint (MinIO...).")] = None,
    region: Annotated[str | None, typer.Option("--region")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile for credentials.")] = None,
    default: Annotated[bool, typer.Option("--default", "-d", help="Make it the default remote.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing remote.")] = False,
    loose: Annotated[bool, typer.Option("--loose", help="Push loose objects only (readable by releases before "
                                        "packs).")] = False,
) -> None:
    """Add a remote (stored in the tracked .vtool/config.yaml; no secrets)."""
    layout = LOOSE_LAYOUT if loose else None
    info = add_remote(RemoteSpec(RemoteConfig(name, url, endpoint_url, region, profile, layout), default, force))
    ui.info(f"remote {info.name} -> {info.url}{' (default)' if info.default else ''}")


@command(remote_app, "list")
def remote_list_cmd(json_out: JsonOpt = False) -> None:
    """List remotes."""
    remotes = list_remotes()
    if json_out:
        return ui.json({"remotes": [r.__dict__ for r in remotes]})
    for r in remotes:
        endpoint = f" (endpoint {r.endpoint_url})" if r.endpoint_url else ""
        ui.print(f"{'*' if r.default else ' '} {r.name}\t{r.url}{endpoint}")


@command(remote_app, "remove")
def remote_remove_cmd(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a remote from the configuration (its objects are untouched)."""
    remove_remote(name)
    ui.info(f"removed remote {name}")


@command(remote_app, "default")
def remote_default_cmd(name: Annotated[str, typer.Argument()]) -> None:
    """Make a remote the default."""
    set_default(name)
    ui.info(f"default remote: {name}")


def _report(verb: str, result: SyncResult, json_out: bool) -> None:
    if json_out:
        ui.json(result)
    else:
        ui.info(f"{result.transferred} {verb}, {result.present} already present, {result.nbytes} bytes "
                f"({result.remote})")
        for oid, reason in list(result.failed.items())[:FAILED_SHOWN]:
            ui.notice(f"failed: {oid}: {reason}")
        if len(result.failed) > FAILED_SHOWN:
            ui.notice(f"... and {len(result.failed) - FAILED_SHOWN} more failures")
    if result.failed:
        raise typer.Exit(1)


@command(app, "push")
def push_cmd(targets: TargetsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None, rev: RevOpt = None,
             all_commits: AllCommitsOpt = False, json_out: JsonOpt = False) -> None:
    """Upload the objects the remote lacks (files first, then their manifests)."""
    options = SyncOptions(revs=rev or [], all_commits=all_commits, remote=remote, jobs=jobs, targets=targets or [])
    _report("uploaded", push(options, ui.progress()), json_out)


@command(app, "fetch")
def fetch_cmd(targets: TargetsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None, rev: RevOpt = None,
              all_commits: AllCommitsOpt = False, json_out: JsonOpt = False) -> None:
    """Download missing objects into the cache, each verified before it is kept."""
    options = SyncOptions(revs=rev or [], all_commits=all_commits, remote=remote, jobs=jobs, targets=targets or [])
    _report("downloaded", fetch(options, ui.progress()), json_out)


@command(app, "pull")
def pull_cmd(targets: TargetsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None,
             force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite uncached workspace data.")] = False,
             json_out: JsonOpt = False) -> None:
    """Fetch, then check out: the workspace matches the pointers, byte for byte."""
    result = pull(SyncOptions(remote=remote, jobs=jobs, targets=targets or []), force, ui.progress())
    if json_out:
        return ui.json(result)
    _report("downloaded", result.fetch, False)
    for ds in result.checkout:
        ui.info(f"{ds.path}: {ds.written} written, {ds.deleted} deleted, {ds.unchanged} unchanged")
