"""The guard's Lambda (modules/aws-guard): one check per invocation of the schedule.

Everything but the handler's signature is cfw.core.guard_entry (settings from the
function's variables, the kind's adapter by CFW_GUARD_ADAPTER, the outcome as JSON), shared
with the other clouds' guards; the adapter gets a boto3 session with the function's role.

Zipped by cfw.backends._aws.guard_zip with cfw.core.guard, heartbeat, guard_check,
guard_entry, the store and the adapter; boto3 is the Lambda runtime's.
"""

from __future__ import annotations

import json
from typing import Any

from cfw.core.guard_entry import adapter_from, run, settings_from

__all__ = ["adapter_from", "handler", "run", "settings_from"]


def handler(event: Any, context: Any) -> dict[str, Any]:
    import os

    import boto3

    result = run(os.environ, boto3.session.Session())
    print(json.dumps(result))
    return result
