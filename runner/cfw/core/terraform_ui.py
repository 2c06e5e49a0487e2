"""Terraform's machine-readable UI (`-json`): its events, turned into a run's result and
progress callbacks.

`plan`, `apply` and `destroy -json` stream one JSON event per line (diagnostics, the change
summary, each planned change, each resource's apply hooks); `validate -json` prints one
document. See https://developer.hashicorp.com/terraform/internals/machine-readable-ui.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]


@dataclass
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str | None = None

    def __str__(self) -> str:
        where = f" ({self.address})" if self.address else ""
        detail = " ".join(self.detail.split())
        return f"{self.summary}{where}" + (f": {detail}" if detail else "")


@dataclass
class RunResult:
    events: list[Event] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)  # add / change / remove
    text: str = ""

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class Progress:
    """Receives Terraform's progress; the CLI's output object implements it."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def resource(self, address: str, action: str, state: str) -> None: ...

    def message(self, text: str) -> None: ...

    def done(self) -> None: ...


_ACTION_VERBS = {
    "create": "creating",
    "delete": "destroying",
    "update": "updating",
    "replace": "replacing",
    "read": "reading",
}
_HOOK_STATES = {
    "apply_start": "started",
    "apply_progress": "running",
    "apply_complete": "done",
    "apply_errored": "failed",
}


def read_stream(lines: Iterable[str], progress: Progress) -> RunResult:
    """The result of a streamed run, telling PROGRESS of each event as it comes; lines
    that are not events (Terraform's plain text) are kept as the result's text."""
    result = RunResult()
    for line in lines:
        event = parse_event(line)
        if event is None:
            result.text += line
            continue
        result.events.append(event)
        on_event(event, result, progress)
    return result


def read_document(text: str) -> RunResult:
    """The result of a command that prints one JSON document (`validate -json`)."""
    result = RunResult(text=text)
    try:
        doc = json.loads(text or "{}")
    except json.JSONDecodeError:
        doc = {}
    result.diagnostics.extend(diagnostic(d) for d in doc.get("diagnostics", []))
    return result


def on_event(event: Event, result: RunResult, progress: Progress) -> None:
    kind = event.get("type")
    if kind == "diagnostic":
        result.diagnostics.append(diagnostic(event.get("diagnostic", {})))
    elif kind == "change_summary":
        changes = event.get("changes", {})
        result.changes = {k: int(changes.get(k, 0)) for k in ("add", "change", "remove")}
        if changes.get("operation") == "plan":
            progress.phase("changes", total=sum(result.changes.values()))
    elif kind == "planned_change":
        change = event.get("change", {})
        addr = change.get("resource", {}).get("addr", "?")
        progress.resource(addr, change.get("action", "?"), "planned")
    elif kind in _HOOK_STATES:
        hook = event.get("hook", {})
        addr = hook.get("resource", {}).get("addr", "?")
        action = hook.get("action", "?")
        progress.resource(addr, _ACTION_VERBS.get(action, action), _HOOK_STATES[kind])


def parse_event(line: str) -> Event | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def diagnostic(raw: Mapping[str, Any]) -> Diagnostic:
    return Diagnostic(
        severity=raw.get("severity", "error"),
        summary=raw.get("summary", ""),
        detail=raw.get("detail", ""),
        address=raw.get("address"),
    )
