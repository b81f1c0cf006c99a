"""`vtool verify`, on its own so a gc of the cache imports none of verify's remote reads."""

from __future__ import annotations

import dataclasses
import shlex
from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JobsOpt, JsonOpt, RemoteOpt, TargetsArg, command
from vtool.cli.render import render_status
from vtool.cli.ui import ui
from vtool.errors import UsageError
from vtool.ops.status import StatusResult
from vtool.ops.verify import VerifyResult, verify

SHOWN = 20


SampleOpt = Annotated[str | None, typer.Option(
    "--sample", help="With -r: check only packs (and loose objects) N of every T, as N/T, e.g. 0/7.")]


def parse_sample(text: str | None) -> tuple[int, int] | None:
    """Turn `N/T` into (N, T) with 0 <= N < T."""
    if text is None:
        return None
    n, _, t = text.partition("/")
    if not (n.isdigit() and t.isdigit()) or not 0 <= int(n) < int(t):
        raise UsageError(f"--sample {text!r}: expected N/T with 0 <= N < T", "e.g. --sample 0/7")
    return int(n), int(t)


@command(app, "verify")
def verify_cmd(targets: TargetsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None,
               sample: SampleOpt = None, json_out: JsonOpt = False) -> None:
    """Re-hash every object the targets reach in the cache (or -r remote) and their workspace files."""
    if sample is not None and remote is None:
        raise UsageError("--sample needs -r NAME", "it samples the packs of a remote")
    result = verify(targets or [], remote, jobs, ui.progress(), parse_sample(sample))
    if json_out:
        ui.json({**dataclasses.asdict(result), "ok": result.ok})
    else:
        _render_verify(result)
    if not result.ok:
        raise typer.Exit(1)


def _render_verify(r: VerifyResult) -> None:
    where = "the cache" if r.target == "cache" else f"remote {r.target}"
    for b in r.bad[:SHOWN]:
        size = f", {b.size} bytes" if b.size is not None else ""
        aside = "moved to the cache's quarantine/" if where == "the cache" else f"removed from {where}"
        gone = f" - {aside}" if b.removed else ""
        ui.print(f"{b.problem}: {b.kind} {b.oid}{size} (in {', '.join(b.datasets)}){gone}")
    if len(r.bad) > SHOWN:
        ui.print(f"... and {len(r.bad) - SHOWN} more bad objects")
    for b in r.missing[:SHOWN]:
        ui.print(f"{b.problem}: {b.kind} {b.oid} (in {', '.join(b.datasets)})")
    if len(r.missing) > SHOWN:
        ui.print(f"... and {len(r.missing) - SHOWN} more missing objects")
    modified = [d for d in r.workspace if d.state == "modified"]
    if modified:
        render_status(StatusResult(modified))
    summary = "all intact" if not r.bad else f"{len(r.bad)} bad"
    if r.missing:
        summary += f"; {len(r.missing)} {r.missing[0].problem}"
    if modified:
        summary += f"; {len(modified)} dataset(s) in the workspace differ from their pointers"
    ui.print(f"verified {r.objects} object(s), {r.nbytes} bytes, in {where}: {summary}")
    if r.bad:
        fix = "vtool fetch, then vtool checkout" if r.target == "cache" else "vtool push from a clone that has them"
        ui.info(f"to restore bad objects run: {fix}")
    if r.missing:
        datasets = " ".join(shlex.quote(d) for d in sorted({d for b in r.missing for d in b.datasets}))
        fix = f"vtool fetch {datasets}" if r.target == "cache" else f"vtool push {datasets} (in a clone that has them)"
        ui.info(f"to get the missing objects run: {fix}")
