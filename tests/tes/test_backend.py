"""Kind `tes`: the backend (py-tes) against a TES server on 127.0.0.1 that behaves like one
(tests/support/tes_server.py): authentication, CreateTask, ListTasks with the MINIMAL view,
the run's tag filter and page tokens (API calls counted), every TES state, logs from the
FULL view, idempotent CancelTask."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from cfw.backends.base import EnvContext, JobState
from cfw.backends.tes.backend import TesBackend
from cfw.backends.tes.client import plain_http_to_remote
from cfw.backends.tes.kind import KIND
from cfw.backends.tes.status import STATES
from cfw.core.errors import UserError, WorkFailed
from support import tls
from support.builders import context, job_spec
from support.tes_server import TesServer

USER, PASSWORD, TOKEN = "alice", "pw-Lk3vQ9zT7", "tok-8Hs2mX0pR4"
SECRET_VALUE = "s3cr3t-Storage-Key-9931"


@pytest.fixture
def server():
    with TesServer(users={USER: PASSWORD}, tokens={TOKEN}) as srv:
        yield srv


@pytest.fixture
def creds(monkeypatch):
    for name in ("TES_TOKEN", "FUNNEL_SERVER_USER", "FUNNEL_SERVER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FUNNEL_SERVER_USER", USER)
    monkeypatch.setenv("FUNNEL_SERVER_PASSWORD", PASSWORD)


def make_ctx(url: str, tmp_path: Path, run_id: str = "run1", **config) -> EnvContext:
    """A run on environment `tes`, an existing server at ``url`` (kind tes with url:)."""
    return context(
        "tes",
        {"url": url, "storage": {"prefix": "s3://bucket/cfw"}, **config},
        outputs={"tes_url": url, "storage_prefix": "s3://bucket/cfw"},
        state_dir=tmp_path,
        run_id=run_id,
    )


def submit(backend: TesBackend, jobid: int, secrets=None, env=()) -> str:
    job = job_spec(
        "work", jobid, run_id=backend.ctx.run_id, command=f"echo job {jobid}", env=env, mem_mb=500
    )
    return backend.submit(job, KIND.translate(job, backend.ctx), secrets or {})


# -- authentication ---------------------------------------------------------------------------
def test_no_credentials_is_a_user_error_before_anything_is_submitted(server, tmp_path, monkeypatch):
    for name in ("TES_TOKEN", "FUNNEL_SERVER_USER", "FUNNEL_SERVER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match=r"requires credentials .*HTTP 401") as caught:
        TesBackend(make_ctx(server.url, tmp_path))
    assert "TES_TOKEN" in str(caught.value)
    assert server.count("CreateTask") == 0


def test_wrong_password_is_rejected(server, tmp_path, monkeypatch, creds):
    monkeypatch.setenv("FUNNEL_SERVER_PASSWORD", "wrong-password")
    with pytest.raises(UserError, match="rejected the credentials") as caught:
        TesBackend(make_ctx(server.url, tmp_path))
    assert "wrong-password" not in str(caught.value)


def test_bearer_token_wins_and_basic_auth_works(server, tmp_path, monkeypatch, creds):
    TesBackend(make_ctx(server.url, tmp_path))
    assert server.requests[-1].user == USER
    monkeypatch.setenv("TES_TOKEN", TOKEN)
    backend = TesBackend(make_ctx(server.url, tmp_path))
    assert backend.api.auth.source == "TES_TOKEN"
    assert server.requests[-1].user == "bearer"


def test_password_without_user_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FUNNEL_SERVER_USER", raising=False)
    monkeypatch.delenv("TES_TOKEN", raising=False)
    monkeypatch.setenv("FUNNEL_SERVER_PASSWORD", "x")
    with pytest.raises(UserError, match="FUNNEL_SERVER_USER is not"):
        TesBackend(make_ctx("http://127.0.0.1:9", tmp_path))


def test_plain_http_is_flagged_only_off_this_machine():
    assert plain_http_to_remote("http://tes.example.org")
    assert not plain_http_to_remote("http://127.0.0.1:8000")
    assert not plain_http_to_remote("http://localhost:8000")
    assert not plain_http_to_remote("https://tes.example.org")


# -- submit and poll ----------------------------------------------------------------------------
@pytest.mark.parametrize(("jobs", "page_size"), [(1, 256), (5, 2), (7, 3), (6, 6)])
def test_poll_is_one_listtasks_per_page_minimal_view_tag_filter(
    server, tmp_path, creds, jobs, page_size
):
    other = TesBackend(make_ctx(server.url, tmp_path, run_id="otherrun"))
    for i in range(4):  # another run's tasks on the same server: filtered out by tags
        submit(other, 100 + i)
    backend = TesBackend(make_ctx(server.url, tmp_path, page_size=page_size))
    ids = [submit(backend, i) for i in range(jobs)]
    before = server.count("ListTasks")
    for _cycle in range(3):
        statuses = backend.poll(ids)
        assert set(statuses) == set(ids)
        assert all(s.state == JobState.PENDING for s in statuses.values())
    pages = math.ceil(jobs / page_size)
    assert server.count("ListTasks") - before == 3 * pages
    assert server.count("GetTask") == 0
    listing = [r for r in server.requests if r.operation == "ListTasks"][-1]
    assert listing.params["view"] == ["MINIMAL"]
    assert dict(zip(listing.params["tag_key"], listing.params["tag_value"], strict=True)) == {
        "cfw-run": "run1",
        "cfw-id": "tes-0a1b2c",
    }


def test_poll_stops_paging_once_every_task_is_seen(server, tmp_path, creds):
    backend = TesBackend(make_ctx(server.url, tmp_path, page_size=2))
    ids = [submit(backend, i) for i in range(6)]  # newest first: the last two are on page 1
    before = server.count("ListTasks")
    assert set(backend.poll(ids[-2:])) == set(ids[-2:])
    assert server.count("ListTasks") - before == 1


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_tes_state_maps_to_a_snakemake_outcome(server, tmp_path, creds, state):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    task_id = submit(backend, 1)
    server.set_state(task_id, state)
    status = backend.poll([task_id])[task_id]
    expected = {
        "UNKNOWN": JobState.PENDING,
        "QUEUED": JobState.PENDING,
        "INITIALIZING": JobState.PENDING,
        "RUNNING": JobState.RUNNING,
        "PAUSED": JobState.RUNNING,
        "COMPLETE": JobState.SUCCEEDED,
        "EXECUTOR_ERROR": JobState.FAILED,
        "SYSTEM_ERROR": JobState.FAILED,
        "PREEMPTED": JobState.PREEMPTED,  # resubmitted, not failed (executor/retry.py)
        "CANCELING": JobState.CANCELLED,
        "CANCELED": JobState.CANCELLED,
    }[state]
    assert status.state == expected
    # the executor reports success for SUCCEEDED, resubmits PREEMPTED, reports an error
    # for any other finished state, and keeps waiting otherwise
    assert status.state.finished == (
        state
        in {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "PREEMPTED", "CANCELING", "CANCELED"}
    )
    if status.state in (JobState.FAILED, JobState.CANCELLED, JobState.PREEMPTED):
        assert state in status.reason


def test_a_task_the_server_forgot_fails_after_a_lookup(server, tmp_path, creds):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    task_id = submit(backend, 1)
    with server.lock:
        server.order.remove(task_id)
        del server.tasks[task_id]
    status = backend.poll([task_id])[task_id]  # not listed: asked for by id in the same poll
    assert status.state == JobState.FAILED and "no longer knows" in status.reason
    assert server.count("GetTask") == 1


# -- a server that pages before it filters (Funnel's DynamoDB backend) -----------------------
def test_the_funnel_dynamodb_model_ends_paging_early(tmp_path, creds):
    """The test server's model of Funnel's DynamoDB ListTasks: page_size tasks are read
    before the tag filter, and a page with none of this run's tasks has no token."""
    with TesServer(users={USER: PASSWORD}, funnel_dynamodb_paging=True) as srv:
        backend = TesBackend(make_ctx(srv.url, tmp_path, page_size=3))
        ours = [submit(backend, i) for i in range(2)]
        other = TesBackend(make_ctx(srv.url, tmp_path, run_id="otherrun"))
        for i in range(4):
            submit(other, 100 + i)
        tasks, token = backend.api.list_page(tags=backend.tags, page_size=3)
        assert tasks == [] and token is None  # 3 of the other run's read, none returned
        everything, token = backend.api.list_page(tags={}, page_size=3)
        assert len(everything) == 3 and token == everything[-1].id
        tasks, token = backend.api.list_page(tags=backend.tags, page_size=3, page_token=token)
        assert [t.id for t in tasks] == ours[::-1] and token == ours[0]  # 3 read, 2 returned
        tasks, token = backend.api.list_page(tags=backend.tags, page_size=3, page_token=token)
        assert tasks == [] and token is None


def test_every_final_state_is_reported_on_funnel_dynamodb_with_bounded_calls(tmp_path, creds):
    with TesServer(users={USER: PASSWORD}, funnel_dynamodb_paging=True) as srv:
        backend = TesBackend(make_ctx(srv.url, tmp_path, page_size=3))
        other = TesBackend(make_ctx(srv.url, tmp_path, run_id="otherrun"))
        older = [submit(backend, i) for i in range(5)]
        for i in range(10):  # newer tasks of another run hide the older ones from the pages
            submit(other, 100 + i)
        newer = [submit(backend, i) for i in range(5, 7)]
        ids = older + newer
        finals = {tid: "COMPLETE" for tid in ids}
        finals[older[0]] = "EXECUTOR_ERROR"
        finals[newer[0]] = "SYSTEM_ERROR"
        active, seen, polls = list(ids), {}, 0
        for step, tid in enumerate(ids):  # one task finishes between polls
            srv.set_state(tid, finals[tid])
            lists, gets = srv.count("ListTasks"), srv.count("GetTask")
            statuses = backend.poll(active)
            polls += 1
            assert set(statuses) == set(active)  # every job has a state after each poll
            # page 1: the two newer tasks and a token; page 2: empty, no token; then GetTask
            # for exactly the tasks the pages did not reach
            assert srv.count("ListTasks") - lists <= 2
            assert srv.count("GetTask") - gets == len([t for t in active if t in older])
            for done in [t for t in active if statuses[t].state.finished]:
                seen[done] = statuses[done]
                active.remove(done)
            assert len(seen) == step + 1  # reported in the poll right after it finished
        assert not active and polls == len(ids)
        assert {tid: s.state for tid, s in seen.items()} == {
            tid: STATES[state].state for tid, state in finals.items()
        }
        assert srv.count("GetTask") <= 5 * len(ids)  # bounded: never more than once per poll


# -- credentials rejected, server failing ----------------------------------------------------
REJECTED = (
    "TES server rejected the credentials (HTTP {}): "
    "set TES_TOKEN or FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD"
)


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_rejected_mid_run_fail_every_job_clearly(server, tmp_path, creds, status):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    ids = [submit(backend, i) for i in range(3)]
    assert {s.state for s in backend.poll(ids).values()} == {JobState.PENDING}
    if status == 401:
        server.users = {USER: "rotated-password"}  # the server's credentials changed
    else:
        server.fault = 403
    statuses = backend.poll(ids)
    assert set(statuses) == set(ids)
    for got in statuses.values():
        assert got.state == JobState.FAILED and got.state.finished
        assert got.reason == REJECTED.format(status)
    assert PASSWORD not in REJECTED


def test_credentials_rejected_on_a_lookup_fail_every_job(tmp_path, creds):
    with TesServer(users={USER: PASSWORD}, funnel_dynamodb_paging=True) as srv:
        backend = TesBackend(make_ctx(srv.url, tmp_path, page_size=1))
        ids = [submit(backend, i) for i in range(2)]
        backend.api.list_page = lambda **_: ([], None)  # the listing reaches none of them
        srv.fault = 401
        statuses = backend.poll(ids)
        assert {s.reason for s in statuses.values()} == {REJECTED.format(401)}
        assert srv.count("GetTask") == 1  # stopped at the first rejection


def test_a_failing_server_means_try_again(server, tmp_path, creds):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    task_id = submit(backend, 1)
    server.fault = 503
    assert backend.poll([task_id]) == {}
    assert backend.poll([task_id]) == {}
    server.fault = None
    assert backend.poll([task_id])[task_id].state == JobState.PENDING


def test_logs_come_from_the_full_view_without_the_task_env(server, tmp_path, creds, monkeypatch):
    backend = TesBackend(
        make_ctx(server.url, tmp_path, storage={"prefix": "s3://b/p", "pass_credentials": True})
    )
    task_id = submit(
        backend,
        1,
        {"SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET_VALUE},
        env=("SNAKEMAKE_STORAGE_S3_SECRET_KEY",),
    )
    assert (
        server.task(task_id)["executors"][0]["env"]["SNAKEMAKE_STORAGE_S3_SECRET_KEY"]
        == SECRET_VALUE
    )
    server.set_state(
        task_id,
        "EXECUTOR_ERROR",
        exit_code=3,
        stdout="some output",
        stderr="Traceback: boom",
        system_logs=["worker: executor exited 3"],
    )
    text = backend.logs(task_id)
    assert "EXECUTOR_ERROR" in text and "exit code 3" in text
    assert (
        "Traceback: boom" in text and "some output" in text and "worker: executor exited 3" in text
    )
    assert SECRET_VALUE not in text
    assert [r.params.get("view") for r in server.requests if r.operation == "GetTask"] == [["FULL"]]


def test_cancel_is_idempotent(server, tmp_path, creds):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    running, done = submit(backend, 1), submit(backend, 2)
    server.set_state(running, "RUNNING")
    server.set_state(done, "COMPLETE")
    backend.cancel([running, done, "d0000000000000000gone"])
    assert server.task(running)["state"] == "CANCELED"
    assert server.task(done)["state"] == "COMPLETE"
    backend.cancel([running, done, "d0000000000000000gone"])  # again: nothing fails
    assert server.count("CancelTask") == 6
    assert backend.poll([running])[running].state == JobState.CANCELLED


def test_env_warning_is_said_once_and_credentials_are_not_sent(server, tmp_path, creds, caplog):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    env = ("SNAKEMAKE_STORAGE_S3_SECRET_KEY", "SNAKEMAKE_STORAGE_S3_REGION")
    values = {
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET_VALUE,
        "SNAKEMAKE_STORAGE_S3_REGION": "us-east-1",
    }
    with caplog.at_level(logging.WARNING, logger="cfw.tes"):
        ids = [submit(backend, i, values, env) for i in range(3)]
    warnings = [r.getMessage() for r in caplog.records if "not secret on TES" in r.getMessage()]
    assert len(warnings) == 1
    assert "sent: SNAKEMAKE_STORAGE_S3_REGION" in warnings[0]
    assert "withheld: SNAKEMAKE_STORAGE_S3_SECRET_KEY" in warnings[0]
    for task_id in ids:
        env_sent = server.task(task_id)["executors"][0]["env"]
        assert env_sent["SNAKEMAKE_STORAGE_S3_REGION"] == "us-east-1"
        assert "SNAKEMAKE_STORAGE_S3_SECRET_KEY" not in env_sent
    assert all(
        SECRET_VALUE not in r.getMessage() and PASSWORD not in r.getMessage()
        for r in caplog.records
    )


def test_unreachable_server_during_poll_means_try_again(server, tmp_path, creds):
    backend = TesBackend(make_ctx(server.url, tmp_path))
    task_id = submit(backend, 1)
    backend.api.base = "http://127.0.0.1:9/ga4gh/tes/v1"  # the server went away
    assert backend.poll([task_id]) == {}


# -- a provisioned server: credentials and certificate from the cloud, at run time -------------
def self_signed(tmp_path: Path, name: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, as the server's setup script makes one."""
    cert, key = tls.self_signed(tmp_path, name, common_name="funnel")
    return str(cert), str(key)


def provisioned_ctx(url: str, tmp_path: Path, store: str) -> EnvContext:
    config = {"region": "us-east-1", "allowed_cidrs": ["127.0.0.1/32"], "credentials_store": store}
    name = ("/" if store == "ssm" else "") + "cfw-tes-0a1b2c/funnel/users/cfw"
    outputs = {
        "tes_url": url,
        "region": "us-east-1",
        "basic_auth_user": "cfw",
        "basic_auth_store": store,
        "basic_auth_names": {"cfw": name},
        "tls_certificate_parameter": "/cfw-tes-0a1b2c/funnel/tls-certificate",
        "storage_prefix": "s3://cfw-tes-0a1b2c-data/cfw",
    }
    return context("tes", config, outputs=outputs, state_dir=tmp_path / "state", run_id="run1")


@pytest.mark.moto
@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_provisioned_credentials_and_pinned_certificate(aws_env, tmp_path, monkeypatch, store):
    import boto3

    for name in ("TES_TOKEN", "FUNNEL_SERVER_USER", "FUNNEL_SERVER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    cert, key = self_signed(tmp_path, "server")
    password = f"generated-{store}-Xq81"
    ssm = boto3.client("ssm", region_name="us-east-1")
    if store == "ssm":
        ssm.put_parameter(
            Name="/cfw-tes-0a1b2c/funnel/users/cfw",
            Type="SecureString",
            Value=password,
            Overwrite=True,
        )
    else:
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(Name="cfw-tes-0a1b2c/funnel/users/cfw", SecretString=password)
    parameter = "/cfw-tes-0a1b2c/funnel/tls-certificate"
    ssm.put_parameter(Name=parameter, Type="String", Value="pending", Overwrite=True)
    try:
        with TesServer(users={"cfw": password}, tls=(cert, key)) as server:
            ctx = provisioned_ctx(server.url, tmp_path, store)
            with pytest.raises(UserError, match="not published its TLS certificate yet"):
                TesBackend(ctx)  # the server is still booting
            ssm.put_parameter(
                Name=parameter, Type="String", Value=Path(cert).read_text(), Overwrite=True
            )
            backend = TesBackend(ctx)
            assert backend.api.auth.source.startswith(store)
            task_id = submit(backend, 1)
            assert server.tasks[task_id].owner == "cfw"
            assert password not in repr(backend.api.auth)
            # another certificate at the same address is refused: the pin holds
            other, _ = self_signed(tmp_path, "impostor")
            ssm.put_parameter(
                Name=parameter, Type="String", Value=Path(other).read_text(), Overwrite=True
            )
            with pytest.raises(WorkFailed, match=r"cannot reach the TES server.*TLS certificate"):
                TesBackend(ctx)
    finally:
        if store == "secretsmanager":
            sm.delete_secret(
                SecretId="cfw-tes-0a1b2c/funnel/users/cfw", ForceDeleteWithoutRecovery=True
            )
        else:
            ssm.delete_parameter(Name="/cfw-tes-0a1b2c/funnel/users/cfw")
        ssm.delete_parameter(Name=parameter)


def test_the_test_server_answers_views_and_filters_as_tes_says(server, tmp_path, creds):
    """The stand-in itself: MINIMAL is id and state, BASIC drops logs' stdout/stderr and
    system logs, FULL has everything; tag filters zip keys and values; bad tokens fail."""
    backend = TesBackend(make_ctx(server.url, tmp_path))
    task_id = submit(backend, 1)
    server.set_state(
        task_id, "EXECUTOR_ERROR", exit_code=1, stdout="out", stderr="err", system_logs=["sys"]
    )
    api = backend.api
    minimal = api.get(task_id, view="MINIMAL")
    assert (minimal.id, minimal.state, minimal.executors) == (task_id, "EXECUTOR_ERROR", None)
    basic = api.get(task_id, view="BASIC")
    assert basic.executors and basic.logs[0].logs[0].exit_code == 1
    assert basic.logs[0].logs[0].stdout is None and basic.logs[0].system_logs is None
    full = api.get(task_id, view="FULL")
    assert full.logs[0].logs[0].stderr == "err" and full.logs[0].system_logs == ["sys"]
    tasks, _ = api.list_page(tags={"cfw-run": "run1"}, view="BASIC")
    assert [t.id for t in tasks] == [task_id] and tasks[0].tags["cfw-job"] == "1"
    assert api.list_page(tags={"cfw-run": "other"})[0] == []
    assert [t.id for t in api.list_page(tags={"cfw-rule": ""})[0]] == [task_id]  # any value
    with pytest.raises(WorkFailed, match="HTTP 400"):
        api.list_page(tags={}, page_token="not-a-token")
