"""A GA4GH TES 1.1 server for the tests, on 127.0.0.1, that behaves like one.

- Routes of the spec under /ga4gh/tes/v1 (404 elsewhere, as Funnel and TESK answer):
  service-info, CreateTask, ListTasks, GetTask, CancelTask.
- Authentication like Funnel's: with users or tokens configured, a request without valid
  Basic or Bearer credentials gets 401.
- CreateTask validates the body against the TES 1.1 OpenAPI schema (400 otherwise) and
  gives the task an id and the state QUEUED.
- ListTasks: views MINIMAL (id and state only), BASIC (no stdout/stderr, input content or
  system logs) and FULL; filters name_prefix, state and tag_key/tag_value as the spec
  zips them; newest first; page_size (default 256, at most 2047) and opaque page tokens
  (a page reads on from the last task of the one before, as far as it needs).
- CancelTask: 404 for an unknown id; a task already finished stays as it is (Funnel's
  behaviour); otherwise CANCELED, and a running command is stopped.
- Tasks move on either by the test (:meth:`TesServer.set_state`), or, with
  ``run_commands=True``, by running each executor's command here (no containers: the
  image is not used; the task's volumes and workdir are host directories, and paths under
  them in the env are mapped the same way) through QUEUED, INITIALIZING, RUNNING and
  COMPLETE or EXECUTOR_ERROR, with exit codes and the tails of stdout and stderr as logs.
- ``funnel_dynamodb_paging=True``: ListTasks pages as Funnel's DynamoDB backend does
  (modelled on Funnel's DynamoDB ListTasks, database/dynamodb/tes.go): the page size is
  DynamoDB's Query ``Limit``, applied to all tasks BEFORE the tag/state/name filter; the
  page token is the id of the last task read (not returned), and it is left out when the
  filtered page is empty, even if more tasks follow — so a client's paging stops early.
- ``fault``: set to an HTTP status (401, 503, ...) to make every request answer with it
  from then on (the server restarted with other credentials, or is failing).
- Optionally HTTPS, with a certificate the test makes (``tls=(cert file, key file)``).
- Every request is recorded (:attr:`TesServer.requests`) so tests can count API calls.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from support.tes_schema import request_errors, response_errors

BASE = "/ga4gh/tes/v1"
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
LOG_TAIL = 10000  # bytes of stdout/stderr kept, like Funnel's Worker.LogTailSize


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Request:
    method: str
    operation: str
    params: dict[str, list[str]]
    user: str | None


@dataclass
class StoredTask:
    doc: dict[str, Any]
    owner: str | None
    process: subprocess.Popen | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class TesServer:
    def __init__(
        self,
        users: dict[str, str] | None = None,
        tokens: set[str] | None = None,
        run_commands: bool = False,
        slots: int = 4,
        tls: tuple[str, str] | None = None,
        funnel_dynamodb_paging: bool = False,
        preempt: int = 0,
    ):
        self.funnel_dynamodb_paging = funnel_dynamodb_paging
        # the first PREEMPT tasks that ask for preemptible resources lose their machine
        # while they run (state PREEMPTED, as a TES server on spot capacity reports it)
        self.preempt = preempt
        self.fault: int | None = None
        self.users = dict(users or {})
        self.tokens = set(tokens or ())
        self.run_commands = run_commands
        self.tasks: dict[str, StoredTask] = {}
        self.order: list[str] = []  # creation order
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self.workdir = tempfile.mkdtemp(prefix="cfw-test-tes-")
        self.pool = ThreadPoolExecutor(max_workers=slots)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls:  # HTTPS with the given certificate and key files
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> TesServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self.lock:
            for task in self.tasks.values():
                task.cancelled.set()
                if task.process and task.process.poll() is None:
                    task.process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- for tests ------------------------------------------------------------------------------
    def count(self, operation: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.operation == operation)

    def set_state(
        self,
        task_id: str,
        state: str,
        *,
        exit_code: int | None = None,
        stdout: str = "",
        stderr: str = "",
        system_logs: list[str] | None = None,
    ) -> None:
        with self.lock:
            doc = self.tasks[task_id].doc
            doc["state"] = state
            if exit_code is not None or system_logs:
                log = {"logs": [], "outputs": [], "start_time": _now(), "end_time": _now()}
                if exit_code is not None:
                    log["logs"].append(
                        {
                            "exit_code": exit_code,
                            "stdout": stdout,
                            "stderr": stderr,
                            "start_time": _now(),
                            "end_time": _now(),
                        }
                    )
                if system_logs:
                    log["system_logs"] = list(system_logs)
                doc["logs"] = [log]

    def task(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.tasks[task_id].doc))

    # -- authentication -----------------------------------------------------------------------
    def authenticate(self, header: str | None) -> tuple[bool, str | None]:
        if not self.users and not self.tokens:
            return True, None
        if not header:
            return False, None
        if header.startswith("Bearer "):
            token = header[7:]
            return token in self.tokens, "bearer"
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False, None
            ok = user in self.users and secrets.compare_digest(self.users[user], password)
            return ok, user
        return False, None

    # -- the API --------------------------------------------------------------------------------
    def create(self, body: dict[str, Any], owner: str | None) -> tuple[int, dict[str, Any]]:
        problems = request_errors(body, "tesTask")
        if problems:
            return 400, {"code": 3, "message": "invalid task: " + "; ".join(problems[:5])}
        task_id = "d" + secrets.token_hex(9)  # shaped like Funnel's ids
        doc = json.loads(json.dumps(body))
        doc.update({"id": task_id, "state": "QUEUED", "creation_time": _now()})
        with self.lock:
            self.tasks[task_id] = StoredTask(doc, owner)
            self.order.append(task_id)
        if self.run_commands:
            self.pool.submit(self._run, task_id)
        return 200, {"id": task_id}

    def list(self, params: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        view = (params.get("view") or ["MINIMAL"])[0]
        if view not in ("MINIMAL", "BASIC", "FULL"):
            return 400, {"code": 3, "message": f"unknown view {view}"}
        try:
            size = int((params.get("page_size") or ["256"])[0])
        except ValueError:
            return 400, {"code": 3, "message": "page_size must be an integer"}
        if not 1 <= size < 2048:
            return 400, {"code": 3, "message": "page_size must be between 1 and 2047"}
        keys, values = params.get("tag_key", []), params.get("tag_value", [])
        wanted = {k: (values[i] if i < len(values) else "") for i, k in enumerate(keys)}
        prefix = (params.get("name_prefix") or [""])[0]
        state = (params.get("state") or [""])[0]
        with self.lock:
            if self.funnel_dynamodb_paging:
                return 200, self._list_funnel_dynamodb(params, size, view, wanted, prefix, state)
            # newest first, from after the token's task: a page reads only as far as it
            # needs (one match more than the page tells whether a next page exists)
            token = (params.get("page_token") or [""])[0]
            start = len(self.order) - 1
            if token:
                try:
                    after = base64.urlsafe_b64decode(token.encode()).decode().removeprefix("after:")
                    start = self.order.index(after) - 1
                except ValueError:
                    return 400, {"code": 3, "message": "invalid page_token"}
            page: list[str] = []
            more = False
            for index in range(start, -1, -1):
                task_id = self.order[index]
                if self._matches(self.tasks[task_id].doc, wanted, prefix, state):
                    if len(page) == size:
                        more = True
                        break
                    page.append(task_id)
            body: dict[str, Any] = {"tasks": [self._view(self.tasks[i].doc, view) for i in page]}
            if more:
                body["next_page_token"] = base64.urlsafe_b64encode(
                    f"after:{page[-1]}".encode()
                ).decode()
        return 200, body

    def _list_funnel_dynamodb(
        self,
        params: dict[str, list[str]],
        size: int,
        view: str,
        wanted: dict[str, str],
        prefix: str,
        state: str,
    ) -> dict[str, Any]:
        """Funnel's DynamoDB ListTasks: Query(Limit=page_size, newest first, FilterExpression)
        and ``if len(tasks) > 0 && LastEvaluatedKey != nil { NextPageToken = id }``."""
        ids = list(reversed(self.order))  # all tasks, as the Query reads them
        token = (params.get("page_token") or [""])[0]
        start = ids.index(token) + 1 if token in ids else 0  # ExclusiveStartKey = the id
        read = ids[start : start + size]  # Limit counts items read, before the filter
        docs = [self.tasks[i].doc for i in read]
        page = [d for d in docs if self._matches(d, wanted, prefix, state)]
        body: dict[str, Any] = {"tasks": [self._view(d, view) for d in page]}
        if page and len(read) == size:  # DynamoDB gives LastEvaluatedKey when Limit is hit
            body["next_page_token"] = read[-1]
        return body

    def get(self, task_id: str, params: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        view = (params.get("view") or ["MINIMAL"])[0]
        with self.lock:
            if task_id not in self.tasks:
                return 404, {"code": 5, "message": f"task not found: taskID: {task_id}"}
            return 200, self._view(self.tasks[task_id].doc, view)

    def cancel(self, task_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if task_id not in self.tasks:
                return 404, {"code": 5, "message": f"task not found: taskID: {task_id}"}
            task = self.tasks[task_id]
            if task.doc["state"] in TERMINAL:
                return 200, {}
            task.doc["state"] = "CANCELED"
            task.cancelled.set()
            if task.process and task.process.poll() is None:
                task.process.kill()
        return 200, {}

    @staticmethod
    def _matches(doc: dict[str, Any], wanted: dict[str, str], prefix: str, state: str) -> bool:
        tags = doc.get("tags") or {}
        if any(k not in tags or (v and tags[k] != v) for k, v in wanted.items()):
            return False
        if prefix and not (doc.get("name") or "").startswith(prefix):
            return False
        return not state or doc["state"] == state

    @staticmethod
    def _view(doc: dict[str, Any], view: str) -> dict[str, Any]:
        if view == "MINIMAL":
            return {"id": doc["id"], "state": doc["state"]}
        out = json.loads(json.dumps(doc))
        if view == "BASIC":
            for item in out.get("inputs", []):
                item.pop("content", None)
            for log in out.get("logs", []):
                log.pop("system_logs", None)
                for executor_log in log.get("logs", []):
                    executor_log.pop("stdout", None)
                    executor_log.pop("stderr", None)
        return out

    # -- running commands -------------------------------------------------------------------------
    def _run(self, task_id: str) -> None:
        with self.lock:
            task = self.tasks[task_id]
            if task.cancelled.is_set():
                return
            task.doc["state"] = "INITIALIZING"
            doc = json.loads(json.dumps(task.doc))
            if self.preempt and (doc.get("resources") or {}).get("preemptible"):
                self.preempt -= 1
                task.doc["logs"] = [
                    {
                        "logs": [],
                        "outputs": [],
                        "start_time": _now(),
                        "end_time": _now(),
                        "system_logs": ["the preemptible instance was reclaimed"],
                    }
                ]
                task.doc["state"] = "PREEMPTED"
                return
        root = os.path.join(self.workdir, task_id)
        mounts = {
            volume: os.path.join(root, volume.strip("/").replace("/", "_"))
            for volume in doc.get("volumes", [])
        }
        for path in mounts.values():
            os.makedirs(path, exist_ok=True)

        def host(path: str) -> str:
            for inside, outside in sorted(mounts.items(), key=lambda m: -len(m[0])):
                if path == inside or path.startswith(inside.rstrip("/") + "/"):
                    return outside + path[len(inside.rstrip("/")) :]
            return path

        log: dict[str, Any] = {
            "logs": [],
            "outputs": [],
            "start_time": _now(),
            "metadata": {"host": "127.0.0.1"},
        }
        final = "COMPLETE"
        for executor in doc["executors"]:
            env = {
                "PATH": os.pathsep.join(
                    [os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]
                )
            }
            env.update({k: host(v) for k, v in (executor.get("env") or {}).items()})
            cwd = host(executor.get("workdir") or root)
            os.makedirs(cwd, exist_ok=True)
            with self.lock:
                if task.cancelled.is_set():
                    return
                task.doc["state"] = "RUNNING"
                task.process = subprocess.Popen(
                    executor["command"],
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    errors="replace",
                )
                started = _now()
            out, err = task.process.communicate()
            entry = {
                "exit_code": task.process.returncode,
                "start_time": started,
                "end_time": _now(),
                "stdout": out[-LOG_TAIL:],
                "stderr": err[-LOG_TAIL:],
            }
            log["logs"].append(entry)
            if task.process.returncode != 0:
                final = "EXECUTOR_ERROR"
                if not executor.get("ignore_error"):
                    break
        log["end_time"] = _now()
        with self.lock:
            if task.cancelled.is_set():
                return
            task.doc["logs"] = [log]
            task.doc["state"] = final
        shutil.rmtree(root, ignore_errors=True)

    # -- HTTP -------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        task_path = re.compile(rf"^{BASE}/tasks/([A-Za-z0-9_-]+)(:cancel)?$")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="tes"')
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                parsed = urlparse(self.path)
                params = parse_qs(parsed.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                match = task_path.match(parsed.path)
                if parsed.path == f"{BASE}/service-info" and method == "GET":
                    operation = "GetServiceInfo"
                elif parsed.path == f"{BASE}/tasks":
                    operation = {"GET": "ListTasks", "POST": "CreateTask"}[method]
                elif match and method == "GET" and not match.group(2):
                    operation = "GetTask"
                elif match and method == "POST" and match.group(2):
                    operation = "CancelTask"
                else:
                    operation = "unknown"
                ok, user = server.authenticate(self.headers.get("Authorization"))
                with server.lock:
                    server.requests.append(Request(method, operation, params, user if ok else None))
                if operation == "unknown":
                    return self._reply(404, {"code": 5, "message": "Not Found"})
                if server.fault is not None:
                    return self._reply(server.fault, {"code": 14, "message": "fault injected"})
                if not ok:
                    return self._reply(
                        401, {"code": 16, "message": "Basic/Bearer authorization token missing"}
                    )
                if operation == "GetServiceInfo":
                    return self._reply(
                        200,
                        {
                            "id": "org.cfw.tests.tes",
                            "name": "cfw test TES",
                            "version": "1.1.0",
                            "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
                            "organization": {"name": "cfw", "url": "https://example.org"},
                            "storage": ["s3://"],
                        },
                    )
                if operation == "CreateTask":
                    try:
                        body = json.loads(raw or b"null")
                    except ValueError:
                        return self._reply(400, {"code": 3, "message": "body is not JSON"})
                    return self._reply(*server.create(body, user))
                if operation == "ListTasks":
                    status, body = server.list(params)
                    if status == 200 and (params.get("view") or ["MINIMAL"])[0] != "MINIMAL":
                        assert not response_errors(body, "tesListTasksResponse"), body
                    return self._reply(status, body)
                if operation == "GetTask":
                    return self._reply(*server.get(match.group(1), params))
                return self._reply(*server.cancel(match.group(1)))

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)
