"""Quality gates: `vtool validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vtool.cli.app import app
from vtool.cli.common import JsonOpt, command
from vtool.cli.ui import ui
from vtool.ops.validate import ValidateOptions, ValidateResult, validate

MARKS = {"ok": "ok   ", "fail": "FAIL ", "error": "ERROR"}


@command(app, "validate")
def validate_cmd(paths: Annotated[list[str] | None, typer.Argument(help="Checked paths; none = every check.")] = None,
                 rev: Annotated[str | None, typer.Option("--rev", help="Validate this revision, without checkout.")]
                 = None,
                 junit: Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.",
                                                            dir_okay=False)] = None,
                 json_out: JsonOpt = False) -> None:
    """Check the data against the checks in vtool.yaml (schema, rows, freshness, license, pii, hash)."""
    result = validate(ValidateOptions(paths or [], rev, junit), ui.progress())
    ui.json(result) if json_out else _render(result)
    if result.failed:
        raise typer.Exit(1)


def _render(result: ValidateResult) -> None:
    if not result.checks:
        ui.print("no checks declared in vtool.yaml (see docs/quality-gates.md)")
        return
    for r in result.results:
        column = f" {r.column}" if r.column else ""
        ui.print(f"{MARKS.get(r.status, r.status)} {r.path}: {r.rule}{column}: {r.message}")
    bad = sum(1 for r in result.results if r.status != "ok")
    ui.info(f"{bad} failed, {len(result.results) - bad} passed; {result.files} file(s), "
            f"{result.cache_hits} from the results cache, {result.rows_read} row(s) read")
