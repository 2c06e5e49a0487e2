"""The guard's Lambda (modules/aws-guard): one check per invocation of the schedule.

The handler builds the kind's adapter from the variables Terraform sets on the function
(CFW_GUARD_ADAPTER names the kind's `from_environ`, "cfw.backends.tibanna.guard:from_environ";
the others are what that function reads), runs cfw.core.guard_check.check and returns the
outcome, which it also prints (the function's log). No secret is in any variable: the
adapter reaches AWS with the function's own role.

Settings: CFW_GUARD_INTERVAL, CFW_GUARD_ORPHAN_AFTER and CFW_GUARD_IDLE_AFTER in seconds
(idle "off": never), CFW_GUARD_EXPIRES_AT the environment's cfw-expires-at label.

Zipped by cfw.backends._aws.guard_zip with cfw.core.guard, heartbeat, guard_check, the
store and the adapter; boto3 is the Lambda runtime's.
"""

from __future__ import annotations

import importlib
import json
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


def adapter_from(environ: Mapping[str, str], session: Any) -> Any:
    module, _, function = environ["CFW_GUARD_ADAPTER"].partition(":")
    if not module.startswith("cfw.backends.") or not function:
        raise ValueError(f"CFW_GUARD_ADAPTER {environ['CFW_GUARD_ADAPTER']!r} is not a cfw adapter")
    return getattr(importlib.import_module(module), function)(environ, session)


def run(environ: Mapping[str, str], session: Any, now: datetime | None = None) -> dict[str, Any]:
    """One check: what the handler returns (JSON-serialisable)."""
    outcome = guard_check.check(
        adapter_from(environ, session), settings_from(environ), now or datetime.now(UTC)
    )
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


def handler(event: Any, context: Any) -> dict[str, Any]:
    import os

    import boto3

    result = run(os.environ, boto3.session.Session())
    print(json.dumps(result))
    return result
