"""Options every command shares, attached by one decorator so commands stay short."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from vtool.cli.ui import ui

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and data.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Print more, with tracebacks on errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TargetsArg = Annotated[list[str] | None, typer.Argument(help="Tracked paths or their .vtool files; none = all.")]
RemoteOpt = Annotated[str | None, typer.Option("--remote", "-r", help="Remote name (default: the default remote).")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-j", min=1, max=256, help="Parallel transfers.")]


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """Register fn as a command that also accepts -q/-v after its name."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        extra = [
            inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=QuietOpt),
            inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=VerboseOpt),
        ]

        @functools.wraps(fn)
        def wrapper(*args: Any, quiet: bool = False, verbose: bool = False, **kw: Any) -> Any:
            ui.configure(quiet, verbose)
            return fn(*args, **kw)

        hints = {k: v for k, v in inspect.get_annotations(fn, eval_str=True).items()}
        wrapper.__annotations__ = {**hints, "quiet": QuietOpt, "verbose": VerboseOpt}
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
            + extra
        )
        del wrapper.__wrapped__  # type: ignore[attr-defined]
        app.command(name, **kwargs)(wrapper)
        return fn
    return deco
