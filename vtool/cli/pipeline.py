"""Pipeline commands: stage add/list, repro, lineage, check-repro."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.ui import ui
from vtool.ops.repro import ReproOptions, repro
from vtool.ops.stage import StageSpec, stage_add, stage_list

if TYPE_CHECKING:
    from vtool.ops.checkrepro import CheckReproResult

stage_app = typer.Typer(help="Declare pipeline stages in vtool.yaml and list them.", no_args_is_help=True)
app.add_typer(stage_app, name="stage")




@command(stage_app, "add")
def stage_add_cmd(
    name: Annotated[str, typer.Argument(help="Stage name.")],
    cmd: Annotated[list[str], typer.Argument(help="The command, after --.")],
    deps: Annotated[list[str] | None, typer.Option("--dep", "-d", help="A dependency (data or code).")] = None,
    outs: Annotated[list[str] | None, typer.Option("--out", "-o", help="An output, added like vtool add.")] = None,
    metrics: Annotated[list[str] | None, typer.Option("--metric", "-m", help="A small output kept in git.")] = None,
    params: Annotated[list[str] | None, typer.Option("--params", "-p", help="FILE:KEY,KEY read from a params file.")]
    = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="Environment component that makes it stale.")]
    = None,
    wdir: Annotated[str, typer.Option("--wdir", "-w", help="Working folder of the command.")] = ".",
    json_out: JsonOpt = False,
) -> None:
    """Add or replace a stage in vtool.yaml: vtool stage add NAME -d DEP -o OUT -- CMD."""
    line = cmd[0] if len(cmd) == 1 else shlex.join(cmd)
    result = stage_add(StageSpec(name, line, deps or [], outs or [], metrics or [], params or [], env or [], wdir))
    if json_out:
        return ui.json(result)
    ui.info(f"{'replaced' if result.replaced else 'added'} stage {result.stage} in {result.file}")


@command(stage_app, "list")
def stage_list_cmd(json_out: JsonOpt = False) -> None:
    """List stages in dependency order, with whether each is up to date."""
    result = stage_list(ui.progress())
    if json_out:
        return ui.json(result)
    if not result.stages:
        ui.print("no stages (vtool stage add NAME -d DEP -o OUT -- CMD)")
    for s in result.stages:
        state = "up to date" if s.up_to_date else "stale: " + "; ".join(s.reasons)
        ui.print(f"{s.name}: {state}")
        ui.print(f"    deps: {', '.join(s.deps) or '-'}  outs: {', '.join(s.outs + s.metrics) or '-'}")


@command(app, "repro")
def repro_cmd(
    stages: Annotated[list[str] | None, typer.Argument(help="Stages to bring up to date (and what they need).")]
    = None,
    dry: Annotated[bool, typer.Option("--dry", help="Only say which stages would run, and why.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Run even stages that are up to date.")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="Also run the stages that use them.")] = False,
    no_run_cache: Annotated[bool, typer.Option("--no-run-cache", help="Never restore outputs of an earlier run.")]
    = False,
    image: Annotated[str | None, typer.Option("--image", help="Container image digest to record.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run stale stages in dependency order; add outputs, write vtool.lock and a run record."""
    result = repro(ReproOptions(stages or [], dry, force, downstream, not no_run_cache, image), ui.progress())
    if json_out:
        return ui.json(result)
    for run in result.stages:
        why = f" ({'; '.join(run.reasons)})" if run.reasons else ""
        ui.print(f"{run.stage}: {run.action}{why}")
    if result.git_paths:
        ui.info("To track the changes with git, run:")
        ui.info(f"    git add {' '.join(shlex.quote(p) for p in result.git_paths)}")


@command(app, "lineage")
def lineage_cmd(
    target: Annotated[str, typer.Argument(help="An output (or, with --down, a dataset path or oid).")],
    rev: Annotated[str | None, typer.Option("--rev", help="Read the pipeline at this revision.")] = None,
    down: Annotated[bool, typer.Option("--down", help="Every output in history that used this dataset.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="text, json, dot, mermaid or openlineage.")] = "text",
    json_out: JsonOpt = False,
) -> None:
    """Show what an output was made from, or with --down every output in history that used a dataset."""
    from vtool.ops.lineage import lineage, lineage_down, namespace  # only this command pays for its imports
    from vtool.ops.project import project_root
    from vtool.pipeline import formats

    fmt = "json" if json_out else fmt
    allowed = formats.DOWN_FORMATS if down else formats.FORMATS
    if fmt not in allowed:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(allowed)}", param_hint="--format")
    if down:
        result = lineage_down(target)
        return ui.json(result) if fmt == "json" else ui.print(formats.text_down(result))
    graph = lineage(target, rev)
    ui.json(graph) if fmt == "json" else ui.print(formats.render(graph, fmt, namespace(project_root())))


@command(app, "check-repro")
def check_repro_cmd(
    targets: Annotated[list[str] | None, typer.Argument(help="Outputs to judge; none = every output.")] = None,
    revs: Annotated[list[str] | None, typer.Option("--rev", help="Revision to judge (repeatable; default HEAD).")]
    = None,
    all_tags: Annotated[bool, typer.Option("--all-tags", help="Judge every tag (the releases).")] = False,
    rerun: Annotated[bool, typer.Option("--rerun", help="Also rebuild in a temporary worktree and compare bits.")]
    = False,
    json_out: JsonOpt = False,
) -> None:
    """Judge whether each output is reproducible: data, code and environment as recorded; exit 1 if not."""
    from vtool.ops.checkrepro import CheckReproOptions, check_repro  # only this command pays for its imports

    result = check_repro(CheckReproOptions(targets or [], revs or [], all_tags, rerun), ui.progress())
    if json_out:
        ui.json(result)
    else:
        render_check_repro(result)
    if not result.reproducible:
        raise typer.Exit(1)


def render_check_repro(result: CheckReproResult) -> None:
    """Print one line per revision and output, then each failing factor's reasons."""
    for v in result.verdicts:
        verdict = "reproducible" if v.reproducible else "NOT reproducible"
        line = f"{v.rev} {v.output}: {verdict}"
        if v.rerun is not None:
            line += "; rerun " + ("bitwise identical" if v.rerun.identical else "differs" if v.rerun.error is None
                                  else f"failed: {v.rerun.error}")
        ui.print(line)
        for name, factor in (("data", v.data), ("code", v.code), ("env", v.env)):
            for reason in factor.reasons:
                ui.print(f"    {name}: {reason}")
