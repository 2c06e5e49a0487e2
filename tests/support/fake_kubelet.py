"""A node for the fake Kubernetes API server (support/fake_kube.py): it runs each Job's pod.

No container runtime runs here, so the "node" runs the pod's container command as a local
process, as a kubelet would start it in the image: the container's ``command`` in a fresh
working directory (the pod's emptyDir), with exactly the pod's environment — plain values,
and ``secretKeyRef`` values read from the stored Secret (a missing Secret or key leaves the
pod waiting with CreateContainerConfigError, as a kubelet does). The container's output
becomes the pod log; its exit ends the pod Succeeded or Failed (exit code in the
container's terminated state), and the Job with it. A Job deleted in the foreground has its
process killed, then its pods and the Job removed (the garbage collector's part).

Only the shapes the kinds read are played; scheduling is not (every pod lands at once).
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.fake_kube import FakeKube, now


@dataclass
class Running:
    job: str
    namespace: str
    pod: str
    proc: subprocess.Popen
    workdir: Path
    output: Path


class FakeKubelet:
    def __init__(self, fake: FakeKube, interval: float = 0.1):
        self.fake = fake
        self.interval = interval
        self.root = Path(tempfile.mkdtemp(prefix="cfw-fake-node-"))
        self.running: dict[str, Running] = {}
        self.started: list[str] = []  # pods, in the order they were started
        self.errors: list[str] = []  # what broke the node's loop (then it stops)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for run in list(self.running.values()):
            self._kill(run)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                with self.fake.lock:
                    self._collect_deleted()
                    self._start_new()
                    self._reap_finished()
            except Exception:  # a broken node is the test's failure, not a silent hang
                self.errors.append(traceback.format_exc())
                return
            time.sleep(self.interval)

    def _jobs(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(ns, name, obj) for (r, ns, name), obj in self.fake.objects.items() if r == "jobs"]

    def _collect_deleted(self) -> None:
        for ns, name, job in self._jobs():
            if job["metadata"].get("deletionTimestamp"):
                for run in [r for r in self.running.values() if r.job == name]:
                    self._kill(run)
                    del self.running[run.pod]
                for pod in self.fake.pods_of(name, ns):
                    del self.fake.objects[("pods", ns, pod["metadata"]["name"])]
                del self.fake.objects[("jobs", ns, name)]

    def _start_new(self) -> None:
        for ns, name, job in self._jobs():
            if (job.get("status") or {}).get("conditions"):
                continue  # finished
            for pod in self.fake.pods_of(name, ns):
                pod_name = pod["metadata"]["name"]
                if pod_name in self.running or pod["status"].get("phase") != "Pending":
                    continue
                env, problem = self._environment(pod, ns)
                if problem:
                    self._waiting(pod, "CreateContainerConfigError", problem)
                    continue
                self._start(name, ns, pod, env)

    def _environment(self, pod: dict[str, Any], ns: str) -> tuple[dict[str, str], str | None]:
        container = pod["spec"]["containers"][0]
        env: dict[str, str] = {}
        for entry in container.get("env") or []:
            if "value" in entry:
                env[entry["name"]] = entry["value"]
                continue
            ref = entry["valueFrom"]["secretKeyRef"]
            secret = self.fake.get("secrets", ns, ref["name"])
            if secret is None:
                return {}, f'secret "{ref["name"]}" not found'
            data = secret.get("data") or {}
            if ref["key"] not in data:
                return {}, f"couldn't find key {ref['key']} in Secret {ns}/{ref['name']}"
            env[entry["name"]] = base64.b64decode(data[ref["key"]]).decode()
        return env, None

    def _waiting(self, pod: dict[str, Any], reason: str, message: str) -> None:
        pod["status"] = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "job",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": reason, "message": message}},
                }
            ],
        }
        self.fake.version += 1

    def _start(self, job: str, ns: str, pod: dict[str, Any], env: dict[str, str]) -> None:
        pod_name = pod["metadata"]["name"]
        workdir = self.root / pod_name / "workdir"
        workdir.mkdir(parents=True)
        container = pod["spec"]["containers"][0]
        full_env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            "HOME": str(workdir),
            "HOSTNAME": pod_name,
            **env,
        }
        output = self.root / pod_name / "log"
        with open(output, "wb") as log:
            proc = subprocess.Popen(
                container["command"],
                cwd=workdir,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[pod_name] = Running(job, ns, pod_name, proc, workdir, output)
        self.started.append(pod_name)
        self.fake.start(job, ns)

    def _reap_finished(self) -> None:
        for pod_name, run in list(self.running.items()):
            code = run.proc.poll()
            if code is None:
                continue
            del self.running[pod_name]
            self.fake.logs[pod_name] = run.output.read_text(errors="replace")
            if ("jobs", run.namespace, run.job) not in self.fake.objects:
                continue
            if code == 0:
                self.fake.finish(run.job, run.namespace)
                continue
            terminated = {
                "exitCode": code,
                "reason": "Error",
                "startedAt": now(),
                "finishedAt": now(),
            }
            status = {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "job",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": copy.deepcopy(terminated)},
                    }
                ],
            }
            self.fake.fail(run.job, run.namespace, status)

    @staticmethod
    def _kill(run: Running) -> None:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(timeout=10)
