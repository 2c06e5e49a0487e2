"""Requests and wall time of one status cycle, cfw's way beside one call per job.

For each kind, against the service fake of its tests (tests/support: a fake Kubernetes API
server for gke and kubernetes, which share one backend; a fake Google Batch over gRPC for
google-batch; the TES server of the tests for tes; the fake Azure Batch service over HTTPS
for azure-batch; moto, in this process, for tibanna's Step Functions), the service holds N
active jobs of the run and N finished ones (still listed by the service: Kubernetes keeps
finished Jobs for ttlSecondsAfterFinished, Batch, TES and Step Functions keep them until
deleted or for days). One cycle is what the executor does every status check: the
backend's ``poll`` of the N active jobs, after earlier cycles saw the finished ones end.
Beside it, the one-call-per-job approach of the Snakemake executor plugins: one read of
each active job. Prints a table.

    python benchmarks/polling.py [--sizes 1000] [--kinds gke,google-batch,...]

The default (1,000 active jobs) takes a few minutes; `--sizes 1000,10000` about half an
hour on the 2-core development machine, most of it the one-call-per-job rows.

The fakes run in this process, on 127.0.0.1: wall times measure the client side (request
building, decoding) plus the fake's own work, not a cloud's latency; the request counts
are what a real service would be sent. The jobs are put into each fake's store directly
(the first one of each kind through the API, so its request is checked as the service
checks it): only the status cycle is measured.

What each cycle reads: gke/kubernetes list the run's Jobs that have not succeeded (a field
selector), google-batch the run's jobs in unfinished states (a filter); tes lists the
run's tasks newest first until every active one was seen (the finished ones here are
older, as in a run whose jobs end about in the order they started: a task still running
behind newer finished ones makes the list read on through them); azure-batch lists only
tasks that changed since the cycle before (a stateTransitionTime filter, with two minutes
of slack); tibanna lists the state machine's RUNNING executions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "runner"), str(ROOT / "tests")]

RUN = "12021200abcd"


@dataclass
class Row:
    kind: str
    active: int
    finished: int
    approach: str
    requests: int
    seconds: float
    cpu: float  # this thread's CPU: the client side (the fakes serve from other threads)


# -- gke / kubernetes: Jobs in a fake API server -------------------------------------------
def kube_rows(n: int, finished: int) -> list[Row]:
    from cfw.backends._kube import client as kube_client
    from cfw.backends.gke.backend import GkeBackend
    from cfw.backends.gke.config import GkeConfig, node_pools
    from cfw.backends.gke.kind import KIND
    from support.builders import context, job_spec
    from support.fake_kube import FakeKube

    ns = "cfw-jobs"
    fake = FakeKube()
    try:
        config = GkeConfig(project="bench-project", name="gke")
        outputs = {
            "namespace": ns,
            "service_account": "cfw-jobs",
            "project": "bench-project",
            "node_pools": {p.name: p.machine_type for p in node_pools(config)},
        }
        ctx = context("gke", config, outputs=outputs, state_dir=Path("/tmp"), run_id=RUN)
        kube = kube_client.connect(fake.url, None, lambda: fake.token)
        backend = GkeBackend(ctx, kube=kube)
        active: list[str] = []
        for i in range(n + finished):
            spec = job_spec("scatter", i, run_id=RUN, command="python -m snakemake")
            manifest = KIND.translate(spec, ctx)["job"]
            fake._store("jobs", ns, manifest)  # as create does, without the HTTP round trip
            name = manifest["metadata"]["name"]
            backend.submitted.add(name)
            if i < n:
                active.append(name)
            else:  # succeeded before this cycle (and seen so: not among the active)
                fake.objects[("jobs", ns, name)]["status"] = {
                    "succeeded": 1,
                    "conditions": [{"type": "Complete", "status": "True"}],
                }
        rows = []
        fake.reset_calls()
        seconds, cpu = timed(lambda: backend.poll(active))
        rows.append(Row("gke, kubernetes", n, finished, "cfw", len(fake.calls), seconds, cpu))
        fake.reset_calls()
        seconds, cpu = timed(lambda: [kube.read_job(ns, name) for name in active])
        rows.append(
            Row("gke, kubernetes", n, finished, "one call per job", len(fake.calls), seconds, cpu)
        )
        return rows
    finally:
        fake.close()


# -- google-batch: jobs in a fake Batch service over gRPC -----------------------------------
def google_batch_rows(n: int, finished: int) -> list[Row]:
    from cfw.backends.google_batch.backend import GoogleBatchBackend
    from cfw.backends.registry import get_kind
    from support.builders import context, job_spec
    from support.fake_google import PROJECT, FakeGoogle

    kind = get_kind("google-batch")
    fake = FakeGoogle()
    try:
        ctx = context(
            "google-batch",
            {"project": PROJECT},
            env="google-batch-0a1b2c",
            state_dir=Path("/tmp"),
            run_id=RUN,
        )
        backend = GoogleBatchBackend(ctx, clients=fake.clients())
        active: list[str] = []
        for i in range(n + finished):
            spec = job_spec("scatter", i, run_id=RUN, command="python -m snakemake")
            job = fake.batch.create_job(kind.submission(spec, ctx))  # in process, no RPC
            name = f"projects/{PROJECT}/locations/{fake.batch.region}/jobs/{spec.name}-a1"
            backend.submitted[name.rsplit("/", 1)[-1]] = time.monotonic()
            if i < n:
                active.append(name)
            else:
                fake.batch.advance(job.name.rsplit("/", 1)[-1], "SUCCEEDED", exit_code=0)
        rows = []

        def rpcs() -> int:
            return fake.rpcs["ListJobs"] + fake.rpcs["GetJob"]

        before = rpcs()
        seconds, cpu = timed(lambda: backend.poll(active))
        rows.append(Row("google-batch", n, finished, "cfw", rpcs() - before, seconds, cpu))
        before = rpcs()
        seconds, cpu = timed(lambda: [backend.clients.get_job(name) for name in active])
        rows.append(
            Row("google-batch", n, finished, "one call per job", rpcs() - before, seconds, cpu)
        )
        backend.clients.close()
        return rows
    finally:
        fake.stop()


# -- tes: tasks in the TES server of the tests, over HTTP ------------------------------------
def tes_rows(n: int, finished: int) -> list[Row]:
    from cfw.backends.tes.backend import TesBackend
    from cfw.backends.tes.kind import KIND
    from support.builders import context, job_spec
    from support.tes_server import StoredTask, TesServer

    with TesServer() as server:
        url = server.url
        ctx = context(
            "tes",
            {"url": url, "storage": {"prefix": "s3://bucket/cfw"}},
            outputs={"tes_url": url, "storage_prefix": "s3://bucket/cfw"},
            state_dir=Path("/tmp"),
            run_id=RUN,
        )
        backend = TesBackend(ctx)
        # the finished tasks were submitted first (a run's jobs end roughly in the order they
        # started); ListTasks answers newest first
        active: list[str] = []
        for i in range(finished + n):
            spec = job_spec("scatter", i, run_id=RUN, command="python -m snakemake")
            body = KIND.translate(spec, ctx)
            if i == 0:  # the first through CreateTask: the body is a valid TES task
                status, answer = server.create(body, None)
                assert status == 200, answer
                task_id = answer["id"]
            else:  # the others as CreateTask stores them, without the HTTP round trip
                task_id = f"d{i:017x}"
                doc = {**body, "id": task_id, "state": "QUEUED", "creation_time": "now"}
                server.tasks[task_id] = StoredTask(doc, None)
                server.order.append(task_id)
            if i < finished:
                server.set_state(task_id, "COMPLETE", exit_code=0)
            else:
                server.set_state(task_id, "RUNNING")
                active.append(task_id)
        rows = []
        before = len(server.requests)
        seconds, cpu = timed(lambda: backend.poll(active))
        rows.append(Row("tes", n, finished, "cfw", len(server.requests) - before, seconds, cpu))
        before = len(server.requests)
        seconds, cpu = timed(lambda: [backend.api.get(t, view="MINIMAL") for t in active])
        rows.append(
            Row("tes", n, finished, "one call per job", len(server.requests) - before, seconds, cpu)
        )
        return rows


# -- azure-batch: tasks in the fake Batch service, over HTTPS -------------------------------
def azure_batch_rows(n: int, finished: int) -> list[Row]:
    import os
    import tempfile

    from cfw.backends.azure_batch.backend import AzureBatchBackend
    from cfw.backends.azure_batch.client import TASK_FIELDS
    from cfw.backends.azure_batch.config import AzureBatchConfig
    from cfw.backends.azure_batch.kind import KIND
    from cfw.backends.base import JobState, JobStatus
    from support.builders import context, job_spec
    from support.fake_batch import FakeBatch, FakeBatchServer, make_certificate

    with tempfile.TemporaryDirectory(prefix="cfw-bench-") as tmp:
        cert, key = make_certificate(Path(tmp))
        os.environ["REQUESTS_CA_BUNDLE"] = str(cert)
        # Batch's own page size for list tasks (maxresults at most 1000)
        fake = FakeBatch(pools={"standard-d4s-v3": 4}, page_size=1000)
        with FakeBatchServer(fake, cert, key):
            config = AzureBatchConfig(
                name="ab", region="westeurope", pools=[{"vm_size": "Standard_D4s_v3"}]
            )
            outputs = KIND.output_placeholders(config, None)
            blob = "https://acct.blob.core.windows.net"
            outputs.update(
                batch_account_url=fake.base_url,
                storage_blob_endpoint=blob,
                storage_container_urls={c: f"{blob}/{c}" for c in ("data", "logs")},
            )
            ctx = context("azure-batch", config, outputs=outputs, state_dir=Path(tmp), run_id=RUN)
            backend = AzureBatchBackend(
                ctx,
                environ={
                    "AZ_BATCH_ACCOUNT_KEY": "ZmFrZS1iYXRjaC1hY2NvdW50LWtleQ==",
                    "AZ_BATCH_ACCOUNT_NAME": "acct",
                },
            )
            ids: list[str] = []
            for i in range(finished + n):  # the finished ones were added first
                spec = job_spec("scatter", i, run_id=RUN, command="python -m snakemake")
                payload = KIND.translate(spec, ctx)
                job_id = payload["job_id"]
                if job_id not in backend.jobs:  # the run's Batch job, through the API
                    labels = {"cfw-env": ctx.name, "cfw-id": ctx.env_id, "cfw-run": RUN}
                    backend.service.ensure_job(job_id, payload["pool_id"], labels)
                    backend.jobs.add(job_id)
                with fake.lock:  # the task as add task stores it, without the round trip
                    fake._add_task(fake.jobs[job_id], payload["task"])
                task_id = payload["task"]["id"]
                ext = f"{job_id}/{task_id}"
                backend.last[ext] = JobStatus(JobState.PENDING)
                if i < finished:
                    fake.finish(job_id, task_id)
                else:
                    fake.start(job_id, task_id)
                ids.append(ext)
            active = ids[finished:]
            backend.poll(ids)  # the cycle before: it saw the finished ones end
            rows = []

            def requests() -> int:
                return sum(c for (m, r), c in fake.calls.items() if r.startswith("/jobs/{job}"))

            before = requests()
            seconds, cpu = timed(lambda: backend.poll(active))
            rows.append(Row("azure-batch", n, finished, "cfw", requests() - before, seconds, cpu))
            client = backend.service.client
            before = requests()
            seconds, cpu = timed(
                lambda: [client.get_task(*ext.split("/", 1), select=TASK_FIELDS) for ext in active]
            )
            rows.append(
                Row(
                    "azure-batch",
                    n,
                    finished,
                    "one call per job",
                    requests() - before,
                    seconds,
                    cpu,
                )
            )
            backend.service.close()
            return rows


# -- tibanna: executions of the unicorn's state machine, on moto in process -----------------
def tibanna_rows(n: int, finished: int) -> list[Row]:
    import json
    import os

    from moto import mock_aws

    from cfw.backends.tibanna import client as tibanna_client
    from cfw.backends.tibanna.backend import TibannaBackend
    from support.builders import context

    region, account = "us-east-1", "123456789012"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        import boto3
        from moto.stepfunctions.models import Execution, stepfunctions_backends

        definition = {"StartAt": "Run", "States": {"Run": {"Type": "Succeed"}}}
        sfn = boto3.client("stepfunctions", region_name=region)
        arn = sfn.create_state_machine(
            name="tibanna-unicorn-bench",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{account}:role/tibanna-bench",
        )["stateMachineArn"]
        ctx = context(
            "tibanna",
            {"region": region},
            name="tib",
            outputs={
                "log_bucket": "cfw-bench-logs",
                "data_bucket": "cfw-bench-data",
                "state_machine_arn": arn,
                "state_machine_name": arn.rsplit(":", 1)[-1],
                "region": region,
                "account_id": account,
            },
            state_dir=Path("/tmp"),
            run_id=RUN,
        )
        backend = TibannaBackend(ctx)
        machine = stepfunctions_backends[account][region].describe_state_machine(arn)
        active: list[str] = []
        for i in range(finished + n):  # the finished ones were started first
            jobid = f"{RUN}-scatter-{i}"
            if i == 0:  # the first through StartExecution, as submit starts each
                execution_arn = tibanna_client.start_execution(
                    backend.sfn, arn, jobid, {"jobid": jobid}
                )
                execution = machine.executions[-1]
            else:  # the others as StartExecution stores them, without the round trip
                execution = Execution(region, account, machine.name, jobid, arn, "{}")
                machine.executions.append(execution)
                execution_arn = execution.execution_arn
            backend.arns[jobid] = execution_arn
            if i < finished:  # ended before this cycle (and seen so: not among the active)
                execution.status = "SUCCEEDED"
            else:
                execution.status = "RUNNING"
                backend.submitted_at[jobid] = backend.clock()
                backend.instances[jobid] = f"i-{i:017x}"  # seen running by an earlier cycle
                active.append(jobid)
        calls: list[str] = []
        backend.sfn.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model))
        rows = []
        seconds, cpu = timed(lambda: backend.poll(active))
        rows.append(Row("tibanna", n, finished, "cfw", len(calls), seconds, cpu))
        calls.clear()
        seconds, cpu = timed(
            lambda: [
                tibanna_client.describe_execution(backend.sfn, backend.arns[j]) for j in active
            ]
        )
        rows.append(Row("tibanna", n, finished, "one call per job", len(calls), seconds, cpu))
        return rows


KINDS: dict[str, Callable[[int, int], list[Row]]] = {
    "gke": kube_rows,
    "google-batch": google_batch_rows,
    "tes": tes_rows,
    "azure-batch": azure_batch_rows,
    "tibanna": tibanna_rows,
}


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this thread (cfw and the SDK, not the fake)."""
    started, cpu = time.perf_counter(), time.thread_time()
    work()
    return time.perf_counter() - started, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000", help="active jobs (comma-separated)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="kinds (comma-separated)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'kind':16} {'active':>7} {'finished':>8} {'approach':17} {'requests':>8} "
        f"{'wall s':>8} {'cpu/job ms':>10}"
    )
    for name in args.kinds.split(","):
        for n in sizes:
            for finished in (0, n):
                for row in KINDS[name](n, finished):
                    print(
                        f"{row.kind:16} {row.active:>7} {row.finished:>8} {row.approach:17} "
                        f"{row.requests:>8} {row.seconds:>8.2f} "
                        f"{row.cpu / row.active * 1e3:>10.3f}",
                        flush=True,
                    )
    print(
        "cfw: one list, ceil(listed / page) requests (pages: Kubernetes 500, Google Batch 100, "
        "TES 256, Azure Batch 1000, Step Functions 1000)"
    )


if __name__ == "__main__":
    main()
