"""Kind tibanna without AWS: translate (JobSpec -> Tibanna input), Tibanna's own validation
of it for a matrix of resources, execution status -> Snakemake outcome, the Lambda zip,
config mistakes, and secrets kept out of the input."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile

import pytest

from cfw.backends.base import EnvContext, JobSpec, JobState
from cfw.backends.registry import get_kind
from cfw.backends.tibanna import lambda_zip
from cfw.backends.tibanna.status import EXECUTION_STATES, status_of
from cfw.backends.tibanna.translate import (
    PENDING_VALUE,
    jobid_of,
    resolve_instance_type,
    translate,
)
from cfw.backends.tibanna.validate import validate_input
from cfw.core.errors import UserError
from support.builders import context, job_spec

S3_ENV = (
    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY",
    "SNAKEMAKE_STORAGE_S3_SECRET_KEY",
    "SNAKEMAKE_STORAGE_S3_REGION",
)


def tib_context(**config) -> EnvContext:
    """`--explain` on an environment `tib` that is not up, in us-east-1."""
    return context("tibanna", {"region": "us-east-1", **config}, name="tib", up=False, explain=True)


def spec(**resources) -> JobSpec:
    return job_spec(env=S3_ENV, **resources)


MATRIX = [
    {},
    {"threads": 4, "mem_mb": 16000},
    {"threads": 2, "mem_mb": 3000, "machine_type": "c5"},
    {"threads": 1, "machine_type": "r5.2xlarge"},
    {"threads": 8, "mem_mb": 30000, "machine_type": "m5."},
    {"disk_mb": 200_000},
    {"disk_mb": 15_000_000, "mem_mb": 1000},
    {"preemptible": True},
    {"preemptible": True, "machine_type": "c5", "threads": 16},
    {"runtime": 90, "mem_mb": 512},
    {"threads": 96, "mem_mb": 380_000},
]


@pytest.mark.parametrize("resources", MATRIX, ids=lambda r: json.dumps(r, sort_keys=True))
def test_tibanna_accepts_the_input_for_every_resource_combination(resources):
    payload = translate(spec(**dict(resources)), tib_context())
    accepted = validate_input(payload)  # tibanna.ec2_utils.UnicornInput + its launch checks
    assert accepted["jobid"] == payload["jobid"]
    assert accepted["args"]["language"] == "shell"
    assert accepted["args"]["command"].endswith(
        "python -m snakemake --target-jobs x" + ("'" if resources.get("runtime") else "")
    )
    assert accepted["config"]["log_bucket"] == payload["config"]["log_bucket"]


def test_resources_map_to_tibanna_config():
    cfg = translate(spec(threads=4, mem_mb=16000, disk_mb=50_000), tib_context())["config"]
    assert (cfg["cpu"], cfg["mem"], cfg["ebs_size"]) == (4, 16.0, 49)
    assert "instance_type" not in cfg  # Tibanna picks the cheapest fitting types itself
    assert cfg["spot_instance"] is False and cfg["behavior_on_capacity_limit"] == "wait_and_retry"
    spot = translate(spec(preemptible=True), tib_context())["config"]
    assert (
        spot["spot_instance"] is True and spot["behavior_on_capacity_limit"] == "retry_without_spot"
    )
    waiting = translate(spec(preemptible=True), tib_context(spot_fallback=False))["config"]
    assert waiting["behavior_on_capacity_limit"] == "wait_and_retry"


def test_ebs_size_from_disk_mb_else_a_multiple_of_the_inputs_else_the_default():
    from dataclasses import replace

    ctx = tib_context(ebs_input_multiplier=3.0, default_ebs_gb=12)
    assert translate(spec(disk_mb=2048), ctx)["config"]["ebs_size"] == 2
    with_inputs = replace(spec(), input_size_mb=20 * 1024)
    assert translate(with_inputs, ctx)["config"]["ebs_size"] == 60
    assert translate(spec(), ctx)["config"]["ebs_size"] == 12


def test_family_prefix_resolves_to_the_cheapest_fitting_type():
    assert resolve_instance_type("c5", 2, 3.0) == "c5.large"  # 2 vCPU, 4 GiB >= 3 + 1 overhead
    assert resolve_instance_type("c5", 4, 3.0) == "c5.xlarge"
    assert resolve_instance_type("r5", 2, 30.0) == "r5.xlarge"  # 32 GiB
    assert resolve_instance_type("m5.4xlarge", 99, 999) == "m5.4xlarge"  # exact stays exact
    with pytest.raises(UserError, match="no c5 instance has 500 vCPUs"):
        resolve_instance_type("c5", 500, 1)
    with pytest.raises(UserError, match="neither an EC2 instance type nor a family"):
        resolve_instance_type("zz9", 1, 1)


def test_current_x86_families_resolve_to_their_cheapest_fitting_type():
    assert resolve_instance_type("m7i", 2, 3.0) == "m7i.large"  # 8 GiB
    assert resolve_instance_type("m7i", 8, 40.0) == "m7i.4xlarge"  # 2xlarge has 32 GiB < 41
    assert resolve_instance_type("c7i", 2, 3.0) == "c7i.large"  # 4 GiB >= 3 + 1
    assert resolve_instance_type("r7i", 2, 30.0) == "r7i.xlarge"  # 32 GiB
    assert resolve_instance_type("c6i", 4, 3.0) == "c6i.xlarge"
    assert resolve_instance_type("m6a", 192, 700.0) == "m6a.48xlarge"
    assert resolve_instance_type("c7a", 1, 1.0) == "c7a.medium"
    with pytest.raises(UserError, match="no m7i instance has 500 vCPUs"):
        resolve_instance_type("m7i", 500, 1)
    config = translate(spec(threads=4, mem_mb=8000, machine_type="c7i"), tib_context())["config"]
    assert config["instance_type"] == "c7i.2xlarge"  # xlarge has 8 GiB < 8 + 1
    assert validate_input(translate(spec(machine_type="m7i"), tib_context()))


@pytest.mark.parametrize("machine_type", ["m7g", "c6gn", "r8g.2xlarge", "t4g.", "a1"])
def test_arm_types_are_refused_with_a_clear_one_line_error(machine_type):
    with pytest.raises(
        UserError, match=r"is an Arm \(Graviton\) type; cfw runs Tibanna jobs on x86 only"
    ) as caught:
        translate(spec(machine_type=machine_type), tib_context())
    assert "\n" not in str(caught.value)


def test_impossible_threads_fail_at_translate_not_in_the_lambda():
    with pytest.raises(
        UserError, match="rule align: no EC2 instance type Tibanna picks from has 500 vCPUs"
    ) as caught:
        translate(spec(threads=500), tib_context())
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="has 4 vCPUs and 5001 GiB"):
        translate(spec(threads=4, mem_mb=5000 * 1024), tib_context())
    payload = translate(spec(), tib_context())
    payload["config"]["cpu"] = 500
    with pytest.raises(UserError, match="Tibanna rejects the job's input: no EC2 instance type"):
        validate_input(payload)


def test_ebs_size_counts_the_space_tibanna_adds_at_launch():
    # Tibanna adds 5 GB for the image (ebs_size_as_is false) and refuses >= 16000 GB
    with pytest.raises(UserError, match="ebs_size 15997 GB becomes a 16002 GB volume") as caught:
        translate(spec(disk_mb=15997 * 1024), tib_context())
    assert "\n" not in str(caught.value)
    assert translate(spec(disk_mb=15994 * 1024), tib_context())["config"]["ebs_size"] == 15994
    payload = translate(spec(), tib_context())
    payload["config"]["ebs_size"] = 15997
    with pytest.raises(UserError, match="Tibanna rejects the job's input: ebs_size 15997 GB"):
        validate_input(payload)
    payload["config"].update(ebs_size=15997, ebs_size_as_is=True)  # no allowance: it fits
    assert validate_input(payload)["config"]["ebs_size"] == 15997


def test_runtime_becomes_a_time_limit_and_precommand_runs_first():
    args = translate(spec(runtime=30), tib_context(precommand="export X=1"))["args"]
    assert args["command"].startswith(
        "export X=1 && timeout --signal=TERM --kill-after=60 1800 sh -c "
    )


def test_gpu_jobs_are_refused_with_a_hint():
    with pytest.raises(UserError, match="Tibanna jobs get no GPUs"):
        get_kind("tibanna").translate(spec(gpu=1), tib_context())


def test_credentials_never_reach_the_input():
    payload = translate(spec(), tib_context(pass_env=["MY_API_TOKEN", "SAMPLE_SHEET"]))
    env = payload["args"]["input_env"]
    assert set(env) == {"SNAKEMAKE_STORAGE_S3_REGION", "SAMPLE_SHEET"}
    assert all(v == PENDING_VALUE for v in env.values())
    assert "SECRET" not in json.dumps(payload) and "ACCESS_KEY" not in json.dumps(payload)


def test_jobid_is_a_valid_execution_name_per_attempt():
    from dataclasses import replace

    one = spec()
    assert jobid_of(one) == "cfw-r1-7-align-a1"
    assert jobid_of(replace(one, attempt=2)) == "cfw-r1-7-align-a2"
    long = replace(one, name="x" * 200)
    assert len(jobid_of(long)) <= 80


@pytest.mark.parametrize(
    "broken",
    [
        lambda p: p["config"].pop("log_bucket"),
        lambda p: p["args"].pop("output_S3_bucket"),
        lambda p: p["args"].pop("command"),
        lambda p: p["args"].update(input_files={"x": "not-an-s3-url"}),
        lambda p: p["config"].update(behavior_on_capacity_limit="retry_without_spot"),
        lambda p: p["config"].update(ebs_size=20000),
        lambda p: [p["config"].pop(k) for k in ("cpu", "mem")],
    ],
)
def test_tibanna_validation_rejects_broken_inputs(broken):
    payload = translate(spec(), tib_context())
    broken(payload)
    with pytest.raises(UserError, match="Tibanna rejects"):
        validate_input(payload)


def _execution_statuses() -> list[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("stepfunctions")
    return list(model.shape_for("ExecutionStatus").enum)


@pytest.mark.parametrize("status", _execution_statuses())
def test_every_step_functions_status_maps_to_a_snakemake_outcome(status):
    expected = {
        "RUNNING": JobState.RUNNING,
        "PENDING_REDRIVE": JobState.PENDING,
        "SUCCEEDED": JobState.SUCCEEDED,
        "FAILED": JobState.FAILED,
        "TIMED_OUT": JobState.FAILED,
        "ABORTED": JobState.CANCELLED,
    }
    assert status in EXECUTION_STATES, f"status {status} has no mapping"
    got = status_of(
        {
            "status": status,
            "error": "AWSEMJobErrorException",
            "cause": json.dumps({"errorMessage": "Job encountered an error"}),
        }
    )
    assert got.state == expected[status]
    if got.state == JobState.FAILED:
        assert "AWSEMJobErrorException" in got.reason and "Job encountered an error" in got.reason
    if got.state == JobState.SUCCEEDED:
        assert got.exit_code == 0


def test_a_vanished_execution_fails_the_job():
    assert status_of(None).state == JobState.FAILED


def test_lambda_zip_is_deterministic_and_has_the_handler(tmp_path):
    first = lambda_zip.build_all(tmp_path / "a")
    second = lambda_zip.build_all(tmp_path / "b")
    for fn in lambda_zip.FUNCTIONS:
        a, b = first[fn].path.read_bytes(), second[fn].path.read_bytes()
        assert a == b
        assert first[fn].sha256_b64 == base64.b64encode(hashlib.sha256(a).digest()).decode()
        with zipfile.ZipFile(first[fn].path) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            service = archive.read("service.py").decode()
            assert (
                "def handler(event, context)" in service and f"'function_name': '{fn}'" in service
            )
            assert "tibanna/ec2_utils.py" in names and "Benchmark/classes.py" in names
            assert not any(n.endswith(".pyc") for n in names)
    assert len({first[fn].sha256_b64 for fn in lambda_zip.FUNCTIONS}) == 3


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("region=mars-1", "field 'region': 'mars-1' is not valid"),
        ("data_bucket=Bad_Bucket", "field 'data_bucket'"),
        ("log_retention_days=8", "expected one of 0, 1, 3"),
        ("on_capacity_limit=retry", "field 'on_capacity_limit'"),
        ("colour=blue", "unknown field 'colour'"),
    ],
)
def test_config_mistakes_are_one_line_and_create_nothing(cfw, tmp_path, setting, message):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "tib.yaml").write_text("kind: tibanna\nregion: us-east-1\n")
    result = cfw(["up", "tib", "--yes", "--set", setting], tmp_path)
    assert result.code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".cfw" / "tib").exists()


def test_users_on_an_environment_that_is_not_up_is_a_user_mistake(cfw, tmp_path):
    result = cfw(["users", "list", "local"], tmp_path)
    assert result.code == 2 and "not up here" in result.stderr


def test_users_on_a_kind_without_users_is_a_user_mistake(cfw, tmp_path):
    assert cfw(["up", "local", "--yes"], tmp_path).code == 0  # up, but kind local has no users
    result = cfw(["users", "list", "local"], tmp_path)
    assert result.code == 2, result.output
    assert "(kind local) has no users to manage" in result.stderr
    assert "not up here" not in result.stderr


def test_up_without_credentials_stops_before_anything_is_created(cfw, tmp_path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "tib.yaml").write_text("kind: tibanna\nregion: us-east-1\n")
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_PROFILE": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "",
    }
    result = cfw(["up", "tib", "--yes"], tmp_path, env=env)
    assert result.code == 2, result.output
    assert "no AWS credentials were found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".cfw" / "tib" / "terraform.tfstate").exists()


def test_rendered_root_refers_to_its_lambda_zips_relatively(tmp_path):
    """Two checkouts of one project (a shared state used from another directory) render
    the same tfvars, so Terraform plans no Lambda redeploy; the zips sit in lambda/ next
    to each root module."""
    from cfw.backends.registry import resolve
    from cfw.orchestration.lifecycle import Lifecycle

    rendered = []
    for checkout in ("alice/project", "bob/elsewhere/project"):
        project = tmp_path / checkout
        (project / "environments").mkdir(parents=True)
        (project / "environments" / "tib.yaml").write_text("kind: tibanna\nregion: us-east-1\n")
        resolved = resolve(project, "tib", environ={})
        out = Lifecycle(project, environ={}).render_to(resolved, project / ".cfw" / "tib")
        tfvars = json.loads((out / "terraform.tfvars.json").read_text())
        for fn, package in tfvars["lambda_packages"].items():
            assert package["filename"] == f"lambda/{fn}.zip"
            data = (out / package["filename"]).read_bytes()
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            assert digest == package["source_code_hash"]
        assert '"${path.module}/${p.filename}"' in (out / "main.tf").read_text()
        rendered.append(tfvars["lambda_packages"])
    assert rendered[0] == rendered[1]


# what the aws provider says when two `up`s both create the shared table and this one lost
LOST_RACE = (
    "terraform apply failed: creating AWS DynamoDB Table (tibanna-master): operation error "
    "DynamoDB: CreateTable, https response error StatusCode: 400, RequestID: 0123, "
    "ResourceInUseException: Table already exists: tibanna-master"
)


@pytest.mark.parametrize(
    ("setting", "error", "adopts"),
    [
        ("auto", LOST_RACE, True),
        (True, LOST_RACE, False),  # told to create it: the failure stands
        ("auto", "terraform apply failed: creating IAM Role (x): AccessDenied", False),
    ],
)
def test_a_table_created_meanwhile_is_adopted_in_auto_mode(setting, error, adopts):
    from cfw.backends.tibanna.config import TibannaConfig

    kind = get_kind("tibanna")
    config = TibannaConfig.model_validate(
        {"kind": "tibanna", "region": "us-east-1", "create_dynamodb_table": setting}
    )
    said = kind.adopt_after_failure(config, error)
    assert bool(said) == adopts
    if adopts:
        assert "tibanna-master" in said and "using it" in said
