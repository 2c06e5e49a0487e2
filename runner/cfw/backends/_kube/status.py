"""Kubernetes Job and Pod status -> JobStatus with the reason a user can act on. Pure.

Works on the API's own JSON (camelCase), exactly as `kubectl get -o json` shows it, on any
cluster: what is GKE's (or EKS's, AKS's) is only how a spot node is recognised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cfw.backends._kube.manifest import SPOT_ANNOTATION, SPOT_NODE_LABELS, TTL_ANNOTATION
from cfw.backends.base import JobState, JobStatus

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
# waiting reasons that will not go away by waiting
FATAL_WAITING = {
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}
IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_SHUTDOWN = {"Terminated", "NodeShutdown", "Shutdown"}
_DISRUPTIONS = {
    "TerminationByKubelet": "its node shut down",
    "DeletionByPodGC": "its node disappeared",
    "DeletionByGCPControllerManager": "its node disappeared",
    "DeletionByTaintManager": "its node became unreachable",
    "EvictionByEvictionAPI": "evicted (node drained or scaled down)",
    "PreemptionByScheduler": "preempted by a higher-priority pod",
    "PreemptionByKubeScheduler": "preempted by a higher-priority pod",
}

# the disruptions that mean the pod's node went away (not an eviction, not a preemption by
# a higher-priority pod)
_NODE_LOST = {
    "TerminationByKubelet",
    "DeletionByPodGC",
    "DeletionByGCPControllerManager",
    "DeletionByTaintManager",
}


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        c.get("type"): c
        for c in (obj.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
    }


def job_of(pod: Mapping[str, Any]) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return next((labels[k] for k in JOB_NAME_LABELS if k in labels), None)


def job_phase(job: Mapping[str, Any]) -> JobState:
    """The Job's state from its own status (pods are looked at only to explain)."""
    conditions = _conditions(job)
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return JobState.SUCCEEDED
    if "Failed" in conditions or "FailureTarget" in conditions:
        return JobState.FAILED
    status = job.get("status") or {}
    if (status.get("ready") or 0) > 0 or (status.get("active") and "ready" not in status):
        return JobState.RUNNING
    return JobState.PENDING


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == "job"), statuses[0] if statuses else {})


def _memory_limit(pod: Mapping[str, Any]) -> str | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        if limit:
            return str(limit)
    return None


def _on_spot(pod: Mapping[str, Any]) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if annotations.get(SPOT_ANNOTATION) == "true":
        return True
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    return any(selector.get(key) == value for key, value in SPOT_NODE_LABELS.items())


def waiting_problem(pod: Mapping[str, Any]) -> str | None:
    """Why a pending pod will never start (image pull error, bad config), or None."""
    waiting = (_container(pod).get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    if reason not in FATAL_WAITING:
        return None
    kind = "image pull error" if reason in IMAGE_REASONS else "container could not be created"
    message = (waiting.get("message") or "").strip()
    return f"{kind} ({reason})" + (f": {message}" if message else "")


def unschedulable(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's message while it cannot place the pod (PodScheduled False,
    Unschedulable: "0/3 nodes are available: 3 Insufficient memory..."), or None."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return (condition.get("message") or "").strip() or "no node can hold it"
    return None


def pod_failure(pod: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """Why a failed pod failed, and the job container's exit code if it has one."""
    status = pod.get("status") or {}
    message = (status.get("message") or "").strip()
    reason = status.get("reason")
    disruption = _conditions(pod).get("DisruptionTarget")
    terminated = (_container(pod).get("state") or {}).get("terminated") or {}
    code = terminated.get("exitCode")
    if reason == "Evicted":
        return f"evicted: {message or 'the node ran short of resources'}", code
    if reason in _SHUTDOWN or (disruption and disruption.get("reason") in _DISRUPTIONS):
        why = _DISRUPTIONS.get((disruption or {}).get("reason"), "its node shut down")
        if _on_spot(pod):
            why = f"Spot VM preempted ({why})"
        detail = message or (disruption or {}).get("message") or ""
        return (f"{why}: {detail}" if detail else why), code
    if terminated.get("reason") == "OOMKilled":
        limit = _memory_limit(pod)
        where = f" of {limit}" if limit else ""
        return (
            f"OOMKilled: the job used more than its memory limit{where}; raise the rule's mem_mb"
        ), code
    problem = waiting_problem(pod)
    if problem:
        return problem, code
    if terminated:
        text = terminated.get("message") or ""
        if terminated.get("reason") not in (None, "Error", "Completed"):
            text = f"{terminated['reason']}" + (f": {text}" if text else "")
        return (f"exit code {code}" + (f" ({text.strip()})" if text.strip() else "")), code
    if message or reason:
        return f"{reason or 'failed'}: {message}".rstrip(": "), code
    return None, code


def spot_lost(pod: Mapping[str, Any]) -> bool:
    """A pod on spot capacity that its node took down with it (DisruptionTarget: the node
    shut down, was deleted or became unreachable; a kubelet shutdown): a preemption."""
    if not _on_spot(pod):
        return False
    status = pod.get("status") or {}
    disruption = _conditions(pod).get("DisruptionTarget")
    return status.get("reason") in _SHUTDOWN or (
        disruption is not None and disruption.get("reason") in _NODE_LOST
    )


def job_failure(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> JobStatus:
    """A failed Job's status: the pod's reason where a pod tells it, else the Job's."""
    condition = _conditions(job).get("Failed") or _conditions(job).get("FailureTarget") or {}
    job_reason = condition.get("reason")
    if job_reason == "DeadlineExceeded":
        expires = ((job.get("metadata") or {}).get("annotations") or {}).get(TTL_ANNOTATION)
        if expires:
            return JobStatus(
                JobState.FAILED,
                reason=f"stopped at the environment's ttl (cfw-expires-at {expires}); "
                "`cfw up` with a longer ttl extends it",
            )
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        limit = f" of {deadline // 60} min" if isinstance(deadline, int) else ""
        return JobStatus(
            JobState.FAILED,
            reason=f"deadline exceeded: ran longer than its "
            f"runtime{limit} (activeDeadlineSeconds); raise the rule's runtime",
        )
    for pod in sorted(pods, key=lambda p: (p.get("status") or {}).get("phase") != "Failed"):
        reason, code = pod_failure(pod)
        if reason:
            # a spot node reclaimed: resubmitted by cfw (executor/retry.py), not failed
            state = JobState.PREEMPTED if spot_lost(pod) else JobState.FAILED
            return JobStatus(state, reason=reason, exit_code=code)
    text = condition.get("message") or "the job failed"
    return JobStatus(JobState.FAILED, reason=f"{job_reason or 'Failed'}: {text}; its pod is gone")


def count_by_state(jobs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many of ``jobs`` are pending, running, succeeded or failed (for `cfw status`)."""
    counts: dict[str, int] = {}
    for job in jobs:
        state = job_phase(job).value
        counts[state] = counts.get(state, 0) + 1
    return counts
