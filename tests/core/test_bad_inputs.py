"""Bad inputs are refused before any credential or network call: each is one line naming
the field and the fix, exit 2, with no credentials present, no socket opened and no file
written (issue 17, item 6)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from conftest import EXAMPLES, copy_workflow, run_cfw

CREDENTIAL_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "ARM_", "CLOUDSDK_", "GCLOUD_", "TES_")
HUGE = "100000000000000000000000"  # 10**23 MB
TES = "kind: tes\nregion: us-east-1\nallowed_cidrs: [203.0.113.7/32]\n"
GKE = "kind: gke\nproject: my-project-123\n"
GBATCH = "kind: google-batch\nproject: my-project-123\n"
AZURE = "kind: azure-batch\nsubscription_id: 00000000-0000-0000-0000-00000000aaaa\n"
AZURE += "region: westeurope\n"

# (environment name, its config file (None: none), extra args of `cfw up NAME`, what the
# one line must say)
CASES = [
    ("gke", GKE + "region: europe-west99\n", [], "field 'region': 'europe-west99'"),
    ("gke", GKE + "region: 'us central1'\n", [], "did you mean us-central1?"),
    ("gke", GKE + "authorized_networks: [10.0.0.0/33]\n", [], "'10.0.0.0/33' is not a CIDR"),
    ("gke", GKE + f"default_mem_mb: {HUGE}\n", [], "field 'default_mem_mb'"),
    ("gke", GKE + "zone: us-central1-zz\n", [], "field 'zone'"),
    ("gke", None, ["--set", "region=europe-west99"], "not a Google Cloud region"),
    ("azure-batch", AZURE + "tenant_id: not-a-guid\n", [], "field 'tenant_id'"),
    (
        "azure-batch",
        "kind: azure-batch\nsubscription_id: not-a-guid\n",
        [],
        "field 'subscription_id': 'not-a-guid' is not valid: expected the subscription's GUID",
    ),
    ("azure-batch", AZURE.replace("westeurope", "westeurope99"), [], "did you mean westeurope?"),
    ("azure-batch", AZURE + "pools: [{vm_size: 'D4; rm -rf /'}]\n", [], "pools[0].vm_size"),
    (
        "azure-batch",
        AZURE + f"pools: [{{vm_size: Standard_D4s_v3, memory_mb: {HUGE}}}]\n",
        [],
        "memory_mb",
    ),
    ("google-batch", GBATCH + "region: europe-west99\n", [], "not a Google Cloud region"),
    ("google-batch", GBATCH + "subnet_cidr: 10.0.0.0/33\n", [], "field 'subnet_cidr'"),
    ("tes", TES + "instance_type: t3.gigantic\n", [], "'t3.gigantic' is not valid: not an EC2"),
    ("tes", TES + "instance_type: 't3.small; rm -rf /'\n", [], "field 'instance_type'"),
    ("tes", TES.replace("us-east-1", "us-east-9"), [], "not an AWS region"),
    ("tes", TES.replace("/32", "/40"), [], "'203.0.113.7/40' is not a CIDR block"),
    ("tes", TES + "batch: {instance_types: [m5.huge]}\n", [], "batch.instance_types"),
    ("tes", TES + "vpc_id: my-vpc\n", [], "field 'vpc_id'"),
    (
        "tibanna",
        f"kind: tibanna\nregion: us-east-1\ndefault_mem_mb: {HUGE}\n",
        [],
        "default_mem_mb",
    ),
    (
        "tibanna",
        "kind: tibanna\nregion: us-east-1\ncreate_dynamodb_table: maybe\n",
        [],
        "field 'create_dynamodb_table': 'maybe' is not allowed; expected 'auto' or true or false",
    ),
    ("tibanna", "kind: tibanna\nregion: xx-east-1\n", [], "field 'region': 'xx-east-1'"),
    ("tibanna", None, ["--region", "eu-west-99"], "not an AWS region"),
    (
        "kubernetes",
        f"kind: kubernetes\nstorage: {{prefix: 's3://bucket/cfw'}}\ndefault_mem_mb: {HUGE}\n",
        [],
        "field 'default_mem_mb'",
    ),
    ("local", "kind: local\nname: lökal\n", [], "field 'name': 'lökal' is not a valid"),
    ("local", b"\x00\x01\xff\xfe\x89PNG", [], "is not a text file"),
    ("local", "kind: local\nlabels: {a: " + "x" * 5_000_000 + "}\n", [], "(5000002 characters)"),
    ("local", None, ["--set", "labels.a=" + "y" * 100_000], "(100002 characters)"),
]


@pytest.fixture
def no_credentials_no_network(tmp_path, monkeypatch):
    """No cloud credentials anywhere cfw could find them, and any socket use fails."""
    for key in list(os.environ):
        if key.startswith(CREDENTIAL_PREFIXES):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "none"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network call before the config was checked: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def cfw_in_process(args: list[str], capsys) -> tuple[int, str]:
    from cfw.cli import main

    with pytest.raises(SystemExit) as stop:
        main(args)
    return stop.value.code, capsys.readouterr().err


def the_one_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err[:2000]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[:2000]
    assert "Traceback" not in err and "internal error" not in err
    assert len(lines[0]) < 500, lines[0][:600]  # echoed values are shortened
    return lines[0]


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("name", "config", "extra", "fragment"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_config_is_one_line_before_credentials(
    name, config, extra, fragment, tmp_path, monkeypatch, capsys, no_credentials_no_network
):
    project = tmp_path / "project"
    (project / "environments").mkdir(parents=True)
    if config is not None:
        path = project / "environments" / f"{name}.yaml"
        path.write_bytes(config if isinstance(config, bytes) else config.encode())
    monkeypatch.chdir(project)
    before = files_under(project)
    line = the_one_line(*cfw_in_process(["up", name, "--yes", *extra], capsys))
    assert fragment in line
    assert "no credentials" not in line and "credentials were found" not in line
    assert files_under(project) == before  # nothing written, nothing half-created


def test_jobs_zero_is_refused(tmp_path, monkeypatch, capsys):
    copy_workflow(EXAMPLES / "quickstart", tmp_path / "wf")
    monkeypatch.chdir(tmp_path / "wf")
    for args in (["--jobs", "0"], ["-j", "-3"], ["--cores", "0"]):
        line = the_one_line(*cfw_in_process(["run", *args], capsys))
        assert "must be a whole number from 1" in line
    assert not (tmp_path / "wf" / ".cfw").exists()


def test_a_busy_up_with_set_changes_no_file(tmp_path, monkeypatch, capsys):
    """`cfw up local --set ...` while another cfw holds the environment: refused, and
    neither the config file nor the record is written."""
    from cfw.backends.registry import resolve
    from cfw.core.state import EnvState
    from cfw.orchestration.lifecycle import new_identity, new_meta

    monkeypatch.chdir(tmp_path)
    resolved = resolve(tmp_path, "local")
    state = EnvState(tmp_path, "local")
    with state.lock("up"):
        state.save_meta(new_meta(resolved, new_identity(resolved, None)))
        before = files_under(tmp_path)
        code, err = cfw_in_process(["up", "local", "--yes", "--set", "ttl=8h"], capsys)
        assert code == 2 and err.strip().splitlines()[-1].startswith("error: "), err
        assert "is busy" in err and "Traceback" not in err
        assert files_under(tmp_path) == before
        assert not (tmp_path / "environments").exists()


RULES = {
    "mem": (
        "resources: mem_mb=-1",
        ["--explain"],
        "rule a (job 0): mem_mb=-1 is not a number of MB",
    ),
    "runtime": ("resources: runtime='abc'", ["--explain"], "Snakefile, line 1: Resource 'runtime'"),
    "threads": ("threads: -2", ["--explain"], "threads=-2"),
    "disk": ("resources: disk_mb='1e30'", ["--explain"], "Resource 'disk_mb' must be"),
    "run": ("resources: mem_mb=-1", [], "rule a: mem_mb=-1 is not a number of MB"),
    # a Snakefile Snakemake cannot read, on a real run: its error in one line, not its report
    "run-runtime": ("resources: runtime='abc'", [], "Snakefile, line 1: Resource 'runtime'"),
    "run-disk": ("resources: disk_mb='1e30'", [], "Resource 'disk_mb' must be"),
}


@pytest.mark.parametrize("case", list(RULES))
def test_bad_rule_resources_are_one_line_exit_2(case, tmp_path, sandbox_base):
    line, args, fragment = RULES[case]
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(
        f'rule a:\n    output: "a.txt"\n    {line}\n    shell: "echo hi > {{output}}"\n'
    )
    result = run_cfw(["run", *args], cwd=wf)
    assert result.code == 2, result.output
    errors = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert not (wf / "a.txt").exists()  # nothing ran
    if case == "run":  # a real run: the job was never started, and the run says why
        runs = list((wf / ".cfw" / "local" / "runs").glob("*/startup-error.json"))
        assert runs and "mem_mb" in json.loads(runs[0].read_text())["message"]
