"""Which resources of an AWS module would not carry the environment's cfw-id: every
resource whose type takes tags (by the aws provider's own schema) must set them from
`var.tags`; a type that takes none must be one AWS gives no tags, listed here with why
nothing of it is left behind once what it belongs to is removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.hcl import load_module, resources

PROVIDER = "registry.terraform.io/hashicorp/aws"
UNTAGGABLE = {
    "aws_iam_group": "IAM groups take no tags: cfw matches tibanna's by its exact name",
    "aws_iam_group_policy_attachment": "part of its group",
    "aws_iam_role_policy": "an inline policy, deleted with its role",
    "aws_iam_role_policy_attachment": "detached when cfw removes the role",
    "aws_s3_bucket_lifecycle_configuration": "part of its bucket",
    "aws_s3_bucket_ownership_controls": "part of its bucket",
    "aws_s3_bucket_public_access_block": "part of its bucket",
    "aws_s3_bucket_server_side_encryption_configuration": "part of its bucket",
    "aws_secretsmanager_secret_version": "part of its secret",
    "aws_ec2_instance_state": "the state of its instance",
    "aws_scheduler_schedule": "schedules take no tags: deleted with their group",
}


def resource_schemas(root: Path) -> dict[str, dict]:
    """The aws provider's resource schemas, from an initialised root module ROOT."""
    proc = subprocess.run(
        ["terraform", "providers", "schema", "-json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)["provider_schemas"][PROVIDER]["resource_schemas"]


def untagged(module: Path, schemas: dict[str, dict]) -> list[str]:
    """The resources of MODULE that would not carry var.tags, each with why."""
    problems = []
    doc = load_module(module)
    for address, body in resources(doc, kinds=(("resource", ""),)).items():
        rtype = address.split(".")[0]
        if rtype not in schemas:
            problems.append(f"{address}: not an aws provider resource type")
        elif "tags" in schemas[rtype]["block"]["attributes"]:
            if "var.tags" not in str(body.get("tags", "")):
                problems.append(f"{address}: takes tags but does not set tags = var.tags")
        elif rtype not in UNTAGGABLE:
            problems.append(f"{address}: takes no tags and is not known to go with what does")
    return problems
