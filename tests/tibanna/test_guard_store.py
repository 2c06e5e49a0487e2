"""cfw.backends._aws.store.S3Store against moto: the heartbeat store of the AWS kinds
(tibanna, tes) and of their guard's Lambda."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from cfw.backends._aws.store import S3Store, split_url
from cfw.core import heartbeat
from cfw.core.guard import GuardRecord

pytestmark = pytest.mark.moto


@pytest.fixture
def s3(aws_env):
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    name = f"cfw-store-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def test_put_get_delete_and_a_missing_key(s3, bucket):
    store = S3Store(s3, bucket)
    assert store.get("cfw/.cfw/runs/nope.json") is None
    store.delete("cfw/.cfw/runs/nope.json")  # no error
    store.put("cfw/.cfw/guard.json", b"{}\n")
    assert store.get("cfw/.cfw/guard.json") == b"{}\n"
    head = s3.head_object(Bucket=bucket, Key="cfw/.cfw/guard.json")
    assert head["ContentType"] == "application/json"
    store.delete("cfw/.cfw/guard.json")
    assert store.get("cfw/.cfw/guard.json") is None


def test_list_pages_through_every_object_with_s3s_times(s3, bucket):
    store = S3Store(s3, bucket, page_size=2)
    calls = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append(1))
    for n in range(5):
        store.put(f"p/.cfw/runs/r{n}.json", b"x")
    store.put("p/other.txt", b"x")
    before = datetime.now(UTC) - timedelta(minutes=1)
    listed = store.list("p/.cfw/runs/")
    assert [o.key for o in listed] == [f"p/.cfw/runs/r{n}.json" for n in range(5)]
    assert len(calls) == 3  # pages of two
    for info in listed:
        assert info.last_modified.tzinfo is not None
        assert before <= info.last_modified <= datetime.now(UTC) + timedelta(minutes=1)


def test_heartbeats_and_the_record_round_trip(s3, bucket):
    store = S3Store(s3, bucket)
    now = datetime.now(UTC).replace(microsecond=0)
    beat = heartbeat.start("0101120000ab", kind="tibanna", env="tib", cfw_version="1", now=now)
    heartbeat.write(store, "cfw", beat)
    store.put("cfw/.cfw/runs/0101120000cd.json", b"not json")
    [good, bad] = heartbeat.read_all(store, "cfw")
    assert good.run_id == "0101120000ab" and good.record == beat
    assert good.beat.owner == beat.owner and good.beat.updated_at == now
    assert bad.run_id == "0101120000cd" and bad.beat.problem.startswith("not JSON")
    heartbeat.remove(store, "cfw", "0101120000ab")
    assert [s.run_id for s in heartbeat.read_all(store, "cfw")] == ["0101120000cd"]
    assert heartbeat.read_record(store, "cfw") is None
    record = GuardRecord(checked_at=now, active_at=now)
    heartbeat.write_record(store, "cfw", record)
    assert heartbeat.read_record(store, "cfw") == record


def test_split_url():
    assert split_url("s3://b/cfw") == ("b", "cfw")
    assert split_url("s3://b/a/b/") == ("b", "a/b")
    assert split_url("s3://b") == ("b", "")
    for bad in ("gs://b/x", "s3:///x", "b/x"):
        with pytest.raises(ValueError, match="not an S3 URL"):
            split_url(bad)
