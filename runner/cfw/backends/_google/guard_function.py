"""The guard's Cloud Function (2nd gen, modules/gcp-guard): one check per call of the
schedule.

Everything but the entry's signature is cfw.core.guard_entry (settings from the function's
variables, the kind's adapter by CFW_GUARD_ADAPTER, the outcome as JSON), shared with the
AWS Lambda; the adapter makes its own clients with the function's service account
(Application Default Credentials on Cloud Run), so no session is passed.

Zipped by cfw.backends._google.guard_zip, whose main.py re-exports `guard`: the Functions
Framework calls it with the Flask request (Cloud Scheduler's POST, whose OIDC token Cloud
Run checked before the call reaches here; the body is not read). A check that raises
answers 500, so the failure shows in Cloud Scheduler's job status and in the logs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cfw.core.guard_entry import run

__all__ = ["guard"]


def guard(request: Any) -> tuple[str, int, dict[str, str]]:
    result = run(os.environ, None)
    body = json.dumps(result)
    print(body)  # Cloud Logging keeps the function's stdout
    return body, 200, {"Content-Type": "application/json"}
