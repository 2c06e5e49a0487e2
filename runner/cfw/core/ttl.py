"""No job outlives the environment's ttl: the time a job started now may run.

Kinds whose jobs carry a run-time limit the service enforces (Google Batch's
maxRunDuration, a Kubernetes Job's activeDeadlineSeconds) cap it at the time left before
the environment's cfw-expires-at, and start nothing past it: a job whose runner died stops
at the ttl at the latest, by the service itself, with no guard process to run.

Pure: the time is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cfw.core.errors import WorkFailed
from cfw.core.guard import format_expires_at, parse_expires_at

MIN_JOB_SECONDS = 60  # a job given less than this is not worth starting


def expires_at(outputs: Mapping[str, Any]) -> datetime | None:
    """The environment's cfw-expires-at, from the labels its root module outputs."""
    labels = outputs.get("cfw_labels") or {}
    return parse_expires_at(labels.get("cfw-expires-at")) if isinstance(labels, Mapping) else None


def seconds_left(expires: datetime | None, now: datetime) -> int | None:
    """Seconds a job started NOW may run before the ttl (None: no ttl). WorkFailed when
    less than a minute is left: no job starts that could not run."""
    if expires is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    left = int((expires - now).total_seconds())
    if left < MIN_JOB_SECONDS:
        raise WorkFailed(
            f"the environment's ttl ends at {format_expires_at(expires)}: no job is "
            "started after it (`cfw up` with a longer ttl extends it)"
        )
    return left


def capped(limit_s: float | None, left_s: int | None) -> float | None:
    """A job's run-time limit (None or 0: none) at most LEFT_S (None: no ttl)."""
    if left_s is None:
        return limit_s
    return left_s if not limit_s or limit_s > left_s else limit_s
