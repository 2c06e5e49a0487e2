"""A stand-in for the Azure Batch service (and the few Resource Manager calls cfw makes),
served over HTTPS on 127.0.0.1 so that the real azure-batch / azure-mgmt-batch clients talk
to it exactly as they talk to Azure: real requests, status codes, error bodies, paging.

No emulator of Azure Batch exists, so this fake follows the REST reference where cfw
depends on it: SharedKey or Entra ID bearer tokens for the Batch audience (anything else
is a 401); jobs bound to existing pools; tasks that go active -> running -> completed
when the test says so; `get task`; `list tasks` with `$filter` (state eq/ne, stateTransitionTime
ge/gt, joined by `and`; anything else is a 400 like the service's), `$select`,
`maxresults` and `odata.nextLink` paging; `terminate` (409 on a completed task); job
delete (`deleting`, then 404); task files that vanish with their node; output-file upload
to blob storage on completion (through the task's SAS URL, as the node agent does).
Every request is counted by (method, route).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import re
import ssl
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from azure.batch import models as bm

from support.managed_identity import claims_of
from support.tls import self_signed

API_PREFIX = "/jobs"
BATCH_AUDIENCES = ("https://batch.core.windows.net/", "https://batch.core.windows.net")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (clients trust it via REQUESTS_CA_BUNDLE)."""
    return self_signed(directory, "fake-batch")


def now_iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Task:
    body: dict[str, Any]
    state: str = "active"
    transition: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    exit_code: int | None = None
    result: str | None = None
    failure: dict[str, str] | None = None
    node: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    requeues: int = 0
    created: dt.datetime | None = None


@dataclass
class Job:
    body: dict[str, Any]
    state: str = "active"
    tasks: dict[str, Task] = field(default_factory=dict)
    created: dt.datetime | None = None


class FakeBatch:
    """The service's state plus the test's controls (start, finish, remove a node)."""

    def __init__(
        self,
        pools: dict[str, int],
        page_size: int = 2,
        blob_put=None,
        node_agent: NodeAgent | None = None,
    ):
        self.pools = dict(pools)  # pool id -> task slots per node
        self.page_size = page_size
        self.jobs: dict[str, Job] = {}
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.auth: collections.Counter[str] = collections.Counter()  # data-plane calls by scheme
        self.requests: list[tuple[str, str, str]] = []  # method, path with query, body
        self.arm: dict[str, Any] = {}  # ARM path -> JSON body
        self.lock = threading.RLock()
        self.blob_put = blob_put or _http_put
        self.upload_errors: list[str] = []
        self._clock = dt.datetime.now(dt.UTC)
        self.node_agent = node_agent

    # -- the test's controls ---------------------------------------------------------------
    def tick(self) -> dt.datetime:
        self._clock += dt.timedelta(seconds=1)
        return self._clock

    def wait(self, minutes: float) -> None:
        """Time passes on the service's clock."""
        self._clock += dt.timedelta(minutes=minutes)

    def task(self, job_id: str, task_id: str) -> Task:
        return self.jobs[job_id].tasks[task_id]

    def start(self, job_id: str, task_id: str, node: str = "tvm-1") -> None:
        with self.lock:
            task = self.task(job_id, task_id)
            task.state, task.node, task.transition = "running", node, self.tick()

    def finish(
        self,
        job_id: str,
        task_id: str,
        exit_code: int = 0,
        stdout: str = "",
        stderr: str = "",
        failure: dict[str, str] | None = None,
    ) -> None:
        with self.lock:
            task = self.task(job_id, task_id)
            task.files = {"stdout.txt": stdout, "stderr.txt": stderr}
            self._complete(task, exit_code, failure)

    def remove_node(self, node: str) -> None:
        """Autoscale took the node away: its task files are gone."""
        with self.lock:
            for job in self.jobs.values():
                for task in job.tasks.values():
                    if task.node == node:
                        task.files = {}
                        task.node = None

    def preempt_node(self, node: str) -> None:
        """The low-priority node is preempted. As Batch does, each task running on it is
        requeued (active again, requeueCount + 1, its files gone with the node) and runs
        again when a node is free; retryCount is not touched."""
        with self.lock:
            for job in self.jobs.values():
                for task in job.tasks.values():
                    if task.node == node and task.state == "running":
                        task.state, task.node, task.files = "active", None, {}
                        task.requeues += 1
                        task.transition = self.tick()

    def count(self, method: str, route: str) -> int:
        return self.calls[(method, route)]

    def _complete(self, task: Task, exit_code: int, failure: dict[str, str] | None) -> None:
        task.state, task.transition, task.exit_code = "completed", self.tick(), exit_code
        failed = exit_code != 0 or failure is not None
        task.result = "failure" if failed else "success"
        if failure is None and exit_code != 0:
            failure = {
                "category": "usererror",
                "code": "FailureExitCode",
                "message": "The task exited with an exit code representing a failure",
            }
        task.failure = failure
        self._upload_outputs(task)

    def _upload_outputs(self, task: Task) -> None:
        """What the node agent does at task completion: upload matching files via SAS."""
        for out in task.body.get("outputFiles") or []:
            if out["filePattern"] != "../std*.txt":
                continue
            dest = out["destination"]["container"]
            if "identityReference" in dest:
                continue  # a managed identity does not exist here
            base, _, sas = dest["containerUrl"].partition("?")
            for name, text in task.files.items():
                url = f"{base}/{quote(dest['path'])}/{name}?{sas}"
                try:
                    self.blob_put(url, text.encode())
                except Exception as exc:  # the service records upload failures on the task
                    self.upload_errors.append(f"{name}: {exc}")

    # -- the REST API --------------------------------------------------------------------------
    def handle(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        parsed = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        path = parsed.path
        self.requests.append((method, url, body.decode(errors="replace")))
        if path.startswith("/subscriptions/"):
            return self._arm(method, path, query, headers)
        scheme = self._authenticate(headers.get("authorization", ""))
        self.auth[scheme] += 1
        with self.lock:
            return self._route(method, path, query, body)

    def _authenticate(self, authorization: str) -> str:
        """SharedKey (the account key), or an Entra ID bearer token issued for the Batch
        resource (its `aud`), as the service takes them; anything else is a 401."""
        scheme, _, credential = authorization.partition(" ")
        if scheme == "SharedKey" and credential:
            return scheme
        if scheme == "Bearer" and credential:
            try:
                audience = claims_of(credential).get("aud")
            except (ValueError, IndexError):  # not a JWT
                audience = None
            if audience in BATCH_AUDIENCES:
                return scheme
            raise ServiceError(401, "InvalidAuthenticationTokenAudience", "wrong audience")
        raise ServiceError(
            401, "AuthenticationFailed", "Server failed to authenticate the request."
        )

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes):
        parts = [p for p in path.split("/") if p]
        if parts == ["jobs"] and method == "POST":
            return self._add_job(json.loads(body))
        if parts == ["jobs"] and method == "GET":
            return self._list_jobs(query)
        if len(parts) >= 2 and parts[0] == "jobs":
            job = self.jobs.get(parts[1])
            route = "/jobs/{job}" + "".join(
                "/" + (p if i % 2 == 0 else "{" + ("task" if i == 1 else "file") + "}")
                for i, p in enumerate(parts[2:])
            )
            self.calls[(method, route)] += 1
            if job is None or (job.state == "deleting" and method != "GET"):
                raise ServiceError(404, "JobNotFound", "The specified job does not exist.")
            if len(parts) == 2:
                return self._job(method, parts[1], job)
            if parts[2] == "tasks" and len(parts) == 3:
                if method == "POST":
                    return self._add_task(job, json.loads(body))
                if method == "GET":
                    return self._list_tasks(parts[1], job, query)
            if parts[2] == "tasks" and len(parts) >= 4:
                task = job.tasks.get(parts[3])
                if task is None:
                    raise ServiceError(404, "TaskNotFound", "The specified task does not exist.")
                if len(parts) == 4 and method == "GET":  # get task
                    select = [s for s in query.get("$select", "").split(",") if s]
                    return 200, _select(_task_json(parts[3], task), select), {}
                if len(parts) == 5 and parts[4] == "terminate" and method == "POST":
                    if task.state == "completed":
                        raise ServiceError(
                            409, "TaskCompleted", "The specified task is already completed."
                        )
                    self._complete(
                        task,
                        -1,
                        {
                            "category": "usererror",
                            "code": "TaskEnded",
                            "message": "Task Was Ended by User Request",
                        },
                    )
                    return 204, None, {}
                if len(parts) == 6 and parts[4] == "files" and method == "GET":
                    if parts[5] not in task.files:
                        code = "NodeNotFound" if task.node is None else "FileNotFound"
                        raise ServiceError(404, code, "The specified file does not exist.")
                    data = task.files[parts[5]].encode()
                    return 200, data, {"content-type": "application/octet-stream"}
        raise ServiceError(400, "InvalidUri", f"{method} {path} is not a Batch API this fake knows")

    def _add_job(self, body: dict[str, Any]):
        self.calls[("POST", "/jobs")] += 1
        job = bm.BatchJobCreateOptions(body)  # the SDK's own model must read it back
        pool = body.get("poolInfo", {}).get("poolId")
        if pool not in self.pools:
            raise ServiceError(409, "PoolNotFound", f"The specified pool {pool} does not exist.")
        if job.id in self.jobs:
            raise ServiceError(409, "JobExists", "The specified job already exists.")
        self.jobs[job.id] = Job(body=body, created=self.tick())
        return 201, None, {}

    def _list_jobs(self, query: dict[str, str]):
        """List jobs: `$filter` on state only (metadata cannot be filtered on, as in the
        service), one page (this fake's jobs are few)."""
        self.calls[("GET", "/jobs")] += 1
        matches = _parse_filter(query.get("$filter", ""))
        value = []
        for job_id, job in sorted(self.jobs.items()):
            if job.state == "deleting" or not all(m(job) for m in matches):
                continue
            value.append(
                {
                    "id": job_id,
                    "state": job.state,
                    "poolInfo": job.body["poolInfo"],
                    "metadata": job.body.get("metadata") or [],
                    "creationTime": now_iso(job.created or self._clock),
                }
            )
        return 200, {"value": value}, {}

    def _job(self, method: str, job_id: str, job: Job):
        if method == "GET":
            if job.state == "deleting":  # a delete finishes after the first look
                del self.jobs[job_id]
                return 200, {"id": job_id, "state": "deleting"}, {}
            return 200, {"id": job_id, "state": job.state, "poolInfo": job.body["poolInfo"]}, {}
        if method == "DELETE":
            job.state = "deleting"
            return 202, None, {}
        raise ServiceError(400, "InvalidUri", "unsupported")

    def _add_task(self, job: Job, body: dict[str, Any]):
        task = bm.BatchTaskCreateOptions(body)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", task.id or ""):
            raise ServiceError(400, "InvalidPropertyValue", "The task id is invalid.")
        if task.id in job.tasks:
            raise ServiceError(409, "TaskExists", "The specified task already exists.")
        slots = self.pools[job.body["poolInfo"]["poolId"]]
        if (task.required_slots or 1) > slots:
            raise ServiceError(
                400,
                "InvalidPropertyValue",
                "requiredSlots is larger than the pool's taskSlotsPerNode.",
            )
        stamp = self.tick()
        job.tasks[task.id] = Task(body=body, transition=stamp, created=stamp)
        if self.node_agent is not None:
            self.node_agent.schedule(self, job.body["id"], task.id)
        return 201, None, {}

    def _list_tasks(self, job_id: str, job: Job, query: dict[str, str]):
        """Tasks in the order they were added, filtered, a page at a time: the skip token
        names the last task of the page before, and a page reads on from it only as far as
        it has to (each task is filtered once over all the pages of a list)."""
        matches = _parse_filter(query.get("$filter", ""))
        ids = list(job.tasks)
        start = 0
        if "$skiptoken" in query:
            if query["$skiptoken"] not in job.tasks:
                raise ServiceError(400, "InvalidQueryParameterValue", "invalid $skiptoken")
            start = ids.index(query["$skiptoken"]) + 1
        size = min(int(query.get("maxresults", "1000")), self.page_size)
        page: list[tuple[str, Task]] = []
        more = False
        for tid in ids[start:]:
            task = job.tasks[tid]
            if all(m(task) for m in matches):
                if len(page) == size:
                    more = True
                    break
                page.append((tid, task))
        select = [s for s in query.get("$select", "").split(",") if s]
        value = [_select(_task_json(tid, t), select) for tid, t in page]
        body: dict[str, Any] = {"value": value}
        if more:
            rest = {k: v for k, v in query.items() if k not in ("$skiptoken", "api-version")}
            rest["$skiptoken"] = page[-1][0]
            body["odata.nextLink"] = f"{self.base_url}/jobs/{job_id}/tasks?" + "&".join(
                f"{k}={quote(v)}" for k, v in rest.items()
            )
        return 200, body, {}

    def _arm(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]):
        if not headers.get("authorization", "").startswith("Bearer "):
            raise ServiceError(401, "AuthenticationFailed", "no bearer token")
        key = path.lower()
        self.calls[(method, "arm")] += 1
        for stored, value in self.arm.items():
            if stored.lower() == key:
                return 200, value, {}
        if key.endswith("/resourcegroups") or key.endswith("/resources"):
            return 200, {"value": []}, {}
        raise ServiceError(404, "ResourceNotFound", f"{path} was not found")

    base_url = ""


def _parse_filter(text: str):
    matches = []
    for clause in [c.strip() for c in text.split(" and ") if c.strip()]:
        state = re.fullmatch(r"state (eq|ne) '(\w+)'", clause)
        when = re.fullmatch(r"stateTransitionTime (ge|gt) datetime'([0-9T:\-.]+Z)'", clause)
        if state:
            op, value = state.groups()
            matches.append(lambda t, op=op, v=value: (t.state == v) == (op == "eq"))
        elif when:
            op, value = when.groups()
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            matches.append(
                lambda t, op=op, m=moment: t.transition >= m if op == "ge" else t.transition > m
            )
        else:
            raise ServiceError(400, "InvalidQueryParameterValue", f"unsupported $filter: {clause}")
    return matches


def _task_json(task_id: str, task: Task) -> dict[str, Any]:
    out = dict(task.body)
    out.update(
        {
            "id": task_id,
            "state": task.state,
            "stateTransitionTime": now_iso(task.transition),
            "creationTime": now_iso(task.created or task.transition),
            "url": f"/jobs/x/tasks/{task_id}",
        }
    )
    if task.state == "completed":
        info: dict[str, Any] = {
            "retryCount": 0,
            "requeueCount": task.requeues,
            "exitCode": task.exit_code,
            "result": task.result,
        }
        if task.failure:
            info["failureInfo"] = task.failure
        out["executionInfo"] = info
    elif task.state == "running" or task.requeues:
        out["executionInfo"] = {"retryCount": 0, "requeueCount": task.requeues}
    if task.node:
        out["nodeInfo"] = {"nodeId": task.node, "poolId": "p"}
    return out


def _select(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


def _http_put(url: str, data: bytes) -> None:
    request = urllib.request.Request(
        url,
        data=data,
        method="PUT",
        headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=10).read()


class NodeAgent:
    """Runs tasks the way a pool node would, but on this machine and without a container
    (no Docker engine here): `commandLine` under bash in a fresh working directory, with
    the task's environment settings plus ``node_env`` (what the node's identity and image
    provide), stdout/stderr captured, then output files uploaded at completion."""

    def __init__(self, node_env: dict[str, str], root: Path):
        self.node_env, self.root = dict(node_env), root
        self.threads: list[threading.Thread] = []

    def schedule(self, service: FakeBatch, job_id: str, task_id: str) -> None:
        thread = threading.Thread(target=self._run, args=(service, job_id, task_id), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run(self, service: FakeBatch, job_id: str, task_id: str) -> None:
        import shlex
        import subprocess

        with service.lock:
            body = service.task(job_id, task_id).body
        workdir = self.root / job_id / task_id / "wd"
        workdir.mkdir(parents=True)
        env = {
            **self.node_env,
            "HOME": str(workdir.parent),
            **{e["name"]: e.get("value", "") for e in body.get("environmentSettings") or []},
        }
        service.start(job_id, task_id, node=f"tvm-{task_id}")
        proc = subprocess.run(
            shlex.split(body["commandLine"]),
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        with service.lock:
            if service.task(job_id, task_id).state == "completed":
                return  # terminated meanwhile
        service.finish(
            job_id, task_id, exit_code=proc.returncode, stdout=proc.stdout, stderr=proc.stderr
        )


class _Handler(BaseHTTPRequestHandler):
    service: FakeBatch

    def log_message(self, *args) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, payload, extra = self.service.handle(self.command, self.path, body, headers)
        except ServiceError as exc:
            status, extra = exc.status, {}
            payload = {"code": exc.code, "message": {"lang": "en-US", "value": exc.message}}
            if self.path.startswith("/subscriptions/"):
                payload = {"error": {"code": exc.code, "message": exc.message}}
        data = b""
        if isinstance(payload, bytes):
            data = payload
        elif payload is not None:
            data = json.dumps(payload).encode()
            extra.setdefault("content-type", "application/json; odata=minimalmetadata")
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("request-id", "00000000-0000-0000-0000-000000000000")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class FakeBatchServer:
    """FakeBatch served over HTTPS on 127.0.0.1 in a thread."""

    def __init__(self, service: FakeBatch, cert: Path, key: Path):
        handler = type("Handler", (_Handler,), {"service": service})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        service.base_url = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeBatchServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
