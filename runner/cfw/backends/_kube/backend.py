"""The backend of every kind whose jobs are Kubernetes Jobs (gke, kubernetes): each job a
Job in the environment's namespace; the kind says only how to reach the cluster
(:meth:`KubeBackend.connect`).

Status: one list of the run's Jobs by label selector per cycle, whatever the number of
jobs, leaving out the Jobs that succeeded (field selector), so that its pages follow the
active jobs and not the finished ones kept for ttlSecondsAfterFinished; a job that left
the list is read by name once. The run's pods that did not succeed are listed (once, for
all jobs) only when a Job failed or has been waiting to start long enough to be worth
explaining (an image that cannot be pulled).

A pod the scheduler cannot place waits for the cluster autoscaler to add a node. When
no pool can scale up for it (quota, a GPU stockout, a pool at its max_nodes that never
frees), it would wait forever: after ``pending_timeout`` of Unschedulable during
which no job of the run was running, the job fails with the scheduler's message. While
some job of the run runs, a waiting pod is taken to be queueing for a node that will
free up, and the clock starts again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from cfw.backends._kube import client as kube_client
from cfw.backends._kube.client import Kube, NoLog, Unavailable
from cfw.backends._kube.manifest import TTL_ANNOTATION, run_selector, secret_labels
from cfw.backends._kube.status import (
    JOB_NAME_LABELS,
    job_failure,
    job_of,
    job_phase,
    unschedulable,
    waiting_problem,
)
from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.core import ttl
from cfw.core.errors import CfwError, UserError
from cfw.core.guard import format_expires_at

PENDING_CHECK_S = 30.0  # look at a waiting job's pod after this long, and then this often
LOG_LINES = 5000
# field selectors the API server supports: Jobs by status.successful, Pods by status.phase
JOBS_NOT_SUCCEEDED = "status.successful!=1"
PODS_NOT_DONE = "status.phase!=Succeeded"


def bounded(manifest: dict[str, Any], expires: datetime | None, now: datetime) -> dict[str, Any]:
    """The Job MANIFEST with activeDeadlineSeconds at most the time left before the
    environment's ttl (its rule's own shorter runtime stays): the Job controller ends a
    pod that runs on, so an orphaned job stops at the ttl at the latest. WorkFailed past
    the ttl. Counted from the Job's start, as Kubernetes counts it: a pending pod spends
    its time too."""
    left = ttl.seconds_left(expires, now)
    if left is None:
        return manifest
    spec = dict(manifest["spec"])
    own = spec.get("activeDeadlineSeconds")
    spec["activeDeadlineSeconds"] = int(ttl.capped(own, left))
    if spec["activeDeadlineSeconds"] == own:
        return {**manifest, "spec": spec}
    meta = dict(manifest["metadata"])
    meta["annotations"] = {
        **meta.get("annotations", {}),
        TTL_ANNOTATION: format_expires_at(expires),
    }
    return {**manifest, "metadata": meta, "spec": spec}


class JobSettings(Protocol):
    """What the backend reads from a Kubernetes kind's config."""

    @property
    def namespace(self) -> str: ...

    @property
    def pending_timeout(self) -> timedelta: ...


C = TypeVar("C", bound=JobSettings)


class KubeBackend(Backend[C]):
    watches_pending = True  # an Unschedulable pod, after pending_timeout (see above)

    def __init__(
        self,
        ctx: EnvContext[C],
        kube: Kube | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(ctx)
        self.clock = clock
        self.config = ctx.config
        self.namespace = ctx.outputs.get("namespace") or self.config.namespace
        self.kube = kube if kube is not None else self.connect()
        self.selector = run_selector(ctx.run_id)
        self.secret_keys: set[str] = set()
        self.secret_name: str | None = None
        self.submitted: set[str] = set()
        self.final: dict[str, JobStatus] = {}
        self.cancelled: set[str] = set()
        self.waiting_since: dict[str, float] = {}
        self.unschedulable_since: dict[str, float] = {}
        self.progressing = False
        self.pods_checked = 0.0
        self.failed_pod: dict[str, str] = {}  # job -> the pod whose log tells why
        self.last: dict[str, JobStatus] = {}

    def connect(self) -> Kube:
        """A client for the environment's cluster (the kind knows how to reach it)."""
        raise NotImplementedError

    # -- submit ------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        ref = payload.get("secret")
        if ref:
            keys = set(ref["keys"])
            missing = sorted(keys - set(secrets))
            if missing:
                raise UserError(
                    f"environment variable(s) {', '.join(missing)} have no value",
                    "set them before `cfw run`",
                )
            if not keys <= self.secret_keys:
                self.secret_keys |= keys
                self.kube.put_secret(
                    ref["namespace"],
                    ref["name"],
                    {k: secrets[k] for k in sorted(self.secret_keys)},
                    secret_labels(self.ctx),
                )
                self.secret_name = ref["name"]
        manifest = bounded(payload["job"], ttl.expires_at(self.ctx.outputs), datetime.now(UTC))
        self.kube.create_job(manifest["metadata"]["namespace"], manifest)
        name = manifest["metadata"]["name"]
        self.submitted.add(name)
        return name

    # -- status ------------------------------------------------------------------------------
    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        open_ids = [i for i in external_ids if i not in self.final]
        if not open_ids:
            return {i: self.final[i] for i in external_ids}
        try:
            jobs = self._open_jobs(open_ids)
        except Unavailable:  # a passing fault: nothing changed as far as we know
            return {
                i: self.final.get(i) or self.last.get(i, JobStatus(JobState.PENDING))
                for i in external_ids
            }
        now = self.clock()
        phases: dict[str, JobState] = {}
        explain: list[str] = []
        for ext in open_ids:
            job = jobs.get(ext)
            if job is None:
                continue
            phases[ext] = job_phase(job)
            if phases[ext] == JobState.FAILED:
                explain.append(ext)
            elif phases[ext] == JobState.PENDING:
                since = self.waiting_since.setdefault(ext, now)
                if now - since >= PENDING_CHECK_S:
                    explain.append(ext)
            else:
                self.waiting_since.pop(ext, None)
        # the run progresses: a pod waiting for a node queues for one that will free up
        self.progressing = JobState.RUNNING in phases.values()
        pods: dict[str, list[dict[str, Any]]] = {}
        need_pods = any(phases[e] == JobState.FAILED for e in explain) or (
            explain and now - self.pods_checked >= PENDING_CHECK_S
        )
        if need_pods:
            self.pods_checked = now
            try:
                # the failed and waiting jobs' pods: not the (many) pods that succeeded
                for pod in self.kube.list_pods(self.namespace, self.selector, PODS_NOT_DONE):
                    pods.setdefault(job_of(pod) or "", []).append(pod)
            except Unavailable:
                need_pods = False
        result = {i: self.final[i] for i in external_ids if i in self.final}
        for ext in open_ids:
            result[ext] = self._settle(
                ext, jobs.get(ext), phases.get(ext), pods.get(ext, []), need_pods, now
            )
            self.last[ext] = result[ext]
        return result

    def _open_jobs(self, open_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The open jobs' Job objects, in requests that grow with the active jobs, not with
        all of the run's: the list leaves out the Jobs that succeeded (they stay in the
        cluster for ttlSecondsAfterFinished); an open job missing from it has succeeded
        since the last cycle (or is gone), and is read by name, or, when at least as many are
        missing as the run's whole list has pages, found in one list of the run."""
        listed = self.kube.list_jobs(self.namespace, self.selector, JOBS_NOT_SUCCEEDED)
        jobs = {j["metadata"]["name"]: j for j in listed}
        missing = [ext for ext in open_ids if ext not in jobs]
        if missing and len(missing) >= math.ceil(len(self.submitted) / kube_client.PAGE):
            wanted = set(missing)
            for job in self.kube.list_jobs(self.namespace, self.selector):
                if job["metadata"]["name"] in wanted:
                    jobs[job["metadata"]["name"]] = job
        else:
            for ext in missing:
                job = self.kube.read_job(self.namespace, ext)
                if job is not None:
                    jobs[ext] = job
        return jobs

    def _settle(
        self,
        ext: str,
        job: dict[str, Any] | None,
        phase: JobState | None,
        pods: list[dict[str, Any]],
        looked: bool,
        now: float,
    ) -> JobStatus:
        if job is None:
            if ext in self.cancelled:
                self.final[ext] = JobStatus(JobState.CANCELLED, reason="cancelled")
            else:
                self.final[ext] = JobStatus(
                    JobState.FAILED,
                    reason=(
                        "its Job no longer exists (deleted outside cfw, or removed by "
                        "ttlSecondsAfterFinished before cfw saw it end)"
                    ),
                )
            return self.final[ext]
        if phase == JobState.SUCCEEDED:
            self.final[ext] = JobStatus(JobState.SUCCEEDED, exit_code=0)
        elif phase == JobState.FAILED:
            self.final[ext] = job_failure(job, pods)
            self._remember_pod(ext, pods)
        elif phase == JobState.PENDING and looked:
            problem = next((p for p in map(waiting_problem, pods) if p), None)
            problem = problem or self._unschedulable(ext, pods, now)
            if problem:  # it would wait until its deadline, or forever: stop it now
                self.kube.delete_job(self.namespace, ext)
                self.final[ext] = JobStatus(JobState.FAILED, reason=problem)
                self._remember_pod(ext, pods)
        return self.final.get(ext) or JobStatus(phase or JobState.PENDING)

    def _unschedulable(self, ext: str, pods: list[dict[str, Any]], now: float) -> str | None:
        """The scheduler's message once the job's pod has been Unschedulable for too long."""
        message = next((m for m in map(unschedulable, pods) if m), None)
        if message is None or self.progressing:
            self.unschedulable_since.pop(ext, None)
            return None
        since = self.unschedulable_since.setdefault(ext, now)
        timeout = self.config.pending_timeout.total_seconds()
        if now - since < timeout:
            return None
        return (
            f"unschedulable for {timeout / 60:g} min with no job of the run running "
            f"(no node pool could scale up for it): {message}"
        )

    def _remember_pod(self, ext: str, pods: list[dict[str, Any]]) -> None:
        if pods:
            newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")
            self.failed_pod[ext] = newest["metadata"]["name"]

    # -- cancel, logs, close ---------------------------------------------------------------
    def cancel(self, external_ids: Sequence[str]) -> None:
        """Delete the Jobs and their pods (foreground); a Job already gone is success."""
        for ext in external_ids:
            self.cancelled.add(ext)
            self.kube.delete_job(self.namespace, ext)
            if ext not in self.final:
                self.final[ext] = JobStatus(JobState.CANCELLED, reason="cancelled")

    def logs(self, external_id: str) -> str:
        pod = self.failed_pod.get(external_id)
        if pod is None:
            selector = f"{JOB_NAME_LABELS[0]}={external_id}"
            pods = self.kube.list_pods(self.namespace, selector)
            if not pods:
                return f"no log: the pods of Job {external_id} are gone\n"
            newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")
            pod = newest["metadata"]["name"]
        try:
            return self.kube.pod_log(self.namespace, pod, LOG_LINES)
        except NoLog as exc:
            return f"{exc}\n"

    def close(self) -> None:
        """End of run: stop what still runs, and delete the run's Secret."""
        errors: list[str] = []
        running = sorted(self.submitted - set(self.final))
        try:
            if running:
                self.cancel(running)
        except CfwError as exc:
            errors.append(str(exc))
        if self.secret_name:
            try:
                self.kube.delete_secret(self.namespace, self.secret_name)
                self.secret_name = None
            except CfwError as exc:
                errors.append(str(exc))
        if errors:
            raise CfwError("; ".join(errors))
