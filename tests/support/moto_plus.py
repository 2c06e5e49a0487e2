"""moto's server plus the two Step Functions actions it lacks and the aws provider calls,
and AWS Batch's TerminateJob of a job that has not started.

Without them `terraform apply` of a state machine retries for many minutes. They answer
as AWS documents them:
- ValidateStateMachineDefinition: result OK/FAIL with diagnostics (invalid JSON, missing
  StartAt/States, StartAt naming no state).
- ListStateMachineVersions: the published versions of a state machine, newest first,
  paginated with nextToken; StateMachineDoesNotExist for an unknown ARN.

Run it like moto_server: ``python tests/support/moto_plus.py -H 127.0.0.1 -p PORT``.

- TerminateJob: a job that has not reached STARTING is cancelled, FAILED at once, as AWS
  documents it (moto only flags it, and its job thread, waiting for the next state, never
  looks: the job would wait in SUBMITTED for as long as the test holds moto's progression).

- AddRoleToInstanceProfile of the role the profile already holds answers as the first call
  did. On this loaded machine the aws provider's SDK has retried (AWS_MAX_ATTEMPTS=2) a call
  whose answer it never read, after moto had done it: the retry met LimitExceeded and failed
  the whole apply. A different role still meets LimitExceeded, as on AWS.

It also loads AWS's managed IAM policies (moto leaves them out unless asked), so that a
module may attach e.g. AWSBatchServiceRole as it would on AWS.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.batch.models import BatchBackend
from moto.batch.utils import JobStatus
from moto.core.responses import ActionResult
from moto.iam.models import IAMBackend
from moto.server import main as moto_main
from moto.stepfunctions.responses import StepFunctionResponse


def _diagnostic(code: str, message: str) -> dict:
    return {"severity": "ERROR", "code": code, "message": message}


def validate_definition(definition: str) -> list[dict]:
    try:
        doc = json.loads(definition)
    except (TypeError, ValueError) as exc:
        return [_diagnostic("INVALID_JSON_DESCRIPTION", f"definition is not valid JSON: {exc}")]
    if not isinstance(doc, dict):
        return [_diagnostic("SCHEMA_VALIDATION_FAILED", "definition must be a JSON object")]
    problems = []
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        problems.append(
            _diagnostic("SCHEMA_VALIDATION_FAILED", "These fields are required: [States]")
        )
    start = doc.get("StartAt")
    if not isinstance(start, str):
        problems.append(
            _diagnostic("SCHEMA_VALIDATION_FAILED", "These fields are required: [StartAt]")
        )
    elif isinstance(states, dict) and states and start not in states:
        problems.append(_diagnostic("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {start}"))
    return problems


def validate_state_machine_definition(self) -> ActionResult:
    max_results = self._get_int_param("maxResults") or 100
    diagnostics = validate_definition(self._get_param("definition"))
    return ActionResult(
        {
            "result": "FAIL" if diagnostics else "OK",
            "diagnostics": diagnostics[:max_results],
            "truncated": len(diagnostics) > max_results,
        }
    )


def list_state_machine_versions(self) -> ActionResult:
    arn = self._get_param("stateMachineArn")
    machine = self.stepfunction_backend.describe_state_machine(arn)  # raises if unknown
    versions = sorted(
        getattr(machine, "versions", {}).values(), key=lambda v: v.version, reverse=True
    )
    start = int(self._get_param("nextToken") or 0)
    size = self._get_int_param("maxResults") or 100
    page = versions[start : start + size]
    result = {
        "stateMachineVersions": [
            {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in page
        ]
    }
    if start + size < len(versions):
        result["nextToken"] = str(start + size)
    return ActionResult(result)


_terminate_job = BatchBackend.terminate_job


def terminate_job(self, job_id: str, reason: str) -> None:
    _terminate_job(self, job_id, reason)
    job = self.get_job_by_id(job_id)
    if job is not None and job.status in (
        JobStatus.SUBMITTED,
        JobStatus.PENDING,
        JobStatus.RUNNABLE,
    ):
        job._mark_stopped(success=False)


BatchBackend.terminate_job = terminate_job

_add_role_to_instance_profile = IAMBackend.add_role_to_instance_profile


def add_role_to_instance_profile(self, profile_name: str, role_name: str) -> None:
    profile = self.get_instance_profile(profile_name)
    if [role.name for role in profile.roles] == [role_name]:
        return  # a retry of the call that attached it
    _add_role_to_instance_profile(self, profile_name, role_name)


IAMBackend.add_role_to_instance_profile = add_role_to_instance_profile
StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition
StepFunctionResponse.list_state_machine_versions = list_state_machine_versions

if __name__ == "__main__":
    moto_main()
