"""modules/aws-tibanna as a plain module: documented, valid to Terraform (init from the
provider mirror, validate) as cfw renders it for the example config, never without a
public-access block, and checked by checkov (clean but for skips that say why Tibanna needs
them: tests/core/test_modules.py, with what every module shares)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support.checkov import module_report
from support.render import render_example

MODULE = Path(__file__).resolve().parents[2] / "modules" / "aws-tibanna"


def test_readme_says_the_public_access_block_stays():
    """(Files, fmt, parse, variables, the README's example: tests/core/test_modules.py.)"""
    readme = (MODULE / "README.md").read_text()
    assert 'source = "' in readme and "public-access block" in readme


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


def test_checkov_checks_the_module_and_the_fixes_it_asked_for():
    """Clean and reasoned: tests/core/test_modules.py; here, that checkov saw the module."""
    report = module_report(MODULE)
    assert report["summary"]["passed"] > 200
    # the fixes checkov asked for, not skips: EC2 writes confined to the unicorn's region,
    # dashboards read by name, abandoned multipart uploads of the data bucket aborted
    iam = (MODULE / "iam.tf").read_text()
    launch = re.search(r'data "aws_iam_policy_document" "ec2_launch" \{(.*?)\n\}', iam, re.S)
    assert launch and "arn:${local.partition}:ec2:${local.region}:*:*" in launch.group(1)
    main = (MODULE / "main.tf").read_text()
    assert 'resource "aws_s3_bucket_lifecycle_configuration" "data"' in main
