# Funnel's AWS Batch compute backend: a compute environment that scales to 0 vCPU, a job
# queue, and the job definition that runs Funnel's worker for one task
# (the shape `funnel aws batch create-job-definition` registers).
locals {
  worker_workdir            = "/opt/funnel-work-dir"
  job_definition_name       = "${var.name}-worker"
  job_definition_arn_prefix = "arn:${local.partition}:batch:${local.region}:${local.account_id}:job-definition/${local.job_definition_name}"
}

resource "aws_security_group" "batch" {
  name        = "${var.name}-batch"
  description = "AWS Batch instances: no inbound traffic"
  vpc_id      = local.vpc_id
  tags        = var.tags

  # checkov:skip=CKV_AWS_382: jobs pull images and reach S3 and DynamoDB (no VPC endpoints here)
  egress {
    description = "images, S3, DynamoDB"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# IMDSv2 with a hop limit of 2, so that task containers can reach the instance role
resource "aws_launch_template" "batch" {
  # checkov:skip=CKV_AWS_341: hop limit 2 lets task containers reach the instance role (their S3 access)

  name        = "${var.name}-batch"
  description = "AWS Batch instances of ${var.name}"
  tags        = var.tags

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }
}

resource "aws_batch_compute_environment" "this" {
  compute_environment_name = "${var.name}-ce"
  type                     = "MANAGED"
  service_role             = aws_iam_role.batch_service.arn
  tags                     = var.tags

  compute_resources {
    type                = var.batch.spot ? "SPOT" : "EC2"
    allocation_strategy = var.batch.spot ? "SPOT_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE"
    min_vcpus           = 0
    desired_vcpus       = 0
    max_vcpus           = var.batch.max_vcpus
    instance_type       = var.batch.instance_types
    instance_role       = aws_iam_instance_profile.batch.arn
    security_group_ids  = [aws_security_group.batch.id]
    subnets             = local.subnet_ids
    tags                = var.tags

    launch_template {
      launch_template_id = aws_launch_template.batch.id
      version            = aws_launch_template.batch.latest_version
    }
  }

  lifecycle {
    ignore_changes = [compute_resources[0].desired_vcpus]
  }

  depends_on = [aws_iam_role_policy_attachment.batch_service]
}

resource "aws_batch_job_queue" "this" {
  name     = "${var.name}-queue"
  state    = "ENABLED"
  priority = 1
  tags     = var.tags

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this.arn
  }
}

resource "aws_batch_job_definition" "this" {
  # checkov:skip=CKV_AWS_210: Funnel's worker starts each task's containers through the host's Docker socket

  name = local.job_definition_name
  type = "container"
  tags = var.tags

  container_properties = jsonencode({
    image      = var.batch.worker_image
    jobRoleArn = aws_iam_role.worker.arn
    privileged = true
    resourceRequirements = [
      { type = "VCPU", value = "1" },
      { type = "MEMORY", value = "512" },
    ]
    command = [
      "worker", "run",
      "--Worker.WorkDir", local.worker_workdir,
      "--Database", "dynamodb",
      "--DynamoDB.Region", local.region,
      "--DynamoDB.TableBasename", local.table_basename,
      "--EventWriters", "dynamodb",
      "--EventWriters", "log",
      "--taskID", "Ref::taskID",
    ]
    mountPoints = [
      { sourceVolume = "docker-socket", containerPath = "/var/run/docker.sock" },
      { sourceVolume = "funnel-work-dir", containerPath = local.worker_workdir },
    ]
    volumes = [
      { name = "docker-socket", host = { sourcePath = "/var/run/docker.sock" } },
      { name = "funnel-work-dir", host = { sourcePath = local.worker_workdir } },
    ]
  })
}
