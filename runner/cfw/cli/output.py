"""The one output object for the terminal: messages, tables and Terraform progress (rich).

Messages and progress go to stderr; stdout carries only data (`--json`, `--explain`,
`logs`), so scripts can read it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from cfw.core.report import Reporter

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.progress import Progress
    from rich.table import Table


class Output(Reporter):
    def __init__(self, quiet: bool = False):
        from rich.console import Console  # imported by the first Output, not by `cfw --help`

        super().__init__(sys.stderr)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = Console(highlight=False, soft_wrap=True)
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task = None
        self._started: set[str] = set()
        self._phase = ""

    # -- messages ---------------------------------------------------------------------------
    def info(self, text: str) -> None:
        if not self.quiet:
            self._print(f"[bold cyan]cfw[/]: {_escape(text)}")

    def warn(self, text: str) -> None:
        self._print(f"[bold yellow]cfw: warning[/]: {_escape(text)}")

    def success(self, text: str) -> None:
        self._print(f"[bold green]cfw[/]: {_escape(text)}")

    def error(self, text: str) -> None:
        self.err.print(f"[bold red]error[/]: {_escape(text)}")

    def raw(self, text: str) -> None:
        if not self.quiet:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False)
            else:
                self.err.print(text, markup=False, highlight=False)

    def table(self, table: Table) -> None:
        self.out.print(table)

    def _print(self, markup: str) -> None:
        if self._progress is not None:
            self._progress.console.print(markup)
        else:
            self.err.print(markup)

    # -- a run's live view ------------------------------------------------------------------
    @contextlib.contextmanager
    def run_view(self, account, env: str) -> Iterator[None]:
        """On a terminal, a live view of the run (cli/live.py) until it ends; the lines
        printed meanwhile (failures, warnings) go above it."""
        if not self.live:
            yield
            return
        from rich.live import Live

        from cfw.cli.live import RunView

        account.done_lines = False  # the bars show them
        with Live(RunView(account, env), console=self.err, refresh_per_second=4):
            yield

    # -- Terraform progress -----------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self.err.is_terminal and not self.quiet

    def phase(self, name: str, total: int | None = None) -> None:
        if name == "changes":
            if total and self._progress is not None and self._task is not None:
                self._progress.update(self._task, total=total)
            elif total and self._progress is None:
                self.info(f"{total} changes planned")
            return
        self.done()
        self._phase = name
        self._started.clear()
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold cyan]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[current]}"),
                console=self.err,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(name, total=None, current="")
        else:
            self.info(f"{name} ...")

    def resource(self, address: str, action: str, state: str) -> None:
        if state == "planned":
            return
        if self._progress is not None and self._task is not None:
            if state == "started":
                self._started.add(address)
                self._progress.update(self._task, current=f"{action} {address}")
            elif state in ("done", "failed"):
                self._progress.advance(self._task)
                mark = "[green]✓" if state == "done" else "[red]✗"
                self._progress.console.print(f"  {mark}[/] {action} {_escape(address)}")
        elif state in ("done", "failed"):
            self.info(f"{action} {address}: {state}")

    def message(self, text: str) -> None:
        self.info(text)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


def write_data(text: str) -> bool:
    """TEXT on stdout; False when its reader has gone (`cfw logs ... | head`): what it
    wanted it has, which is no error (and no broken-pipe complaint at exit)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
