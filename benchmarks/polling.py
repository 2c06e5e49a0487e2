"""Requests and wall time of one status cycle, cfw's way beside one call per job.

For each kind with a service fake (tests/support: a fake Kubernetes API server for gke
and kubernetes, which share one backend; a fake Google Batch over gRPC for
google-batch), the fake holds N active jobs of the run and N finished ones (still listed
by the service: Kubernetes keeps finished Jobs for ttlSecondsAfterFinished, Batch keeps
them until deleted). One cycle is what the executor does every status check: the
backend's ``poll`` of the N active jobs. Beside it, the one-call-per-job approach of the
Snakemake executor plugins: one read of each active job. Prints a table.

    python benchmarks/polling.py [--sizes 1000,10000] [--kinds gke,google-batch]

The fakes run in this process, on 127.0.0.1: wall times measure the client side (request
building, decoding) plus the fake's own work, not a cloud's latency; the request counts
are what a real service would be sent.
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


KINDS: dict[str, Callable[[int, int], list[Row]]] = {
    "gke": kube_rows,
    "google-batch": google_batch_rows,
}


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this thread (cfw and the SDK, not the fake)."""
    started, cpu = time.perf_counter(), time.thread_time()
    work()
    return time.perf_counter() - started, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="active jobs (comma-separated)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="kinds (comma-separated)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'kind':16} {'active':>7} {'finished':>8} {'approach':17} {'requests':>8} {'wall s':>8}"
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
    print("cfw: one list, ceil(active / page) requests (Kubernetes 500 a page, Batch 100)")


if __name__ == "__main__":
    main()
