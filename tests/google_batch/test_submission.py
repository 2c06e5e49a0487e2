"""A google-batch run submits the CreateJobRequest message itself (Kind.submission): the
same request explain prints as JSON, without turning every job's message into JSON and
parsing it back."""

from __future__ import annotations

import json
import time

import pytest

from cfw.backends.google_batch import translate as gb_translate
from cfw.backends.google_batch.backend import GoogleBatchBackend
from cfw.backends.registry import get_kind
from support.builders import context, job_spec
from support.fake_google import PROJECT, FakeGoogle

KIND = get_kind("google-batch")
batch_v1 = gb_translate.batch_v1
SECRET = "tok-3f1e9a77c2d54b10"


def environment(tmp_path):
    return context(
        "google-batch",
        {"project": PROJECT},
        env="google-batch-0a1b2c",
        state_dir=tmp_path / ".cfw",
        run_id="01011200abcd",
    )


def spec(jobid: int, **resources):
    return job_spec(
        "count",
        jobid,
        run_id="01011200abcd",
        command="python -m snakemake",
        env=("API_TOKEN",),
        **resources,
    )


@pytest.fixture
def fake():
    server = FakeGoogle()
    yield server
    server.stop()


def test_submission_is_the_message_explain_prints(tmp_path):
    ctx = environment(tmp_path)
    for job in (spec(1), spec(2, gpu_model="nvidia-l4", runtime=30), spec(3, preemptible=True)):
        message = KIND.submission(job, ctx)
        assert isinstance(message, batch_v1.CreateJobRequest)
        printed = KIND.translate(job, ctx)
        assert message == batch_v1.CreateJobRequest.from_json(json.dumps(printed))


def test_a_run_submits_without_a_json_round_trip(fake, tmp_path, monkeypatch):
    backend = GoogleBatchBackend(environment(tmp_path), clients=fake.clients())
    try:

        def no_json(*_args, **_kwargs):
            raise AssertionError("a job went through JSON")

        monkeypatch.setattr(gb_translate, "to_json", no_json)
        monkeypatch.setattr(gb_translate, "from_json", no_json)
        jobs = [spec(i) for i in range(20)]
        started = time.process_time()
        payloads = [KIND.submission(job, backend.ctx) for job in jobs]
        per_job = (time.process_time() - started) / len(jobs)
        ids = [
            backend.submit(j, p, {"API_TOKEN": SECRET}) for j, p in zip(jobs, payloads, strict=True)
        ]
        assert fake.rpcs["CreateJob"] == 20 and len(set(ids)) == 20
        # what the service received is the request explain shows
        monkeypatch.undo()
        sent = fake.batch.jobs[ids[0].rsplit("/", 1)[-1]]
        assert sent.labels["cfw-job"] == "0"
        assert sent.task_groups[0].task_spec == payloads[0].job.task_groups[0].task_spec
        assert per_job < 5e-3  # building one job's message (a generous bound on a busy box)
    finally:
        backend.clients.close()
