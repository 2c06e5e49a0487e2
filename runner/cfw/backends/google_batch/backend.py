"""The google-batch backend: each job a Google Batch job, polled by one labelled list."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.google_batch import translate, ttl
from cfw.backends.google_batch.client import Clients
from cfw.backends.google_batch.config import GoogleBatchConfig
from cfw.backends.google_batch.status import status_of
from cfw.core.errors import CfwError, WorkFailed

# what a job this run cancelled may be listed as, until it is deleted and listed no more
CANCEL = {JobState.CANCELLED, JobState.PENDING, JobState.RUNNING}
MISSING_GRACE_S = 120.0  # a job just created may not be listed yet
POLL_FAILURES = 10  # consecutive failed status calls before the run gives up
# the states a status list asks for: unfinished jobs only (AIP-160 filter terms)
UNFINISHED = ' AND status.state!="SUCCEEDED" AND status.state!="FAILED"'
LIST_PAGE = 100  # jobs a page of a list holds at most (the service lowers larger sizes)


def short(name: str) -> str:
    """The job id from a job name (projects/<id or number>/locations/<r>/jobs/<id>)."""
    return name.rsplit("/", 1)[-1]


class GoogleBatchBackend(Backend[GoogleBatchConfig]):
    def __init__(self, ctx: EnvContext[GoogleBatchConfig], clients: Clients | None = None):
        super().__init__(ctx)
        self.clients = clients or Clients(str(ctx.outputs["project"]), str(ctx.outputs["region"]))
        self.submitted: dict[str, float] = {}  # job id -> when
        self.uids: dict[str, str] = {}  # job id -> uid (Cloud Logging labels entries by uid)
        self.secrets: dict[str, str] = {}  # env var -> secret name, created once per run
        self.poll_failures = 0
        self.cancelled: set[str] = set()  # job ids this run deleted
        self.final: dict[str, JobStatus] = {}  # external id -> how it ended

    # -- submit -----------------------------------------------------------------------------
    def submit(self, spec: JobSpec, payload: Any, secrets: Mapping[str, str]) -> str:
        """``payload``: the CreateJobRequest (Kind.submission) or its JSON (translate)."""
        if isinstance(payload, translate.batch_v1.CreateJobRequest):
            request = payload
        else:
            request = translate.from_json(payload)
        request = ttl.bound(request, ttl.expires_at(self.ctx.outputs), datetime.now(UTC))
        for var in spec.env:
            if var not in self.secrets:
                if var not in secrets:
                    raise WorkFailed(f"no value for the job's environment variable {var}")
                labels = {**translate.labels(spec, self.ctx), "cfw-var": translate.label_value(var)}
                for key in ("cfw-job", "cfw-rule", "cfw-attempt"):
                    labels.pop(key)
                self.secrets[var] = self.clients.put_secret(
                    translate.secret_id(self.ctx, var), secrets[var], labels
                )
        job = self.clients.create_job(request)
        self.submitted[short(job.name)] = time.monotonic()
        if job.uid:
            self.uids[short(job.name)] = job.uid
        return job.name

    # -- status -----------------------------------------------------------------------------
    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        """One list_jobs call with the run's labels and the states of unfinished jobs (all
        pages), whatever the number of jobs, and whatever the number that finished: a job
        that left the list since the last cycle is read by name, or, when at least as many
        left as the run's whole list has pages, found in one list of the run."""
        result = {ext: self.final[ext] for ext in external_ids if ext in self.final}
        open_ids = [ext for ext in external_ids if ext not in self.final]
        if not open_ids:
            return result
        run_filter = (
            f'labels.cfw-id="{self.ctx.env_id}" AND '
            f'labels.cfw-run="{translate.label_value(self.ctx.run_id)}"'
        )
        try:
            jobs = {short(job.name): job for job in self.clients.list_jobs(run_filter + UNFINISHED)}
            missing = [ext for ext in open_ids if short(ext) not in jobs]
            if missing and len(missing) >= math.ceil(len(self.submitted) / LIST_PAGE):
                wanted = {short(ext) for ext in missing}
                jobs |= {
                    short(j.name): j
                    for j in self.clients.list_jobs(run_filter)
                    if short(j.name) in wanted
                }
            else:
                for ext in missing:
                    job = self.clients.get_job(ext)
                    if job is not None:
                        jobs[short(ext)] = job
        except CfwError:
            self.poll_failures += 1
            if self.poll_failures >= POLL_FAILURES:
                raise
            return result  # no news this cycle; the jobs stay active
        self.poll_failures = 0
        now = time.monotonic()
        for ext in open_ids:
            job = jobs.get(short(ext))
            if short(ext) in self.cancelled and (job is None or status_of(job).state in CANCEL):
                result[ext] = self.final[ext] = JobStatus(JobState.CANCELLED, reason="cancelled")
                continue
            if job is None:
                since = self.submitted.setdefault(short(ext), now)
                result[ext] = (
                    JobStatus(JobState.PENDING)
                    if now - since < MISSING_GRACE_S
                    else JobStatus(
                        JobState.FAILED,
                        reason="the job is no longer in Google Batch (deleted outside this run?)",
                    )
                )
                continue
            if job.uid:
                self.uids[short(ext)] = job.uid
            result[ext] = status_of(job)
            if result[ext].state.finished:
                self.final[ext] = result[ext]  # a finished job stays as it ended
        return result

    # -- cancel, logs, close ----------------------------------------------------------------
    def cancel(self, external_ids: Sequence[str]) -> None:
        """Delete the jobs (Batch stops their tasks); a job already gone is success."""
        errors = []
        for ext in external_ids:
            try:
                self.clients.delete_job(ext, reason=f"cancelled by cfw (run {self.ctx.run_id})")
            except CfwError as exc:
                errors.append(str(exc))
            else:  # deleting, or already gone: once deleted, the list will not show it
                self.cancelled.add(short(ext))
        if errors:
            raise WorkFailed(f"could not cancel {len(errors)} job(s): {errors[0]}")

    def logs(self, external_id: str) -> str:
        """The job's status events, then what its task printed (from Cloud Logging)."""
        job = self.clients.get_job(external_id)
        if job is None:
            return f"# Google Batch job {external_id} no longer exists\n"
        lines = [f"# Google Batch job {job.name} (uid {job.uid}): {job.status.state.name}"]
        lines += [
            f"# {event.event_time.isoformat() if event.event_time else ''} "
            f"{event.type_}: {event.description}"
            for event in job.status.status_events
        ]
        lines.append("# --- task output (Cloud Logging, batch_task_logs) ---")
        try:
            lines += self.clients.task_log(job.uid)
        except CfwError as exc:
            lines.append(f"# cfw could not read the log: {exc}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Delete the run's secrets, then the clients' connections."""
        for name in self.secrets.values():
            self.clients.delete_secret(name)
        self.secrets.clear()
        self.clients.close()
