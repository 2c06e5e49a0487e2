"""AWS Batch jobs in moto as Funnel submits them, held where a busy queue holds them.

moto would run a job in Docker, which is not here (the job then fails at once); holding
moto's job progression keeps it SUBMITTED, as behind a queue whose compute environment
has not scaled out yet. TerminateJob of such a job fails it, as on AWS (moto_plus.py).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any


def _state_manager(endpoint: str, path: str, body: dict) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/{path}", data=json.dumps(body).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).read()


@contextlib.contextmanager
def held(endpoint: str) -> Iterator[None]:
    _state_manager(
        endpoint,
        "set-transition",
        {"model_name": "batch::job", "transition": {"progression": "time", "seconds": 86400}},
    )
    try:
        yield
    finally:
        _state_manager(endpoint, "unset-transition", {"model_name": "batch::job"})


def submit_as_funnel(batch: Any, queue: str, definition: str, task_name: str) -> str:
    """As Funnel's AWS Batch backend submits a TES task: named after it, its id a parameter."""
    return batch.submit_job(
        jobName=task_name,
        jobQueue=queue,
        jobDefinition=definition,
        parameters={"taskID": uuid.uuid4().hex},
    )["jobId"]


def status(batch: Any, job_id: str) -> str:
    return batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]
