"""Kind `tes`: JobSpec -> TES 1.1 task, checked against the TES OpenAPI schema and py-tes's
model classes; config mistakes; the rendered server config holds no password."""

from __future__ import annotations

import json
import socket

import pytest
import tes
import yaml
from tes.utils import unmarshal

from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.registry import resolve
from cfw.backends.tes.config import TesConfig
from cfw.backends.tes.kind import KIND, funnel_names, render_user_data, resource_prefix
from cfw.backends.tes.translate import fill_env, placeholder, translate
from cfw.core.errors import UserError
from support.builders import context, identity, job_spec
from support.tes_schema import request_errors, unknown_properties

URL_CONFIG = {
    "kind": "tes",
    "url": "https://tes.example.org",
    "storage": {"prefix": "s3://bucket/cfw"},
}
PROVISION_CONFIG = {"kind": "tes", "region": "us-east-1", "allowed_cidrs": ["203.0.113.0/24"]}

# the resource matrix (the same vocabulary every backend maps)
MATRIX = [
    {},
    {"mem_mb": 1500},
    {"mem_mb": 64000, "disk_mb": 200000, "runtime": 90},
    {"disk_mb": 1},
    {"preemptible": True},
    {"machine_type": "c5"},
    {"gpu": 2, "gpu_model": "nvidia-tesla-t4"},
    {"nvidia_gpu": 1, "mem_mb": "2048"},
    {"mem_mb": 3500, "disk_mb": 10000, "preemptible": "yes", "machine_type": "m5.2xlarge"},
]
THREADS = [1, 4, 96]


def ctx_for(data: dict) -> EnvContext:
    """A run on environment `tes` before `up` (placeholders for what only `up` knows)."""
    return context("tes", data, up=False, env="tes-0a1b2c", run_id="run1")


def spec_for(resources: dict, threads: int = 1, env: tuple[str, ...] = ()) -> JobSpec:
    """A second attempt of count_bases for sample alpha, as the executor gives it."""
    return job_spec(
        "count_bases",
        run_id="run1",
        command="python -m snakemake --deploy-sources 's3://b/x.tar.xz' abc && "
        "python -m snakemake --target-jobs 'count_bases:sample=alpha'",
        threads=threads,
        env=env,
        attempt=2,
        wildcards={"sample": "alpha"},
        **resources,
    )


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("resources", MATRIX, ids=[json.dumps(m) for m in MATRIX])
@pytest.mark.parametrize("config", [URL_CONFIG, PROVISION_CONFIG], ids=["url", "provisioned"])
def test_task_is_valid_tes_1_1(config, resources, threads):
    env = ("SNAKEMAKE_STORAGE_S3_ENDPOINT_URL", "SNAKEMAKE_STORAGE_S3_SECRET_KEY")
    task = translate(spec_for(resources, threads, env), ctx_for(config))
    assert request_errors(task) == []
    assert unknown_properties(task) == []
    model = unmarshal(task, tes.Task)  # py-tes's own model classes accept it, losslessly
    assert model.is_valid() == (True, None)
    assert json.loads(model.as_json()) == task


def test_resources_are_mapped():
    spec = spec_for(
        {
            "mem_mb": 3500,
            "disk_mb": 10000,
            "preemptible": True,
            "machine_type": "m5.2xlarge",
            "gpu": 1,
        },
        threads=4,
    )
    res = translate(spec, ctx_for(URL_CONFIG))["resources"]
    assert res == {
        "cpu_cores": 4,
        "ram_gb": 3.5,
        "disk_gb": 10.0,
        "preemptible": True,
        "backend_parameters": {"machine_type": "m5.2xlarge", "gpu": "1"},
    }
    bare = translate(spec_for({}), ctx_for({**URL_CONFIG, "zones": ["us-east-1a"]}))["resources"]
    assert bare == {"cpu_cores": 1, "preemptible": False, "zones": ["us-east-1a"]}


def test_task_runs_the_job_command_with_tags_of_run_and_job():
    spec = spec_for({})
    task = translate(spec, ctx_for(URL_CONFIG))
    executor = task["executors"][0]
    assert executor["image"] == "snakemake/snakemake:v9.27.1"
    assert executor["command"] == ["/bin/bash", "-c", spec.command]
    assert executor["workdir"] in task["volumes"]
    assert task["tags"] == {
        "cfw-run": "run1",
        "cfw-job": "7",
        "cfw-rule": "count_bases",
        "cfw-attempt": "2",
        "cfw-env": "tes",
        "cfw-id": "tes-0a1b2c",
    }
    assert task["name"] == spec.name


def test_credentials_are_withheld_unless_asked_and_values_come_at_submission():
    names = (
        "SNAKEMAKE_STORAGE_S3_ACCESS_KEY",
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY",
        "SNAKEMAKE_STORAGE_S3_TOKEN",
        "SNAKEMAKE_STORAGE_S3_REGION",
        "MY_DB_PASSWORD",
        "GREETING",
    )
    values = {n: f"value-of-{n}" for n in names}
    task = translate(spec_for({}, env=names), ctx_for(URL_CONFIG))
    env = task["executors"][0]["env"]
    assert set(env) == {"HOME", "TMPDIR", "SNAKEMAKE_STORAGE_S3_REGION", "GREETING"}
    assert env["GREETING"] == placeholder("GREETING")  # the payload has no value
    assert not any(v.startswith("value-of-") for v in env.values())
    filled = fill_env(task, values)["executors"][0]["env"]
    assert filled["GREETING"] == "value-of-GREETING"
    assert "SNAKEMAKE_STORAGE_S3_SECRET_KEY" not in filled
    assert task["executors"][0]["env"]["GREETING"] == placeholder("GREETING")  # untouched

    opted = {**URL_CONFIG, "storage": {"prefix": "s3://b/p", "pass_credentials": True}}
    filled = fill_env(translate(spec_for({}, env=names), ctx_for(opted)), values)
    assert (
        filled["executors"][0]["env"]["SNAKEMAKE_STORAGE_S3_SECRET_KEY"]
        == "value-of-SNAKEMAKE_STORAGE_S3_SECRET_KEY"
    )
    # a name with no value at submission is dropped, not sent as its placeholder
    assert "GREETING" not in fill_env(task, {})["executors"][0]["env"]


def test_translate_needs_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("translate opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    task = KIND.translate(spec_for({"mem_mb": 100}), ctx_for(PROVISION_CONFIG))
    assert task["resources"]["ram_gb"] == 0.1


MISTAKES = [
    ({"kind": "tes", "region": "us-east-1"}, ["allowed_cidrs", "203.0.113.7/32"]),
    (
        {**PROVISION_CONFIG, "allowed_cidrs": ["10.0.0.1/8"]},
        ["allowed_cidrs", "10.0.0.1/8", "CIDR"],
    ),
    (
        {**URL_CONFIG, "allowed_cidrs": ["10.0.0.0/8"]},
        ["url means an existing server", "allowed_cidrs"],
    ),
    ({"kind": "tes", "url": "https://x.org"}, ["storage.prefix"]),
    ({**URL_CONFIG, "url": "ftp://x"}, ["field 'url'", "http:// or https://"]),
    ({**URL_CONFIG, "url": "https://me:pw@x.org"}, ["field 'url'", "no credentials in the URL"]),
    (
        {**PROVISION_CONFIG, "credentials_store": "vault"},
        ["credentials_store", "'secretsmanager' or 'ssm'"],
    ),
    ({**PROVISION_CONFIG, "users": ["Alice"]}, ["users", "lowercase"]),
    ({**PROVISION_CONFIG, "region": "mars"}, ["field 'region'", "us-east-1"]),
    (
        {**PROVISION_CONFIG, "batch": {"max_vcpus": 0}},
        ["batch.max_vcpus", "greater than or equal to 1"],
    ),
    (
        {**PROVISION_CONFIG, "storage": {"prefix": "s3://b"}},
        ["storage.prefix applies with url only"],
    ),
    ({**URL_CONFIG, "page_size": 5000}, ["page_size", "less than or equal to 2047"]),
]


@pytest.mark.parametrize(("data", "fragments"), MISTAKES, ids=[m[1][0] for m in MISTAKES])
def test_config_mistakes_are_one_line(tmp_path, data, fragments):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "t.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(UserError) as caught:
        resolve(tmp_path, "t", environ={})
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_region_is_checked_before_anything_is_created():
    config = TesConfig.model_validate({"kind": "tes", "allowed_cidrs": ["203.0.113.0/24"]})
    with pytest.raises(UserError, match="needs an AWS region"):
        KIND.preflight(config, {})
    assert KIND.defaults({"AWS_REGION": "eu-west-1"}) == {"region": "eu-west-1"}


def test_rendered_server_config_has_no_password_and_matches_the_module_names():
    config = TesConfig.model_validate(
        {**PROVISION_CONFIG, "users": ["cfw", "alice"], "credentials_store": "ssm"}
    )
    ident = identity("tes")
    user_data = render_user_data(config, ident)
    assert user_data.startswith(
        "#cloud-config\n# generated by cfw from templates/tes/cloud-init.yaml.j2"
    )
    doc = yaml.safe_load(user_data)
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    funnel = yaml.safe_load(files["/etc/funnel/funnel.yml.in"])
    assert [u["Password"] for u in funnel["Server"]["BasicAuth"]] == [
        "@@PASSWORD:cfw@@",
        "@@PASSWORD:alice@@",
    ]
    names = funnel_names(config, resource_prefix("tes-0a1b2c"))
    assert funnel["DynamoDB"]["TableBasename"] == names["table_basename"] == "cfw-tes-0a1b2c-funnel"
    assert funnel["AWSBatch"]["JobQueue"] == "cfw-tes-0a1b2c-queue"
    assert funnel["AWSBatch"]["JobDefinition"] == "cfw-tes-0a1b2c-worker"
    assert names["secret_names"] == {
        "cfw": "/cfw-tes-0a1b2c/funnel/users/cfw",
        "alice": "/cfw-tes-0a1b2c/funnel/users/alice",
    }
    compile(files["/usr/local/libexec/cfw-funnel-setup.py"], "setup", "exec")
    assert (
        "funnel server run --config /etc/funnel/funnel.yml"
        in files["/etc/systemd/system/funnel.service"]
    )
    assert len(user_data) < 16384  # EC2's limit


def test_a_config_without_region_takes_aws_region(tmp_path, monkeypatch):
    """environments/tes.yaml without region: provisions in AWS_REGION, as with no file."""
    from cfw.backends.kind import Identity
    from cfw.core.state import now

    config = TesConfig.model_validate({"kind": "tes", "allowed_cidrs": ["203.0.113.0/24"]})
    KIND.preflight(config, {"AWS_REGION": "eu-west-1"})  # no "needs an AWS region"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    ident = Identity("tes", "tes", "tes-abc123", now(), None)
    assert KIND.tfvars(config, ident, tmp_path)["region"] == "eu-west-1"
    assert KIND.price_region(config) == "eu-west-1"
