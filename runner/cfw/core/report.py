"""How the core tells the user what it is doing. The CLI supplies a rich implementation."""

from __future__ import annotations

import sys

from cfw.core.terraform import Progress


class Reporter(Progress):
    """Plain reporter: one line per message on stderr (used by the executor and tests)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def info(self, text: str) -> None:
        print(f"cfw: {text}", file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        print(f"cfw: warning: {text}", file=self.stream, flush=True)

    def phase(self, name: str, total: int | None = None) -> None:
        if name.startswith("terraform"):
            self.info(f"{name} ...")

    def resource(self, address: str, action: str, state: str) -> None:
        if state in ("done", "failed"):
            self.info(f"{action} {address}: {state}")

    def message(self, text: str) -> None:
        self.info(text)

    def raw(self, text: str) -> None:
        """Text as it is (a job's last lines, a table), on stderr."""
        print(text, file=self.stream, flush=True)

    def run_view(self, account, env: str):
        """A live view of a run while it goes on (a terminal's); here none."""
        import contextlib

        return contextlib.nullcontext()
