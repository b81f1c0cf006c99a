"""Allow `python -m vtool`."""

from vtool.cli.app import main

main()
