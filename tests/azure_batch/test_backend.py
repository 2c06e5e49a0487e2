"""The backend against a fake Batch service (the real azure-batch client over HTTPS on
127.0.0.1) and Azurite: submit, status in one paged list call per job per cycle, logs from
the node or from the uploaded output files, cancel, the per-run job deleted at the end,
pool state through azure-mgmt-batch, and SAS tokens that never leave submit."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from azure.core.credentials import AccessToken

from cfw.backends.azure_batch import cloud
from cfw.backends.azure_batch.backend import WATERMARK_SLACK, AzureBatchBackend
from cfw.backends.azure_batch.config import AzureBatchConfig
from cfw.backends.azure_batch.kind import KIND
from cfw.backends.base import JobState
from cfw.core.errors import UserError
from support.builders import context, identity, job_spec

pytest_plugins = ["support.azure"]  # the azurite and fake_batch fixtures

BATCH_KEY = "ZmFrZS1iYXRjaC1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seQ=="
SECRET = "s3cr3t-value-that-must-stay-off-the-command-line"
POOLS = [
    {"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4},
    {"vm_size": "Standard_E16s_v3", "task_slots_per_node": 16},
]
TASKS = "/jobs/{job}/tasks"

SUB = "00000000-0000-0000-0000-000000000001"  # the subscription of the tests


def make_backend(
    fake,
    tmp_path: Path,
    blob_endpoint: str = "https://acct.blob.core.windows.net",
    storage_key: str = "",
    **config,
) -> AzureBatchBackend:
    cfg = AzureBatchConfig(name="ab", region="westeurope", pools=POOLS, **config)
    outputs = KIND.output_placeholders(cfg, None)
    outputs.update(
        batch_account_url=fake.base_url,
        storage_blob_endpoint=blob_endpoint,
        storage_container_urls={c: f"{blob_endpoint}/{c}" for c in ("data", "logs")},
        identity_id="/subscriptions/s/resourceGroups/g/providers/x/nodes",
        identity_client_id="11111111-2222-3333-4444-555555555555",
    )
    ctx = context("azure-batch", cfg, name="ab", outputs=outputs, state_dir=tmp_path, run_id="run1")
    return AzureBatchBackend(
        ctx,
        environ={
            "AZ_BATCH_ACCOUNT_KEY": BATCH_KEY,
            "AZ_BATCH_ACCOUNT_NAME": "acct",
            "AZURE_STORAGE_KEY": storage_key,
        },
    )


def submit(backend: AzureBatchBackend, jobid: int, threads: int = 1) -> str:
    spec = job_spec(
        "step",
        jobid,
        run_id="run1",
        command=f"echo job {jobid}",
        image="img",
        threads=threads,
        env=["MY_TOKEN", "SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME"],
    )
    payload = KIND.translate(spec, backend.ctx)
    return backend.submit(
        spec, payload, {"MY_TOKEN": SECRET, "SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME": "acct"}
    )


def task_of(ext: str) -> tuple[str, str]:
    job, _, task = ext.partition("/")
    return job, task


def list_requests(fake) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlparse(url).query)
        for method, url, _ in fake.requests
        if method == "GET" and re.fullmatch(r"/jobs/[^/]+/tasks", urlparse(url).path)
    ]


def test_submit_one_job_per_pool_env_settings_not_command_line(fake_batch, tmp_path):
    backend = make_backend(fake_batch, tmp_path)
    small = [submit(backend, i) for i in range(3)]
    big = submit(backend, 9, threads=12)
    assert fake_batch.count("POST", "/jobs") == 2  # one per-run job per pool used
    assert fake_batch.count("POST", TASKS) == 4
    assert {task_of(e)[0] for e in small} == {"cfw-run1-standard-d4s-v3"}
    assert task_of(big)[0] == "cfw-run1-standard-e16s-v3"
    job = fake_batch.jobs["cfw-run1-standard-d4s-v3"].body
    assert job["poolInfo"] == {"poolId": "standard-d4s-v3"}
    assert {m["name"]: m["value"] for m in job["metadata"]}["cfw-id"] == "ab-0a1b2c"
    body = fake_batch.task(*task_of(big)).body
    env = {e["name"]: e["value"] for e in body["environmentSettings"]}
    assert env["MY_TOKEN"] == SECRET  # the service receives the value as an env setting
    assert SECRET not in body["commandLine"]
    assert body["requiredSlots"] == 12
    # the pool is Terraform's: the backend never touches pools
    assert not [url for _, url, _ in fake_batch.requests if "/pools" in url]


def test_jobs_of_more_slots_than_the_formula_assumes_warn_once_per_pool(
    fake_batch, tmp_path, caplog
):
    backend = make_backend(fake_batch, tmp_path)
    backend.ctx.config = AzureBatchConfig(
        name="ab",
        region="westeurope",
        pools=[{**POOLS[0], "slots_per_task": 2}, POOLS[1]],  # e16: one task per node
    )
    with caplog.at_level(logging.WARNING, logger="cfw.azure_batch"):
        for jobid, threads in ((1, 1), (2, 2), (3, 12)):  # what the formulas assume
            submit(backend, jobid, threads=threads)
        assert not [r for r in caplog.records if "slots_per_task" in r.getMessage()]
        for jobid, threads in ((4, 3), (5, 4), (6, 3)):  # more than d4's formula assumes
            submit(backend, jobid, threads=threads)
    warnings = [r.getMessage() for r in caplog.records if "slots_per_task" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "pool standard-d4s-v3" in warnings[0] and "pools[0].slots_per_task to 3" in warnings[0]
    assert fake_batch.count("POST", TASKS) == 6  # warned, not refused: they run, maybe later


def test_env_values_are_not_secret_on_batch_said_once_per_run(fake_batch, tmp_path, caplog):
    backend = make_backend(fake_batch, tmp_path)
    with caplog.at_level(logging.WARNING, logger="cfw.azure_batch"):
        for jobid in range(3):
            submit(backend, jobid)
    warnings = [r.getMessage() for r in caplog.records if "not secret" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "not secret on Azure Batch" in warnings[0] and "sent: MY_TOKEN" in warnings[0]
    assert "SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME" not in warnings[0]  # a name, not a secret
    assert SECRET not in caplog.text
    # a run that sends only the storage account's name has nothing to warn about
    caplog.clear()
    quiet = make_backend(fake_batch, tmp_path)
    spec = job_spec(
        "step",
        7,
        run_id="run1",
        command="echo",
        image="img",
        env=["SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME"],
    )
    with caplog.at_level(logging.WARNING, logger="cfw.azure_batch"):
        quiet.submit(
            spec,
            KIND.translate(spec, quiet.ctx),
            {"SNAKEMAKE_STORAGE_AZURE_ACCOUNT_NAME": "acct"},
        )
    assert not [r for r in caplog.records if "not secret" in r.getMessage()]


def test_status_is_one_paged_list_call_per_job_per_cycle(fake_batch, tmp_path):
    backend = make_backend(fake_batch, tmp_path)
    ids = [submit(backend, i) for i in range(5)]
    jobs = {task_of(e)[0] for e in ids}
    (job,) = jobs
    for ext in ids[:4]:
        fake_batch.start(*task_of(ext))
    fake_batch.finish(*task_of(ids[0]), exit_code=0)
    fake_batch.finish(*task_of(ids[1]), exit_code=3, stderr="boom\n")
    fake_batch.finish(
        *task_of(ids[2]),
        exit_code=-1,
        failure={"category": "usererror", "code": "MaxWallClockTimeExpiry", "message": "too long"},
    )

    before = len(list_requests(fake_batch))
    statuses = backend.poll(ids)
    cycle = list_requests(fake_batch)[before:]
    # one list call (no $skiptoken) and its pages, following odata.nextLink
    assert [("$skiptoken" in q) for q in cycle] == [False, True]
    assert cycle[0]["$filter"] == ["state ne 'active'"]
    assert set(cycle[0]["$select"][0].split(",")) >= {"id", "state", "executionInfo"}
    assert statuses[ids[0]].state == JobState.SUCCEEDED
    assert statuses[ids[1]].state == JobState.FAILED and statuses[ids[1]].exit_code == 3
    assert "FailureExitCode" in statuses[ids[1]].reason
    assert "exceeded its runtime" in statuses[ids[2]].reason
    assert statuses[ids[3]].state == JobState.RUNNING
    assert statuses[ids[4]].state == JobState.PENDING

    # the next cycles ask only for what changed since the newest transition seen (less a
    # slack for clock skew): tasks that finished long ago are not listed again
    newest = max(t.transition for t in fake_batch.jobs[job].tasks.values())
    fake_batch.wait(minutes=10)
    fake_batch.finish(*task_of(ids[3]))
    fake_batch.start(*task_of(ids[4]))
    before = len(list_requests(fake_batch))
    statuses = backend.poll(ids)
    query = list_requests(fake_batch)[before]
    mark = (newest - WATERMARK_SLACK).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert query["$filter"] == [f"state ne 'active' and stateTransitionTime ge datetime'{mark}'"]
    assert statuses[ids[3]].state == JobState.SUCCEEDED
    assert statuses[ids[4]].state == JobState.RUNNING
    assert statuses[ids[1]].state == JobState.FAILED  # finished stays finished
    fake_batch.wait(minutes=10)
    fake_batch.finish(*task_of(ids[4]))
    before = len(list_requests(fake_batch))
    statuses = backend.poll(ids)
    (query,) = list_requests(fake_batch)[before:]  # only the one change: a single page
    assert statuses[ids[4]].state == JobState.SUCCEEDED
    # a cycle where all are finished asks nothing
    before = len(list_requests(fake_batch))
    backend.poll(ids)
    assert len(list_requests(fake_batch)) == before


def test_cancel_terminates_running_tasks_and_is_idempotent(fake_batch, tmp_path):
    backend = make_backend(fake_batch, tmp_path)
    running, waiting, done = (submit(backend, i) for i in range(3))
    fake_batch.start(*task_of(running))
    fake_batch.start(*task_of(done))
    fake_batch.finish(*task_of(done))
    backend.cancel([running, waiting])
    backend.cancel([running, waiting])  # again: the service answers 409 TaskCompleted
    backend.cancel(["cfw-run1-standard-d4s-v3/no-such-task-a1"])  # 404: already gone
    assert fake_batch.count("POST", TASKS + "/{task}/terminate") == 5
    statuses = backend.poll([running, waiting, done])
    assert statuses[running].state == JobState.CANCELLED
    assert statuses[waiting].state == JobState.CANCELLED
    assert statuses[done].state == JobState.SUCCEEDED


def test_close_deletes_the_run_jobs_and_they_are_gone(fake_batch, tmp_path):
    backend = make_backend(fake_batch, tmp_path)
    ids = [submit(backend, 1), submit(backend, 2, threads=8)]
    backend.close()
    assert fake_batch.count("DELETE", "/jobs/{job}") == 2
    assert fake_batch.jobs == {}
    # the service answers 404 for the deleted job; a status call says the job is gone
    from azure.core.exceptions import ResourceNotFoundError

    other = make_backend(fake_batch, tmp_path)
    with pytest.raises(ResourceNotFoundError):
        other.service.client.get_job(task_of(ids[0])[0])
    other.last = dict(backend.last)  # the statuses known when the run ended: pending
    statuses = other.poll(ids)
    assert all(s.state == JobState.FAILED and "is gone" in s.reason for s in statuses.values())


def test_missing_pool_is_a_user_error(fake_batch, tmp_path):
    fake_batch.pools.pop("standard-e16s-v3")
    backend = make_backend(fake_batch, tmp_path)
    with pytest.raises(UserError, match="pool standard-e16s-v3 does not exist"):
        submit(backend, 1, threads=8)


def test_sas_output_files_upload_and_logs_come_back(fake_batch, azurite, tmp_path):
    """sas mode: submit mints a write-only SAS for the logs container; the (fake) node agent
    uploads stdout/stderr through it to Azurite; once autoscale took the node, logs() reads
    them from the blobs."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite["connection_string"])
    for name in ("data", "logs"):
        if not service.get_container_client(name).exists():
            service.create_container(name)
    backend = make_backend(
        fake_batch,
        tmp_path,
        blob_endpoint=azurite["endpoint"],
        storage_key=azurite["key"],
        output_files_auth="sas",
    )
    ext = submit(backend, 1)
    body = fake_batch.task(*task_of(ext)).body
    url = body["outputFiles"][0]["destination"]["container"]["containerUrl"]
    query = parse_qs(urlparse(url).query)
    assert url.startswith(f"{azurite['endpoint']}/logs?")
    assert query["sp"] == ["cw"] and "sig" in query and "se" in query
    # the SAS is scoped to writing: reading the container with it is refused
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    with pytest.raises(HttpResponseError):
        list(ContainerClient.from_container_url(url).list_blobs())

    fake_batch.start(*task_of(ext), node="tvm-7")
    fake_batch.finish(*task_of(ext), exit_code=1, stdout="out line\n", stderr="err line\n")
    assert fake_batch.upload_errors == []
    assert backend.poll([ext])[ext].state == JobState.FAILED
    on_node = backend.logs(ext)
    assert "== stdout.txt ==\nout line" in on_node and "== stderr.txt ==\nerr line" in on_node
    assert fake_batch.count("GET", TASKS + "/{task}/files/{file}") == 2
    fake_batch.remove_node("tvm-7")
    uploaded = backend.logs(ext)
    assert "out line" in uploaded and "err line" in uploaded
    blobs = sorted(b.name for b in service.get_container_client("logs").list_blobs())
    assert blobs == [f"run1/{task_of(ext)[1]}/stderr.txt", f"run1/{task_of(ext)[1]}/stdout.txt"]


def test_resource_file_read_sas_against_azurite(fake_batch, azurite, tmp_path):
    """A resource file's read SAS fetches the blob, as a node would before the task runs."""
    import urllib.request

    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite["connection_string"])
    box = service.get_container_client("data")
    if not box.exists():
        box.create_container()
    box.upload_blob("ref/genome.fa", b">chr1\nACGT\n", overwrite=True)
    backend = make_backend(
        fake_batch,
        tmp_path,
        blob_endpoint=azurite["endpoint"],
        storage_key=azurite["key"],
        output_files_auth="sas",
        resource_files=[{"source": "az://data/ref/genome.fa", "file_path": "genome.fa"}],
    )
    ext = submit(backend, 1)
    (res,) = fake_batch.task(*task_of(ext)).body["resourceFiles"]
    assert parse_qs(urlparse(res["httpUrl"]).query)["sp"] == ["r"]
    assert urllib.request.urlopen(res["httpUrl"], timeout=10).read() == b">chr1\nACGT\n"


class StaticToken:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("fake-arm-token", 4102444800)

    def get_token_info(self, *scopes, **kwargs):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("fake-arm-token", 4102444800)


def test_status_details_show_pool_state_and_autoscale_errors(fake_batch, monkeypatch):
    monkeypatch.setattr(cloud, "token_credential", lambda environ: StaticToken())
    base = (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/cfw-ab/providers/Microsoft.Batch/"
        "batchAccounts/acct/pools"
    )
    fake_batch.arm[f"{base}/standard-d4s-v3"] = {
        "id": f"{base}/standard-d4s-v3",
        "name": "standard-d4s-v3",
        "properties": {
            "vmSize": "STANDARD_D4S_V3",
            "allocationState": "Resizing",
            "currentDedicatedNodes": 2,
            "currentLowPriorityNodes": 0,
            "scaleSettings": {"autoScale": {"formula": "x", "evaluationInterval": "PT5M"}},
            "autoScaleRun": {
                "evaluationTime": "2026-01-01T00:00:00Z",
                "error": {"code": "AutoScaleFormulaEvaluationError", "message": "formula failed"},
            },
            "resizeOperationStatus": {
                "errors": [
                    {"code": "AccountCoreQuotaReached", "message": "core quota of 20 reached"}
                ]
            },
        },
    }
    cfg = AzureBatchConfig(
        name="ab", region="westeurope", pools=POOLS, arm_endpoint=fake_batch.base_url
    )
    outputs = {
        "subscription_id": "00000000-0000-0000-0000-000000000001",
        "resource_group_name": "cfw-ab",
        "batch_account_name": "acct",
        "batch_pool_ids": ["standard-d4s-v3", "standard-e16s-v3"],
    }
    details = KIND.status_details(cfg, outputs)
    d4 = details["pool standard-d4s-v3"]
    assert "allocation Resizing" in d4 and "nodes 2 dedicated + 0 low-priority" in d4
    assert "autoscale every 5 min" in d4
    assert "AccountCoreQuotaReached: core quota of 20 reached" in d4
    assert "AutoScaleFormulaEvaluationError" in d4
    assert details["pool standard-e16s-v3"].startswith("missing")
    assert fake_batch.count("GET", "arm") == 2  # one GET per pool


def test_leftovers_lists_what_still_carries_the_id(fake_batch, monkeypatch):
    monkeypatch.setattr(cloud, "token_credential", lambda environ: StaticToken())
    fake_batch.arm["/subscriptions/00000000-0000-0000-0000-000000000001/resources"] = {
        "value": [
            {
                "id": f"/subscriptions/{SUB}/resourceGroups/cfw-ab/providers/Microsoft.Batch/"
                "batchAccounts/acct"
            }
        ]
    }
    cfg = AzureBatchConfig(
        name="ab", region="westeurope", subscription_id=SUB, arm_endpoint=fake_batch.base_url
    )
    left = KIND.leftovers(cfg, identity("ab", "azure-batch"), {}, {})
    assert left == [
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/cfw-ab/providers/Microsoft.Batch/batchAccounts/acct"
    ]
    queries = [
        parse_qs(urlparse(u).query)
        for m, u, _ in fake_batch.requests
        if u.startswith("/subscriptions/00000000-0000-0000-0000-000000000001/")
    ]
    assert (
        all(q["$filter"] == ["tagName eq 'cfw-id' and tagValue eq 'ab-0a1b2c'"] for q in queries)
        and len(queries) == 2
    )


class NoCredential:
    def get_token(self, *scopes, **kwargs):
        from azure.identity import CredentialUnavailableError

        raise CredentialUnavailableError("no credential in this environment")

    get_token_info = get_token


def test_status_and_leftovers_without_credentials_say_so(fake_batch, monkeypatch):
    from cfw.core.errors import WorkFailed

    monkeypatch.setattr(cloud, "token_credential", lambda environ: NoCredential())
    cfg = AzureBatchConfig(name="ab", region="westeurope", arm_endpoint=fake_batch.base_url)
    outputs = {
        "subscription_id": "00000000-0000-0000-0000-000000000001",
        "resource_group_name": "cfw-ab",
        "batch_account_name": "acct",
        "batch_pool_ids": ["standard-d4s-v3"],
    }
    details = KIND.status_details(cfg, outputs)
    assert details == {"pools": details["pools"]} and "az login" in details["pools"]
    with pytest.raises(WorkFailed, match="could not list what is left of ab-0a1b2c"):
        KIND.leftovers(cfg, identity("ab", "azure-batch"), outputs, {})
    assert fake_batch.count("GET", "arm") == 0
