"""The live view of a run on a terminal (rich): the environment and run on top, with the
time so far and the estimated cost so far; one line per rule with a bar (done, running,
failed, waiting) and its counts. Drawn from the run's account (orchestration/account.py)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cfw.core.prices.job import format_usd

BAR = 30


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def bar(done: int, running: int, failed: int, waiting: int, width: int = BAR) -> Text:
    """A bar of WIDTH cells: green done, cyan running, red failed, dim waiting."""
    total = max(1, done + running + failed + waiting)
    cells = [
        (done, "green"),
        (running, "cyan"),
        (failed, "red"),
    ]
    text = Text()
    used = 0
    for count, style in cells:
        n = round(width * count / total) if count else 0
        n = min(n, width - used)
        text.append("━" * n, style=style)
        used += n
    text.append("━" * (width - used), style="grey37")
    return text


class RunView:
    """What rich's Live redraws: built from the account each time it refreshes."""

    def __init__(self, account: Any, env: str, started: float | None = None):
        self.account = account
        self.env = env
        self.started = time.monotonic() if started is None else started

    def __rich__(self) -> Group:
        account = self.account
        head = Text()
        head.append("cfw ", style="bold cyan")
        head.append(f"env {self.env} · run {account.run_id} · ")
        head.append(_elapsed(time.monotonic() - self.started))
        spent = account.cost_so_far()
        if spent is not None:
            head.append(f" · {format_usd(spent)} so far (estimate)")
        table = Table.grid(padding=(0, 1))
        for _ in range(5):
            table.add_column()
        rules = sorted(account.rules.items(), key=lambda r: (r[1].first is None, r[1].first or 0.0))
        for rule, t in rules:
            failed_for_good = t.failed - t.retries if t.failed > t.retries else 0
            waiting = max(0, t.jobs - t.done - t.running - failed_for_good - t.cancelled)
            counts = f"{t.done}/{t.jobs}"
            extra = []
            if t.running:
                extra.append(f"{t.running} running")
            if t.failed:
                extra.append(f"[red]{t.failed} failed[/]")
            if t.cancelled:
                extra.append(f"[yellow]{t.cancelled} cancelled[/]")
            table.add_row(
                Text(rule, style="bold"),
                bar(t.done, t.running, failed_for_good + t.cancelled, waiting),
                counts,
                ", ".join(extra),
                _elapsed(t.wall_so_far()),
            )
        return Group(head, table)
