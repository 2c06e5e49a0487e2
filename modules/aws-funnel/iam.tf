# Roles: the Funnel server, AWS Batch (service and instances), and Funnel's worker jobs.
data "aws_iam_policy_document" "assume" {
  for_each = {
    ec2   = "ec2.amazonaws.com"
    batch = "batch.amazonaws.com"
    ecs   = "ecs-tasks.amazonaws.com"
  }

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [each.value]
    }
  }
}

locals {
  table_arns = [for t in aws_dynamodb_table.funnel : t.arn]
  secret_arns = concat(
    [for s in aws_secretsmanager_secret.user : s.arn],
    [for p in aws_ssm_parameter.user : p.arn],
  )
}

# -- the Funnel server ---------------------------------------------------------------------
resource "aws_iam_role" "server" {
  name               = "${var.name}-server"
  description        = "Funnel server of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume["ec2"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "server" {
  # checkov:skip=CKV_AWS_111: batch:DescribeJobs takes no resource-level permission ("*" only)
  # checkov:skip=CKV_AWS_356: batch:DescribeJobs takes no resource-level permission ("*" only)

  statement {
    sid = "FunnelDatabase"
    # Funnel calls CreateTable at start and accepts "already exists"; the tables are these
    actions = [
      "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
      "dynamodb:UpdateItem", "dynamodb:Query",
    ]
    resources = local.table_arns
  }

  statement {
    sid       = "SubmitToBatch"
    actions   = ["batch:SubmitJob"]
    resources = [aws_batch_job_queue.this.arn, "${local.job_definition_arn_prefix}:*"]
  }

  statement {
    sid       = "CancelBatchJobs"
    actions   = ["batch:CancelJob", "batch:TerminateJob"]
    resources = ["arn:${local.partition}:batch:${local.region}:${local.account_id}:job/*"]
  }

  statement {
    sid       = "WatchBatchJobs"
    actions   = ["batch:DescribeJobs"]
    resources = ["*"] # DescribeJobs takes no resource-level permission
  }

  statement {
    sid       = "ReadPasswords"
    actions   = var.credentials_store == "ssm" ? ["ssm:GetParameter"] : ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }

  statement {
    sid       = "PublishCertificate"
    actions   = ["ssm:PutParameter"]
    resources = [aws_ssm_parameter.tls_certificate.arn]
  }
}

resource "aws_iam_role_policy" "server" {
  name   = "funnel-server"
  role   = aws_iam_role.server.id
  policy = data.aws_iam_policy_document.server.json
}

resource "aws_iam_instance_profile" "server" {
  name = "${var.name}-server"
  role = aws_iam_role.server.name
  tags = var.tags
}

# -- AWS Batch -------------------------------------------------------------------------------
resource "aws_iam_role" "batch_service" {
  name               = "${var.name}-batch-service"
  description        = "AWS Batch service role of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume["batch"].json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "batch_service" {
  role       = aws_iam_role.batch_service.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSBatchServiceRole"
}

# The instances AWS Batch starts. Task containers (started by Funnel's worker through the
# host's Docker) reach the bucket with this role: no storage credentials travel in tasks.
resource "aws_iam_role" "batch_instance" {
  name               = "${var.name}-batch-instance"
  description        = "Instances of the AWS Batch compute environment of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume["ec2"].json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "batch_instance" {
  role       = aws_iam_role.batch_instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

data "aws_iam_policy_document" "data_bucket" {
  statement {
    sid       = "ListRunData"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.data.arn]
  }

  statement {
    sid       = "ReadWriteRunData"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.data.arn}/*"]
  }
}

resource "aws_iam_role_policy" "batch_instance" {
  name   = "run-data"
  role   = aws_iam_role.batch_instance.id
  policy = data.aws_iam_policy_document.data_bucket.json
}

resource "aws_iam_instance_profile" "batch" {
  name = "${var.name}-batch-instance"
  role = aws_iam_role.batch_instance.name
  tags = var.tags
}

# -- Funnel's worker (the AWS Batch job) -------------------------------------------------------
resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  description        = "Funnel worker jobs of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.data_bucket.json]

  statement {
    sid       = "WriteTaskEvents"
    actions   = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
    resources = local.table_arns
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "funnel-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}
