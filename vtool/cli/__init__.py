"""The command line: parse, call one op, render. The only place that imports typer or rich."""
