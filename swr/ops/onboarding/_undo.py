"""Registration's undo log: each step that changes something says how to put it back."""

from __future__ import annotations

from collections.abc import Callable


class Undo:
    """What registration did, to be undone in reverse order when a later step fails."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, action: Callable[[], object]) -> None:
        self._steps.append((what, action))

    def run(self) -> list[str]:
        """Undo everything; returns what could not be undone."""
        failed = []
        for what, action in reversed(self._steps):
            try:
                action()
            except Exception as error:  # keep undoing the rest; the caller reports these
                failed.append(f"{what}: {error}")
        self._steps.clear()
        return failed
