"""What every cloud guard's entry point does (the AWS Lambda, the Google Cloud Function, the
Azure Function): read its settings from the variables Terraform set on the function, build
the kind's adapter, run one check, return the outcome as JSON-serialisable data.

CFW_GUARD_ADAPTER names the kind's `from_environ` ("cfw.backends.tibanna.guard:from_environ");
it is called with the function's variables and a session (boto3's, or None where the adapter
makes its own clients). CFW_GUARD_INTERVAL, CFW_GUARD_ORPHAN_AFTER and CFW_GUARD_IDLE_AFTER
are seconds (idle "off": never), CFW_GUARD_EXPIRES_AT the environment's cfw-expires-at label.
No secret is in any variable: each adapter reaches its cloud with the function's identity.

Standard library only (with cfw.core.guard and guard_check): zipped into every cloud guard.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cfw.core import guard_check
from cfw.core.guard import Settings, parse_expires_at

OFF = "off"


def settings_from(environ: Mapping[str, str]) -> Settings:
    idle = environ.get("CFW_GUARD_IDLE_AFTER", OFF)
    return Settings(
        enabled=True,
        interval=timedelta(seconds=int(environ["CFW_GUARD_INTERVAL"])),
        orphan_after=timedelta(seconds=int(environ["CFW_GUARD_ORPHAN_AFTER"])),
        idle_after=None if idle in ("", OFF) else timedelta(seconds=int(idle)),
        expires_at=parse_expires_at(environ.get("CFW_GUARD_EXPIRES_AT")),
    )


def module_settings(guard: Any, labels: Mapping[str, str]) -> dict[str, Any]:
    """The `guard_settings` every guard module takes (its Terraform turns them into the
    variables settings_from reads), from the config's GUARD and the environment's LABELS."""
    idle = guard.idle_timeout
    return {
        "interval_minutes": int(guard.interval.total_seconds() // 60),
        "orphan_after_seconds": int(guard.orphan_after.total_seconds()),
        "idle_after_seconds": int(idle.total_seconds()) if idle is not None else None,
        "expires_at": labels.get("cfw-expires-at", "never"),
    }


def adapter_from(environ: Mapping[str, str], session: Any) -> Any:
    module, _, function = environ["CFW_GUARD_ADAPTER"].partition(":")
    if not module.startswith("cfw.backends.") or not function:
        raise ValueError(f"CFW_GUARD_ADAPTER {environ['CFW_GUARD_ADAPTER']!r} is not a cfw adapter")
    return getattr(importlib.import_module(module), function)(environ, session)


def run(environ: Mapping[str, str], session: Any, now: datetime | None = None) -> dict[str, Any]:
    """One check: what the function returns and logs."""
    outcome = guard_check.check(
        adapter_from(environ, session), settings_from(environ), now or datetime.now(UTC)
    )
    return result_of(outcome)


def result_of(outcome: guard_check.Outcome) -> dict[str, Any]:
    decision = outcome.decision
    return {
        "actions": [
            {"action": a.kind, "cause": a.cause, "run": a.run_id, "reason": a.reason}
            for a in decision.actions
        ],
        "done": list(outcome.done),
        "errors": list(outcome.errors),
        "notes": list(decision.notes),
        "runs": [
            {"run": r.run_id, "live": r.live, "age_seconds": int(r.age.total_seconds())}
            for r in decision.runs
        ],
        "stopped_since": decision.record.stopped_at.isoformat()
        if decision.record.stopped_at
        else None,
    }
