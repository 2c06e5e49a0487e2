"""modules/aws-tibanna as a plain module: canonical, documented, valid to Terraform
(init from the provider mirror, validate) as cfw renders it for the example config, and
clean to checkov but for skips that say why Tibanna needs them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support.checkov import checkov_executable, run_checkov, unreasoned
from support.render import render_example

MODULE = Path(__file__).resolve().parents[2] / "modules" / "aws-tibanna"


def test_module_is_canonical_and_documented():
    check = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", str(MODULE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (MODULE / name).exists(), name
    readme = (MODULE / "README.md").read_text()
    assert 'source = "' in readme and "public-access block" in readme
    variables = (MODULE / "variables.tf").read_text()
    for block in re.findall(r'variable "[^"]+" \{\n(.*?)\n\}', variables, re.S):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        assert lines[0].startswith("type"), block
        assert any(line.startswith("description") for line in lines), block


def test_module_never_removes_a_public_access_block():
    text = "\n".join(p.read_text() for p in MODULE.glob("*.tf"))
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert re.search(rf"{setting}\s*=\s*true", text), setting
    assert "AmazonEC2FullAccess" not in re.sub(r"#.*", "", text)  # least privilege


def test_rendered_root_validates_with_the_mirror(tmp_path):
    out = render_example("tibanna", tmp_path / "tibanna")
    for args in (
        ["init", "-backend=false", "-input=false", "-no-color"],
        ["validate", "-no-color"],
    ):
        proc = subprocess.run(
            ["terraform", *args], cwd=out, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_buckets_accept_the_canned_acl_tibanna_writes_postrun_json_with():
    """Tibanna puts <jobid>.postrun.json with ACL='private' (check_task, awsf3): the buckets
    must keep ACLs on (not BucketOwnerEnforced) and the bucket policy must allow
    s3:PutObjectAcl; the public-access block stays fully on (tested above)."""
    main = re.sub(r"#.*", "", (MODULE / "main.tf").read_text())
    assert "BucketOwnerEnforced" not in main
    ownership = re.search(r'"aws_s3_bucket_ownership_controls" "bucket" \{(.*?)\n\}', main, re.S)
    assert ownership and 'object_ownership = "BucketOwnerPreferred"' in ownership.group(1)
    iam = (MODULE / "iam.tf").read_text()
    bucket_policy = re.search(r'data "aws_iam_policy_document" "bucket" \{(.*?)\n\}', iam, re.S)
    assert bucket_policy and '"s3:PutObjectAcl"' in bucket_policy.group(1)


def test_checkov_is_clean_or_skipped_inline_with_a_reason():
    report = run_checkov(checkov_executable(), MODULE)
    assert unreasoned(report, MODULE) == []
    assert report["summary"]["passed"] > 200
    # the fixes checkov asked for, not skips: EC2 writes confined to the unicorn's region,
    # dashboards read by name, abandoned multipart uploads of the data bucket aborted
    iam = (MODULE / "iam.tf").read_text()
    launch = re.search(r'data "aws_iam_policy_document" "ec2_launch" \{(.*?)\n\}', iam, re.S)
    assert launch and "arn:${local.partition}:ec2:${local.region}:*:*" in launch.group(1)
    main = (MODULE / "main.tf").read_text()
    assert 'resource "aws_s3_bucket_lifecycle_configuration" "data"' in main
