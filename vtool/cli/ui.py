"""The one terminal object: verbosity, colour, stderr messages and progress bars."""

from __future__ import annotations

import dataclasses
import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

from vtool.errors import VtoolError
from vtool.scrub import refresh as refresh_secrets
from vtool.scrub import scrub

if TYPE_CHECKING:
    from rich.console import Console

PIPE_WIDTH = 400
# Characters of a JSON document written at a time.
JSON_CHUNK = 64 * 1024


class UI:
    """Owns where output goes: data to stdout, messages and progress to stderr."""

    def __init__(self) -> None:
        self.quiet = False
        self.verbose = os.environ.get("VTOOL_DEBUG") == "1"

    # rich is imported only when a table, a bar or a coloured error is drawn: plain lines need none
    # of it, and its import is a good part of a no-op command's startup time.
    @cached_property
    def out(self) -> Console:
        """Return the rich console on stdout (markup off: names like "data[1]" print as they are)."""
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True, markup=False,
                       width=None if sys.stdout.isatty() else PIPE_WIDTH)

    @cached_property
    def err(self) -> Console:
        """Return the rich console on stderr."""
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

    def configure(self, quiet: bool, verbose: bool) -> None:
        """Apply -q/-v from the command line, and learn the credentials of this command's environment."""
        self.quiet = quiet
        self.verbose = self.verbose or verbose
        refresh_secrets()

    # Everything below masks credentials (vtool.scrub): whatever reaches the terminal passes through here.
    def print(self, text: str = "") -> None:
        """Write a line of human output on stdout."""
        sys.stdout.write(scrub(text) + "\n")

    def info(self, text: str) -> None:
        """Write a message on stderr unless quiet."""
        if not self.quiet:
            sys.stderr.write(scrub(text) + "\n")

    def notice(self, text: str) -> None:
        """Write a message on stderr even when quiet (failures listed beside a result)."""
        sys.stderr.write(scrub(text) + "\n")

    def error(self, exc: BaseException) -> None:
        """Print an error as one red line, with its hint."""
        from rich.markup import escape

        message = exc.message if isinstance(exc, VtoolError) else str(exc)
        self.err.print(f"[bold red]error:[/] {escape(one_line(scrub(message)))}", markup=True, highlight=False)
        if isinstance(exc, VtoolError) and exc.hint:
            self.err.print(f"  hint: {one_line(scrub(exc.hint))}", markup=False)

    def traceback(self, exc: BaseException) -> None:
        """Print the traceback (-v, VTOOL_DEBUG=1), masked like every other output."""
        import traceback

        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))

    def json(self, result: Any) -> None:
        """Print a result as one JSON document on stdout, written as it is encoded: a list that streams its
        items (ops.compare.Listing) is never held whole."""
        import json  # only for --json: the json package is 2-3 ms of every start-up

        encoder = json.JSONEncoder(indent=2, default=_plain, ensure_ascii=False)
        held: list[str] = []
        size = 0
        for chunk in encoder.iterencode(result):
            held.append(chunk)
            size += len(chunk)
            if size >= JSON_CHUNK:  # whole tokens only: a credential inside one string is masked whole
                sys.stdout.write(scrub("".join(held)))
                held, size = [], 0
        sys.stdout.write(scrub("".join(held)) + "\n")

    def progress(self) -> RichProgress:
        """Return a progress renderer, silent when stderr is not a terminal or with -q."""
        bars = not self.quiet and sys.stderr.isatty()
        return RichProgress(self.err if bars else None, bars=bars, messages=not self.quiet)


def _plain(value: Any) -> Any:
    """Turn a dataclass into its fields (as dataclasses.asdict would, one level at a time), anything else to str."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


def one_line(text: str) -> str:
    """Fold a message onto one line: an OSError's file name or a server's text may hold newlines."""
    return " ".join(text.split("\n")) if "\n" in text else text


class RichProgress:
    """Renders op progress events (vtool.progress.Progress) as rich bars on stderr."""

    def __init__(self, console: Console | None, bars: bool, messages: bool) -> None:
        self.console = console
        self.enabled = bars
        self.messages = messages
        self._bar: Any = None
        self._task: Any = None
        self._bytes = False
        self._files = 0

    def start(self, description: str, total: int | None = None, total_bytes: int | None = None) -> None:
        """Open a bar counting bytes when known, else items."""
        if not self.enabled:
            return
        self.done()
        from rich.progress import (  # only when a bar is really drawn: it costs startup time
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bytes = bool(total_bytes)
        if self._bytes:  # the bar follows bytes; files are counted beside it
            counters = (TextColumn("{task.fields[files]}/{task.fields[of]} files", markup=False), DownloadColumn())
        else:
            counters = (MofNCompleteColumn(),)
        columns = (TextColumn("{task.description}", markup=False), BarColumn(), *counters, TimeRemainingColumn())
        self._bar = Progress(*columns, console=self.console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total_bytes if self._bytes else total, files=0,
                                        of="?" if total is None else total)
        self._files = 0

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        """Move the bar."""
        if self._bar is None:
            return
        if self._bytes:
            self._files += items
            self._bar.update(self._task, advance=nbytes, files=self._files)
        else:
            self._bar.advance(self._task, items)

    def message(self, text: str) -> None:
        """Print a message above the bar (shown even when bars are off, unless quiet)."""
        text = scrub(text)
        if self._bar is not None:
            self._bar.console.print(text, markup=False)
        elif self.messages:
            sys.stderr.write(text + "\n")

    def done(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


ui = UI()
