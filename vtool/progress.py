"""How ops report progress without printing: the CLI passes a renderer, tests pass nothing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress events from an operation."""

    def start(self, description: str, total: int | None = None, total_bytes: int | None = None) -> None:
        """Begin a phase of `total` items (unknown when None)."""

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        """Count finished items and bytes in the current phase."""

    def message(self, text: str) -> None:
        """Tell the user something worth knowing now, such as waiting for a lock."""

    def done(self) -> None:
        """End the current phase."""


class NullProgress:
    """Discards every event."""

    def start(self, description: str, total: int | None = None, total_bytes: int | None = None) -> None:
        """Ignore the event."""

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        """Ignore the event."""

    def message(self, text: str) -> None:
        """Ignore the event."""

    def done(self) -> None:
        """Ignore the event."""


NULL_PROGRESS = NullProgress()
