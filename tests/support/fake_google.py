"""Fake Google Batch, Cloud Logging, Secret Manager and GKE (ClusterManager) services on a
local gRPC server.

No emulator of these services exists; this is the fake at the SDK boundary. The official
GAPIC clients (google-cloud-batch, -logging, -secret-manager) talk to it over real gRPC, so
their own request building, paging, retries and error mapping run unchanged. The fake
behaves like the services as documented: jobs go QUEUED -> SCHEDULED -> RUNNING ->
SUCCEEDED/FAILED with status events and task exit codes; a deleted job is
DELETION_IN_PROGRESS until the deletion settles, then NOT_FOUND; lists are paged with
opaque page tokens (a page size above the maximum is lowered); filters in the services'
syntax are parsed, and anything else is INVALID_ARGUMENT. Every RPC is counted.

GKE's control plane (google-cloud-container's ClusterManager) as its API documents it: a
change to a node pool (autoscaling, size) is a long-running Operation, RUNNING until it has
been polled `op_polls` times (GetOperation), then DONE with its effect applied; while one
runs on a cluster every other change of that cluster is FAILED_PRECONDITION (as GKE answers
"Operation ... is currently ... Please wait and try again once it is done."); an unknown
cluster, pool or operation is NOT_FOUND. A pool's node count is kept beside it (`sizes`):
the API itself reports none.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
from google.cloud import batch_v1, container_v1, secretmanager_v1
from google.cloud.logging_v2.types import ListLogEntriesRequest, ListLogEntriesResponse, LogEntry
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

PROJECT, NUMBER = "example-project", "123456789012"
MAX_PAGE = 100
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_JOB_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_SECRET_REF = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}/versions/[^/]+$")
_TERM = re.compile(  # one `field = value` (or `!=`) term of a filter; values quoted or bare
    r'^(labels\.[a-z][a-z0-9_-]*|status\.state|logName)\s*(!?=)\s*("([^"]*)"|[A-Za-z0-9_-]+)$'
)


class Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def parse_filter(text: str) -> list[tuple[str, str]]:
    """`a="x" AND b=y AND c!="z"` -> [(a, x), (b, y), (!c, z)] (AIP-160's comparisons `=`
    and `!=`, joined by AND); INVALID_ARGUMENT for anything else."""
    terms = []
    for part in (p.strip() for p in text.split(" AND ")) if text.strip() else []:
        match = _TERM.match(part)
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid filter term {part!r}")
        negate = "!" if match[2] == "!=" else ""
        terms.append((negate + match[1], match[4] if match[4] is not None else match[3]))
    return terms


def page(items: list, page_size: int, token: str) -> tuple[list, str]:
    try:
        start = int(base64.b64decode(token).decode()) if token else 0
    except ValueError as exc:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page token") from exc
    size = min(page_size or MAX_PAGE, MAX_PAGE)
    end = start + size
    return items[start:end], (
        base64.b64encode(str(end).encode()).decode() if end < len(items) else ""
    )


def _labels_ok(labels) -> None:
    if len(labels) > 64:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "more than 64 labels")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value) or key.startswith("goog"):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid label {key}={value!r}")


# -- Batch ---------------------------------------------------------------------------------
@dataclass
class FakeBatch:
    region: str = "us-central1"
    jobs: dict[str, batch_v1.Job] = field(default_factory=dict)  # job id -> job
    deleting: set[str] = field(default_factory=set)
    requests: list[batch_v1.CreateJobRequest] = field(default_factory=list)
    # creation sequence numbers: a ListJobs page token names the last job it returned by
    # its number, so the next page goes on from there (jobs come in creation order)
    seq: dict[str, int] = field(default_factory=dict)
    by_seq: dict[int, str] = field(default_factory=dict)

    def _id(self, name: str) -> str:
        match = re.match(rf"^projects/({PROJECT}|{NUMBER})/locations/([^/]+)/jobs/([^/]+)$", name)
        if not match or match[2] != self.region or match[3] not in self.jobs:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Job {name} not found")
        return match[3]

    def _parent(self, parent: str) -> None:
        if parent not in (
            f"projects/{PROJECT}/locations/{self.region}",
            f"projects/{NUMBER}/locations/{self.region}",
        ):
            raise Abort(grpc.StatusCode.PERMISSION_DENIED, f"no access to {parent}")

    def create_job(self, req: batch_v1.CreateJobRequest) -> batch_v1.Job:
        self._parent(req.parent)
        if not _JOB_ID.match(req.job_id):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid job_id {req.job_id!r}")
        if req.job_id in self.jobs:
            raise Abort(grpc.StatusCode.ALREADY_EXISTS, f"job {req.job_id} already exists")
        job = batch_v1.Job(req.job)
        if len(job.task_groups) != 1 or not job.task_groups[0].task_spec.runnables:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "exactly one task group with runnables")
        _labels_ok(job.labels)
        _labels_ok(job.allocation_policy.labels)
        for runnable in job.task_groups[0].task_spec.runnables:
            for ref in runnable.environment.secret_variables.values():
                if not _SECRET_REF.match(ref):
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad secret {ref}")
        job.name = f"projects/{NUMBER}/locations/{self.region}/jobs/{req.job_id}"
        job.uid = f"{req.job_id[:50]}-{uuid.uuid4().hex[:12]}"
        job.create_time = datetime.now(UTC)
        job.status = batch_v1.JobStatus(state="QUEUED")
        self.requests.append(req)
        self.jobs[req.job_id] = job
        number = len(self.by_seq)
        self.seq[req.job_id], self.by_seq[number] = number, req.job_id
        return job

    def advance(
        self, job_id: str, state: str, exit_code: int | None = None, description: str = ""
    ) -> None:
        """Test control: the job moves to ``state`` (with a task exit code when it ended)."""
        job = self.jobs[job_id]
        old = job.status.state.name
        event = batch_v1.StatusEvent(
            type_="STATUS_CHANGED",
            event_time=datetime.now(UTC),
            description=description
            or f"Job state is set from {old} to {state} for job {job.name}."
            + (f" Task exited with code {exit_code}." if exit_code else ""),
        )
        if exit_code is not None:
            event.task_execution = batch_v1.TaskExecution(exit_code=exit_code)
        job.status.status_events.append(event)
        job.status.state = state

    def preempt(self, job_id: str, exit_code: int = 50001) -> None:
        """Test control: the task's VM is lost (50001: its Spot VM was preempted). As Batch
        does, a task whose lifecycle policy retries on that code and that has retries left
        (maxRetryCount) is run again on a new VM, the failed try kept as a task event;
        otherwise the job fails with the code."""
        job = self.jobs[job_id]
        task = job.task_groups[0].task_spec
        retries_on_code = any(
            p.action == batch_v1.LifecyclePolicy.Action.RETRY_TASK
            and exit_code in p.action_condition.exit_codes
            for p in task.lifecycle_policies
        )
        tried = sum(
            1
            for e in job.status.status_events
            if e.type_ == "TASK_STATE_CHANGED" and e.task_execution.exit_code
        )
        if retries_on_code and tried < task.max_retry_count:
            job.status.status_events.append(
                batch_v1.StatusEvent(
                    type_="TASK_STATE_CHANGED",
                    event_time=datetime.now(UTC),
                    description=f"Task state is updated from RUNNING to FAILED with exit code "
                    f"{exit_code}; the task is retried (attempt {tried + 1} of "
                    f"{task.max_retry_count}).",
                    task_execution=batch_v1.TaskExecution(exit_code=exit_code),
                    task_state=batch_v1.TaskStatus.State.FAILED,
                )
            )
            job.status.state = "SCHEDULED"  # waiting for a new VM
            return
        self.advance(job_id, "FAILED", exit_code=exit_code)

    def settle(self) -> None:
        """Test control: pending deletions finish; those jobs are gone (NOT_FOUND)."""
        for job_id in self.deleting:
            self.jobs.pop(job_id, None)
        self.deleting.clear()

    def get_job(self, req: batch_v1.GetJobRequest) -> batch_v1.Job:
        return self.jobs[self._id(req.name)]

    def list_jobs(self, req: batch_v1.ListJobsRequest) -> batch_v1.ListJobsResponse:
        """Jobs in creation order, filtered, a page at a time. Like a service reading an
        index, a page reads on from where the last one stopped and only as far as it has
        to: each job is filtered once over all the pages of a list, not once a page."""
        self._parent(req.parent)
        terms = parse_filter(req.filter)
        ids = list(self.jobs)
        size = min(req.page_size or MAX_PAGE, MAX_PAGE)
        items: list[batch_v1.Job] = []
        for index in range(self._resume(ids, req.page_token), len(ids)):
            job = self.jobs[ids[index]]
            if not all(_job_matches(job, k, v) for k, v in terms):
                continue
            if len(items) == size:  # one more matches: there is a next page
                last = self.seq.get(short_id(items[-1].name), -1)
                token = base64.b64encode(str(last).encode()).decode()
                return batch_v1.ListJobsResponse(jobs=items, next_page_token=token)
            items.append(job)
        return batch_v1.ListJobsResponse(jobs=items)

    def _resume(self, ids: list[str], token: str) -> int:
        """Where the page after TOKEN starts in ``ids`` (the jobs now, creation order)."""
        if not token:
            return 0
        try:
            after = int(base64.b64decode(token).decode())
        except ValueError as exc:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page token") from exc
        last = self.by_seq.get(after)
        if last is not None and last in self.jobs and self.seq.get(last) == after:
            return ids.index(last) + 1
        # that job is gone (deleted since): the first one created after it
        return next((i for i, j in enumerate(ids) if self.seq.get(j, -1) > after), len(ids))

    def delete_job(self, req: batch_v1.DeleteJobRequest) -> operations_pb2.Operation:
        job_id = self._id(req.name)
        self.jobs[job_id].status.state = "DELETION_IN_PROGRESS"
        self.deleting.add(job_id)
        return operations_pb2.Operation(
            name=f"projects/{NUMBER}/locations/{self.region}/operations/{uuid.uuid4().hex}"
        )


def short_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _job_matches(job: batch_v1.Job, key: str, value: str) -> bool:
    if key.startswith("!"):
        return not _job_matches(job, key[1:], value)
    if key == "status.state":
        return job.status.state.name == value
    if key.startswith("labels."):
        return job.labels.get(key.removeprefix("labels.")) == value
    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot filter jobs by {key}")


# -- Cloud Logging -------------------------------------------------------------------------
@dataclass
class FakeLogging:
    entries: list[LogEntry] = field(default_factory=list)

    def write(self, job: batch_v1.Job, lines: list[str], log: str = "batch_task_logs") -> None:
        """Test control: what Batch's agent would write for the job's task."""
        start = datetime.now(UTC) - timedelta(minutes=5)
        for i, line in enumerate(lines):
            self.entries.append(
                LogEntry(
                    log_name=f"projects/{PROJECT}/logs/{log}",
                    text_payload=line,
                    timestamp=start + timedelta(milliseconds=i),
                    labels={"job_uid": job.uid, "task_id": "task/0"},
                )
            )

    def list_log_entries(self, req: ListLogEntriesRequest) -> ListLogEntriesResponse:
        if list(req.resource_names) != [f"projects/{PROJECT}"]:
            raise Abort(grpc.StatusCode.PERMISSION_DENIED, "resource_names")
        terms = parse_filter(req.filter)
        found = [
            e
            for e in self.entries
            if all(
                e.log_name == v if k == "logName" else e.labels.get(k.removeprefix("labels.")) == v
                for k, v in terms
            )
        ]
        if req.order_by not in ("", "timestamp asc", "timestamp desc"):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"order_by {req.order_by}")
        found.sort(key=lambda e: e.timestamp, reverse=req.order_by == "timestamp desc")
        items, token = page(found, req.page_size, req.page_token)
        return ListLogEntriesResponse(entries=items, next_page_token=token)


# -- Secret Manager ------------------------------------------------------------------------
@dataclass
class FakeSecrets:
    secrets: dict[str, secretmanager_v1.Secret] = field(default_factory=dict)
    values: dict[str, list[bytes]] = field(default_factory=dict)

    def create_secret(self, req: secretmanager_v1.CreateSecretRequest) -> secretmanager_v1.Secret:
        if req.parent not in (f"projects/{PROJECT}", f"projects/{NUMBER}"):
            raise Abort(grpc.StatusCode.PERMISSION_DENIED, req.parent)
        if not re.match(r"^[A-Za-z0-9_-]{1,255}$", req.secret_id):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"secret_id {req.secret_id!r}")
        name = f"projects/{NUMBER}/secrets/{req.secret_id}"
        if name in self.secrets:
            raise Abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
        _labels_ok(req.secret.labels)
        secret = secretmanager_v1.Secret(req.secret)
        secret.name = name
        self.secrets[name], self.values[name] = secret, []
        return secret

    def _name(self, name: str) -> str:
        name = name.replace(f"projects/{PROJECT}/", f"projects/{NUMBER}/")
        if name not in self.secrets:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found.")
        return name

    def add_secret_version(self, req: secretmanager_v1.AddSecretVersionRequest):
        name = self._name(req.parent)
        self.values[name].append(req.payload.data)
        return secretmanager_v1.SecretVersion(
            name=f"{name}/versions/{len(self.values[name])}", state="ENABLED"
        )

    def delete_secret(self, req: secretmanager_v1.DeleteSecretRequest) -> empty_pb2.Empty:
        name = self._name(req.name)
        del self.secrets[name], self.values[name]
        return empty_pb2.Empty()

    def list_secrets(self, req: secretmanager_v1.ListSecretsRequest):
        terms = [
            (k.removeprefix("labels."), v) for k, v in parse_filter(req.filter.replace(":", "="))
        ]
        found = [s for s in self.secrets.values() if all(s.labels.get(k) == v for k, v in terms)]
        items, token = page(found, req.page_size, req.page_token)
        return secretmanager_v1.ListSecretsResponse(secrets=items, next_page_token=token)


# -- GKE's control plane ---------------------------------------------------------------------
@dataclass
class FakeContainer:
    clusters: dict[str, container_v1.Cluster] = field(default_factory=dict)  # full name ->
    sizes: dict[str, int] = field(default_factory=dict)  # full pool name -> its nodes now
    operations: dict[str, container_v1.Operation] = field(default_factory=dict)
    effects: dict[str, tuple[str, object]] = field(default_factory=dict)  # op -> what it does
    polls: Counter[str] = field(default_factory=Counter)
    op_polls: int = 1  # GetOperation calls that still find an operation RUNNING

    def add_cluster(
        self, project: str, location: str, name: str, pools: dict[str, int], endpoint: str = ""
    ) -> str:
        """Test control: a cluster with node pools (pool -> nodes), each autoscaled from 0
        (`system` from 1) to 10, as modules/gke-cluster makes them."""
        full = f"projects/{project}/locations/{location}/clusters/{name}"
        cluster = container_v1.Cluster(
            name=name,
            location=location,
            endpoint=endpoint or "34.90.1.2",
            self_link=f"https://container.googleapis.com/v1/{full}",
            status=container_v1.Cluster.Status.RUNNING,
            master_auth=container_v1.MasterAuth(cluster_ca_certificate=""),
        )
        for pool, nodes in pools.items():
            cluster.node_pools.append(
                container_v1.NodePool(
                    name=pool,
                    status=container_v1.NodePool.Status.RUNNING,
                    autoscaling=container_v1.NodePoolAutoscaling(
                        enabled=True,
                        total_min_node_count=1 if pool == "system" else 0,
                        total_max_node_count=10,
                    ),
                )
            )
            self.sizes[f"{full}/nodePools/{pool}"] = nodes
        self.clusters[full] = cluster
        return full

    def _cluster(self, name: str) -> container_v1.Cluster:
        if name not in self.clusters:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Not found: {name}.")
        return self.clusters[name]

    def _pool(self, name: str) -> container_v1.NodePool:
        cluster_name, _, pool = name.partition("/nodePools/")
        found = [p for p in self._cluster(cluster_name).node_pools if p.name == pool]
        if not found:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Not found: {name}.")
        return found[0]

    def get_cluster(self, req: container_v1.GetClusterRequest) -> container_v1.Cluster:
        return self._cluster(req.name)

    def list_node_pools(self, req: container_v1.ListNodePoolsRequest):
        return container_v1.ListNodePoolsResponse(node_pools=self._cluster(req.parent).node_pools)

    def _start(self, pool_name: str, kind: str, effect: object) -> container_v1.Operation:
        self._pool(pool_name)
        cluster_name = pool_name.partition("/nodePools/")[0]
        for name, op in self.operations.items():
            if op.status == container_v1.Operation.Status.RUNNING and op.target_link.startswith(
                f"https://container.googleapis.com/v1/{cluster_name}"
            ):
                raise Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Operation {name.rsplit('/', 1)[-1]} is currently {op.operation_type.name} "
                    f"on cluster {cluster_name.rsplit('/', 1)[-1]}. Please wait and try again "
                    "once it is done.",
                )
        location = cluster_name.split("/")[3]
        op_id = f"operation-{uuid.uuid4().hex[:12]}"
        full = f"{cluster_name.split('/clusters/')[0]}/operations/{op_id}"
        op = container_v1.Operation(
            name=op_id,
            location=location,
            operation_type=kind,
            status=container_v1.Operation.Status.RUNNING,
            self_link=f"https://container.googleapis.com/v1/{full}",
            target_link=f"https://container.googleapis.com/v1/{pool_name}",
            start_time=datetime.now(UTC).isoformat(),
        )
        self.operations[full], self.effects[full] = op, (pool_name, effect)
        return op

    def set_node_pool_autoscaling(self, req: container_v1.SetNodePoolAutoscalingRequest):
        return self._start(req.name, "UPDATE_CLUSTER", req.autoscaling)

    def set_node_pool_size(self, req: container_v1.SetNodePoolSizeRequest):
        if req.node_count < 0:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "node_count must be >= 0")
        return self._start(req.name, "SET_NODE_POOL_SIZE", req.node_count)

    def get_operation(self, req: container_v1.GetOperationRequest) -> container_v1.Operation:
        if req.name not in self.operations:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Not found: {req.name}.")
        op = self.operations[req.name]
        self.polls[req.name] += 1
        if op.status == container_v1.Operation.Status.RUNNING and self.polls[req.name] > (
            self.op_polls
        ):
            self.finish(req.name)
        return op

    def finish(self, name: str) -> None:
        """Test control (and GetOperation's, after op_polls): the operation is DONE."""
        op = self.operations[name]
        pool_name, effect = self.effects[name]
        if isinstance(effect, container_v1.NodePoolAutoscaling):
            self._pool(pool_name).autoscaling = effect
        else:
            self.sizes[pool_name] = int(effect)
        op.status = container_v1.Operation.Status.DONE
        op.end_time = datetime.now(UTC).isoformat()

    def running(self) -> list[str]:
        return [n for n, op in self.operations.items() if op.status.name == "RUNNING"]


# -- the server ----------------------------------------------------------------------------
class FakeGoogle:
    """The three services on one local gRPC server, and SDK clients bound to it."""

    def __init__(self) -> None:
        self.batch, self.logging, self.secrets = FakeBatch(), FakeLogging(), FakeSecrets()
        self.container = FakeContainer()
        self.rpcs: Counter[str] = Counter()
        self.fail: dict[str, tuple[grpc.StatusCode, str]] = {}  # method -> the error it answers
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._add(
            "google.cloud.batch.v1.BatchService",
            {
                "CreateJob": (self.batch.create_job, batch_v1.CreateJobRequest, batch_v1.Job),
                "GetJob": (self.batch.get_job, batch_v1.GetJobRequest, batch_v1.Job),
                "ListJobs": (
                    self.batch.list_jobs,
                    batch_v1.ListJobsRequest,
                    batch_v1.ListJobsResponse,
                ),
                "DeleteJob": (
                    self.batch.delete_job,
                    batch_v1.DeleteJobRequest,
                    operations_pb2.Operation,
                ),
            },
        )
        self._add(
            "google.logging.v2.LoggingServiceV2",
            {
                "ListLogEntries": (
                    self.logging.list_log_entries,
                    ListLogEntriesRequest,
                    ListLogEntriesResponse,
                ),
            },
        )
        sm = secretmanager_v1
        self._add(
            "google.cloud.secretmanager.v1.SecretManagerService",
            {
                "CreateSecret": (self.secrets.create_secret, sm.CreateSecretRequest, sm.Secret),
                "AddSecretVersion": (
                    self.secrets.add_secret_version,
                    sm.AddSecretVersionRequest,
                    sm.SecretVersion,
                ),
                "DeleteSecret": (
                    self.secrets.delete_secret,
                    sm.DeleteSecretRequest,
                    empty_pb2.Empty,
                ),
                "ListSecrets": (
                    self.secrets.list_secrets,
                    sm.ListSecretsRequest,
                    sm.ListSecretsResponse,
                ),
            },
        )
        c = container_v1
        self._add(
            "google.container.v1.ClusterManager",
            {
                "GetCluster": (self.container.get_cluster, c.GetClusterRequest, c.Cluster),
                "ListNodePools": (
                    self.container.list_node_pools,
                    c.ListNodePoolsRequest,
                    c.ListNodePoolsResponse,
                ),
                "SetNodePoolAutoscaling": (
                    self.container.set_node_pool_autoscaling,
                    c.SetNodePoolAutoscalingRequest,
                    c.Operation,
                ),
                "SetNodePoolSize": (
                    self.container.set_node_pool_size,
                    c.SetNodePoolSizeRequest,
                    c.Operation,
                ),
                "GetOperation": (self.container.get_operation, c.GetOperationRequest, c.Operation),
            },
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _add(self, service: str, methods: dict) -> None:
        handlers = {}
        for method, (fn, request_type, response_type) in methods.items():
            handlers[method] = grpc.unary_unary_rpc_method_handler(
                self._wrap(method, fn),
                request_deserializer=request_type.deserialize,
                response_serializer=getattr(response_type, "serialize", None)
                or (lambda msg: msg.SerializeToString()),
            )
        generic = grpc.method_handlers_generic_handler(service, handlers)
        self.server.add_generic_rpc_handlers((generic,))

    def _wrap(self, method: str, fn):
        def handle(request, context):
            with self._lock:
                self.rpcs[method] += 1
                try:
                    if method in self.fail:
                        raise Abort(*self.fail[method])
                    return fn(request)
                except Abort as exc:
                    context.abort(exc.code, exc.message)

        return handle

    def clients(self, project: str = PROJECT, region: str = "us-central1"):
        """cfw's Clients with the official SDK clients bound to this server."""
        from google.cloud.batch_v1.services.batch_service.transports import (
            BatchServiceGrpcTransport,
        )
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
        from google.cloud.logging_v2.services.logging_service_v2.transports import (
            LoggingServiceV2GrpcTransport,
        )
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        from cfw.backends.google_batch.client import Clients

        def channel():
            return grpc.insecure_channel(f"127.0.0.1:{self.port}")

        return Clients(
            project,
            region,
            batch=batch_v1.BatchServiceClient(
                transport=BatchServiceGrpcTransport(channel=channel())
            ),
            logging=LoggingServiceV2Client(
                transport=LoggingServiceV2GrpcTransport(channel=channel())
            ),
            secrets=secretmanager_v1.SecretManagerServiceClient(
                transport=SecretManagerServiceGrpcTransport(channel=channel())
            ),
        )

    def cluster_manager(self):
        """google-cloud-container's client, bound to this server."""
        from google.cloud.container_v1.services.cluster_manager.transports import (
            ClusterManagerGrpcTransport,
        )

        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        return container_v1.ClusterManagerClient(
            transport=ClusterManagerGrpcTransport(channel=channel)
        )

    def stop(self) -> None:
        self.server.stop(grace=None)
