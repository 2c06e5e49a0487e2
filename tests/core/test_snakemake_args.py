"""`cfw run`'s Snakemake arguments: Snakemake's mistakes are one line with exit 2 before
anything runs, and secret plugin settings leave the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfw.core import snakemake_args
from cfw.core.errors import UserError
from conftest import EXAMPLES, copy_workflow, run_cfw


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    return copy_workflow(EXAMPLES / "quickstart", tmp_path / "qs")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus-flag"], "snakemake has no option '--bogus-flag'"),
        (["--jobs", "abc"], "must be integer"),
        (["--rerun-triggers", "nonsense"], "invalid choice: 'nonsense'"),
        (["--configfile", "missing.yaml"], "the config file 'missing.yaml' does not exist"),
        (["--snakefile", "nope.smk"], "the Snakefile 'nope.smk' does not exist"),
    ],
)
def test_snakemake_mistakes_are_user_errors(workflow: Path, args, message):
    with pytest.raises(UserError) as caught:
        snakemake_args.check(workflow, args)
    assert message in str(caught.value)


def test_no_snakefile_names_the_fix(tmp_path: Path):
    with pytest.raises(UserError) as caught:
        snakemake_args.check(tmp_path, [])
    assert "no Snakefile in" in caught.value.message
    assert "--snakefile" in (caught.value.hint or "")


def test_good_arguments_pass_unchanged(workflow: Path):
    args = ["-n", "--configfile", "config.yaml", "--set-resources", "gc_content:mem_mb=100"]
    assert snakemake_args.check(workflow, args).args == args
    # elsewhere with --directory: Snakemake finds the Snakefile there
    assert snakemake_args.check(workflow.parent, ["-d", str(workflow)]).args == [
        "-d",
        str(workflow),
    ]


def test_secret_settings_move_to_the_environment(workflow: Path):
    checked = snakemake_args.check(
        workflow, ["-n", "--storage-s3-secret-key", "S3CR3T-value", "--storage-s3-retries", "3"]
    )
    assert checked.args == ["-n", "--storage-s3-retries", "3"]
    assert checked.env == {"SNAKEMAKE_STORAGE_S3_SECRET_KEY": "S3CR3T-value"}
    assert checked.moved == ["--storage-s3-secret-key"]
    inline = snakemake_args.check(workflow, ["--storage-s3-secret-key=S3CR3T-value", "-n"])
    assert inline.args == ["-n"] and inline.env["SNAKEMAKE_STORAGE_S3_SECRET_KEY"]
    # tagged values move too, as the JSON list Snakemake reads back with their tags
    tagged = snakemake_args.check(
        workflow, ["--storage-s3-secret-key", "a::S3CR3T-1", "b::S3CR3T-2", "-n"]
    )
    assert tagged.args == ["-n"] and "S3CR3T" not in tagged.shown()
    assert json.loads(tagged.env["SNAKEMAKE_STORAGE_S3_SECRET_KEY"]) == [
        "a::S3CR3T-1",
        "b::S3CR3T-2",
    ]
    one = snakemake_args.check(workflow, ["--storage-s3-secret-key=t::S3CR3T-3"])
    assert one.args == [] and one.env["SNAKEMAKE_STORAGE_S3_SECRET_KEY"] == '["t::S3CR3T-3"]'


def test_snakemake_reads_tagged_values_back_from_the_environment(monkeypatch):
    """What the variable holds is what Snakemake's own parser makes of the options."""
    from snakemake.cli import get_argument_parser

    moved = snakemake_args._move_secrets(
        ["--storage-s3-secret-key", "a::S3CR3T-1", "S3CR3T-0", "--storage-s3-secret-key=b::S"]
    )
    monkeypatch.setenv(
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY", moved.env["SNAKEMAKE_STORAGE_S3_SECRET_KEY"]
    )
    parsed, _ = get_argument_parser().parse_known_args(moved.args)
    assert parsed.storage_s3_secret_key == ["a::S3CR3T-1", "S3CR3T-0", "b::S"]


def test_cfw_run_one_line_errors_and_no_secret_in_output(workflow: Path):
    bad = run_cfw(["run", "--bogus-flag"], cwd=workflow)
    assert bad.code == 2 and bad.stderr.strip().count("\n") == 0, bad.output
    assert "Traceback" not in bad.output and "usage:" not in bad.output
    missing = run_cfw(["run", "--configfile", "missing.yaml"], cwd=workflow)
    assert missing.code == 2 and "Traceback" not in missing.output
    dry = run_cfw(["run", "-n", "--storage-s3-secret-key", "S3CR3T-value-42"], cwd=workflow)
    assert dry.code == 0, dry.output
    assert "S3CR3T-value-42" not in dry.output
    assert "passed to Snakemake in its environment" in dry.stderr
    for path in (workflow / ".cfw").rglob("*"):
        if path.is_file():
            assert "S3CR3T-value-42" not in path.read_text(errors="replace"), path


PROCS_SNAKEFILE = """
import pathlib

# read at parse time, while cfw and Snakemake run: every process's command line, as ps shows
lines = []
for path in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
    try:
        lines.append(path.read_bytes().replace(b"\\0", b" ").decode(errors="replace"))
    except OSError:
        pass
pathlib.Path("procs.txt").write_text("\\n".join(lines))

localrules: all  # runs in Snakemake itself: its log is written, no job is submitted

rule all:
    output: "out.txt"
    shell: "echo hi > {output}"
"""


def test_a_tagged_secret_is_in_no_command_line_banner_or_log(tmp_path: Path):
    """`cfw run --storage-s3-secret-key TAG::VALUE`: VALUE is in no process's argv (what
    `ps` shows, read while Snakemake runs), in no line cfw or Snakemake prints (its
    `Command:` banner), and in no log or record."""
    secret = "S3CR3T-tagged-77"
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(PROCS_SNAKEFILE)
    args = ["run", "--storage-s3-secret-key", f"mytag::{secret}", "other::S3CR3T-2"]
    result = run_cfw(args, cwd=wf)
    assert result.code == 0, result.output
    assert (wf / "out.txt").exists()
    # Snakemake's processes (cfw's own command line is what the user typed)
    ours = [
        line
        for line in (wf / "procs.txt").read_text().splitlines()
        if str(wf) in line and "--executor cfw" in line
    ]
    assert ours, "no Snakemake process of this run was seen"
    assert not any("--storage-s3-secret-key" in line or "S3CR3T" in line for line in ours)
    assert "S3CR3T" not in result.output
    # Snakemake's own output (its `Command:` banner) goes, whole, to the run's snakemake.log
    [banner_log] = (wf / ".cfw").rglob("snakemake.log")
    assert "Command:" in banner_log.read_text()
    logs = list((wf / ".snakemake" / "log").glob("*.log"))
    assert logs
    for path in [*logs, *(wf / ".cfw").rglob("*")]:
        if path.is_file():
            assert "S3CR3T" not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kubernetes"], "`cfw up gke`"),
        (["--kubernetes=snakemake"], "`cfw run --env gke` (or --env kubernetes)"),
        (["--tibanna", "--tibanna-sfn", "x"], "`cfw up tibanna` and `cfw run --env tibanna`"),
        (["--google-lifesciences"], "`cfw up google-batch` and `cfw run --env google-batch`"),
        (["--google-lifesciences-regions", "us-east1"], "`cfw up google-batch`"),
        (["--az-batch"], "`cfw up azure-batch` and `cfw run --env azure-batch`"),
        (["--az-batch-account-url", "https://a.b"], "`cfw up azure-batch`"),
        (["--tes", "http://tes:8000"], "put `kind: tes` and `url: URL` in environments/tes.yaml"),
        (["--default-remote-provider", "S3"], "Snakemake 8 calls it --default-storage-provider"),
        (["--default-remote-prefix", "b/p"], "Snakemake 8 calls it --default-storage-prefix"),
    ],
)
def test_snakemake7_cloud_flags_name_cfws_way(args: list[str], says: str):
    with pytest.raises(UserError) as caught:
        snakemake_args.refuse_forbidden(["-n", *args])
    flag = args[0].split("=")[0]
    assert caught.value.message == f"{flag} is Snakemake 7's"
    assert says in caught.value.hint and caught.value.hint.startswith("with cfw: ")


def test_snakemake7_flag_on_the_command_line_is_one_line_exit_2(workflow: Path):
    result = run_cfw(["run", "--kubernetes"], cwd=workflow)
    assert result.code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: --kubernetes is Snakemake 7's — with cfw: `cfw up gke` (a new GKE cluster) or "
        "an environments/kubernetes.yaml for a cluster you have, then `cfw run --env gke` "
        "(or --env kubernetes)"
    ]
    assert not (workflow / ".cfw").exists()
