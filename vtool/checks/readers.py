"""Streaming table readers: CSV/TSV and JSON Lines in one pass with bounded memory, Parquet through pyarrow.

Memory is bounded by the batch and by MAX_LINE: a line (or a quoted field) longer than that is an error,
never a reason to hold a 5 GB file in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice, repeat
from typing import IO, Any

CHUNK = 1 << 20
MAX_LINE = 16 << 20
BATCH_ROWS = 8192
BOM = "\ufeff"
QUOTE = '"'
DELIMITERS = {"csv": ",", "tsv": "\t"}
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
PARQUET_EXTRA = "pip install 'vtool[parquet]'"
CSV_HINTS = {
    "unexpected end of data": "a quoted field is never closed (it runs to the end of the file)",
    "field larger than field limit": f"a field is longer than {MAX_LINE >> 20} MiB (an unclosed quote?)",
}

Update = Callable[[bytes], object]


class UnreadableTable(ValueError):
    """The data cannot be read as a table of its format; `line` says where, when known."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class ExtraMissing(RuntimeError):
    """An optional dependency a format needs is not installed."""


@dataclass(frozen=True)
class Batch:
    """Rows (or, from the fast CSV path, columns already split) and the line each row starts on."""

    rows: list[Any]
    starts: list[int] | None
    first: int
    columns: list[list[str]] | None = None
    no_empty: bool = False

    @property
    def count(self) -> int:
        """Return how many rows the batch holds."""
        return len(self.columns[0]) if self.columns else len(self.rows)

    def line_of(self, i: int) -> int:
        """Return the line (or row number, for Parquet) that row i of the batch starts on."""
        return self.starts[i] if self.starts is not None else self.first + i


def format_of(path: str) -> str | None:
    """Name a path's table format from its extension, or None when vtool cannot read it as a table."""
    dot = path.rfind(".")
    return EXTENSIONS.get(path[dot:].lower()) if dot > path.rfind("/") else None


def text_lines(stream: IO[bytes], update: Update | None = None) -> Iterator[str]:
    """Yield UTF-8 lines (ending in \\n) from a binary stream in chunks, refusing NUL bytes and huge lines.

    Lines are split in C (one StringIO per chunk, flattened by chain): no Python frame per line.
    """
    return _lines_of(_blocks(stream, update))


def _lines_of(blocks: Iterator[tuple[str, int]]) -> Iterator[str]:
    return chain.from_iterable(io.StringIO(text, newline="\n") for text, _ in blocks)


def _blocks(stream: IO[bytes], update: Update | None) -> Iterator[tuple[str, int]]:
    """Yield decoded blocks of whole lines, each with the number of lines before it."""
    pending = b""
    done = 0
    first = True
    while chunk := stream.read(CHUNK):
        if update is not None:
            update(chunk)
        data = pending + chunk
        cut = data.rfind(b"\n")
        if cut < 0 or len(data) - cut > MAX_LINE:
            if len(data) > MAX_LINE:
                at = done + data.count(b"\n") + 1
                raise UnreadableTable(at, f"a line is longer than {MAX_LINE >> 20} MiB; not a table this reader takes")
            pending = data
            continue
        body, pending = data[: cut + 1], data[cut + 1:]
        yield _decoded(body, done, first), done
        first = False
        done += body.count(b"\n")
    if pending:
        yield _decoded(pending, done, first), done


def _decoded(body: bytes, done: int, first: bool) -> str:
    nul = body.find(b"\0")
    if nul >= 0:
        raise UnreadableTable(done + body.count(b"\n", 0, nul) + 1, "contains a NUL byte: binary data, not text")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableTable(done + body.count(b"\n", 0, exc.start) + 1, "is not valid UTF-8") from None
    return text[1:] if first and text.startswith(BOM) else text


def csv_batches(stream: IO[bytes], fmt: str, update: Update | None = None) -> Iterator[list[str] | Batch]:
    """Yield the header row, then batches of rows; quoted fields may span lines.

    While the file has no quote character, every newline ends a record, so blocks are split into
    columns with str.split in C; from the first block with a quote on, the csv module reads the rest.
    """
    delimiter = DELIMITERS[fmt]
    blocks = _blocks(stream, update)
    done = 0
    for text, done in blocks:
        if QUOTE in text or "\r" in text or done == 0 and not text.strip():
            yield from _quoted(chain([(text, done)], blocks), delimiter, done, done == 0)
            return
        if done == 0:
            header, _, text = text.partition("\n")
            yield header.split(delimiter)
            width = header.count(delimiter) + 1
            done = 1
        if text:
            yield _split(text, done, delimiter, width)
    if done == 0:
        yield []  # an empty file: no header, no rows


def _split(text: str, done: int, delimiter: str, width: int) -> Batch:
    """Split a quote-free block of whole lines into columns, or number its rows when some are ragged or blank."""
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n")
    if width > 1 and list(map(str.count, lines, repeat(delimiter))) == [width - 1] * len(lines):
        flat = body.replace("\n", delimiter).split(delimiter)
        empty = delimiter * 2 in body or body.startswith(delimiter) or body.endswith(delimiter) \
            or f"\n{delimiter}" in body or f"{delimiter}\n" in body
        return Batch([], None, done + 1, [flat[i::width] for i in range(width)], no_empty=not empty)
    return _with_starts([line.split(delimiter) if line else [] for line in lines], done + 1)


def _quoted(blocks: Iterator[tuple[str, int]], delimiter: str, done: int,
            with_header: bool) -> Iterator[list[str] | Batch]:
    """Read the rest of the file with the csv module (quoted fields, multi-line values, \\r line ends)."""
    csv.field_size_limit(MAX_LINE)  # process-wide; bounds a field (an unclosed quote) to what a line may hold
    reader = csv.reader(_lines_of(blocks), delimiter=delimiter, strict=True)
    if with_header:
        header = _rows(reader, 1, done)
        yield header[0] if header else []
    start = reader.line_num
    while rows := _rows(reader, BATCH_ROWS, done):
        end = reader.line_num
        if end - start == len(rows) and [] not in rows:
            yield Batch(rows, None, done + start + 1)
        else:
            yield _with_starts(rows, done + start + 1)
        start = end


def _rows(reader: Any, n: int, done: int) -> list[list[str]]:
    try:
        return list(islice(reader, n))
    except csv.Error as exc:
        text = str(exc)
        hint = next((h for k, h in CSV_HINTS.items() if text.startswith(k)), text)
        raise UnreadableTable(done + reader.line_num, hint) from None


def _with_starts(rows: list[list[str]], line: int) -> Batch:
    """Number the rows of a batch holding multi-line fields or blank lines (which are dropped)."""
    kept: list[list[str]] = []
    starts: list[int] = []
    for row in rows:
        if row:
            kept.append(row)
            starts.append(line)
        line += 1 + sum(f.count("\n") for f in row)
    return Batch(kept, starts, line)


def jsonl_batches(stream: IO[bytes], update: Update | None = None) -> Iterator[Batch]:
    """Yield batches of JSON objects, one per non-blank line."""
    lines = text_lines(stream, update)
    line = 1
    loads = json.loads
    while chunk := list(islice(lines, BATCH_ROWS)):
        rows: list[dict[str, Any]] = []
        starts: list[int] = []
        for text in chunk:
            if text.strip():
                try:
                    obj = loads(text)
                except (ValueError, RecursionError) as exc:
                    why = getattr(exc, "msg", "nested too deeply")
                    raise UnreadableTable(line, f"not valid JSON ({why})") from None
                if type(obj) is not dict:
                    raise UnreadableTable(line, f"is a JSON {type(obj).__name__}, not an object")
                rows.append(obj)
                starts.append(line)
            line += 1
        yield Batch(rows, starts, line)


def open_parquet(stream: IO[bytes]) -> Any:
    """Open a Parquet file's footer (row count, schema) without reading data."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ExtraMissing(f"reading Parquet needs the optional pyarrow extra: {PARQUET_EXTRA}") from None
    try:
        return pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises its own error types for every kind of bad file
        raise UnreadableTable(None, f"not a readable Parquet file ({str(exc)[:120]})") from None


def parquet_type(arrow_type: Any) -> str:
    """Name the Table Schema type a Parquet column's Arrow type holds."""
    import pyarrow.types as pt

    checks = (("integer", pt.is_integer), ("number", pt.is_floating), ("number", pt.is_decimal),
              ("boolean", pt.is_boolean), ("date", pt.is_date), ("datetime", pt.is_timestamp),
              ("string", pt.is_string), ("string", pt.is_large_string))
    return next((name for name, test in checks if test(arrow_type)), str(arrow_type))


def parquet_batches(pf: Any, columns: list[str]) -> Iterator[tuple[dict[str, list[Any]], int]]:
    """Yield the named columns in batches as Python lists, with the 1-based number of the batch's first row."""
    row = 1
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS * 8, columns=columns):
            yield {name: batch.column(name).to_pylist() for name in columns}, row
            row += batch.num_rows
    except (OSError, ValueError) as exc:
        raise UnreadableTable(None, f"Parquet data cannot be read ({str(exc)[:120]})") from None
