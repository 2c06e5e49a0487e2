# A Funnel TES server on EC2, with AWS Batch as Funnel's compute backend, DynamoDB as its
# database and an S3 bucket for run data. IAM is in iam.tf, AWS Batch in batch.tf.
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_vpc" "default" {
  count   = var.vpc_id == null ? 1 : 0
  default = true
}

data "aws_subnets" "vpc" {
  count = length(var.subnet_ids) == 0 ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [local.vpc_id]
  }
}

data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  vpc_id         = var.vpc_id != null ? var.vpc_id : data.aws_vpc.default[0].id
  subnet_ids     = length(var.subnet_ids) > 0 ? var.subnet_ids : sort(data.aws_subnets.vpc[0].ids)
  ami_id         = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.al2023[0].value)
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  region         = data.aws_region.current.name
  table_basename = "${var.name}-funnel"
  # Funnel's DynamoDB database: its five tables and their keys (database/dynamodb in Funnel)
  tables = {
    task    = { hash = "hid", hash_type = "S", range = "id", range_type = "S" }
    content = { hash = "id", hash_type = "S", range = "index", range_type = "N" }
    stdout  = { hash = "id", hash_type = "S", range = "attempt_index", range_type = "S" }
    stderr  = { hash = "id", hash_type = "S", range = "attempt_index", range_type = "S" }
    syslogs = { hash = "id", hash_type = "S", range = "attempt", range_type = "N" }
  }
  secret_names = {
    for user in var.users : user => (
      var.credentials_store == "ssm" ? "/${var.name}/funnel/users/${user}" : "${var.name}/funnel/users/${user}"
    )
  }
  tls_certificate_parameter = "/${var.name}/funnel/tls-certificate"
  host                      = coalesce(aws_instance.this.public_dns, aws_instance.this.public_ip, aws_instance.this.private_ip)
}

# -- run data ------------------------------------------------------------------------------
resource "aws_s3_bucket" "data" {
  # checkov:skip=CKV_AWS_18: access logging of a bucket of disposable run data is not wanted
  # checkov:skip=CKV_AWS_21: versioning would keep every intermediate file of every run
  # checkov:skip=CKV_AWS_144: cross-region replication of disposable run data is not wanted
  # checkov:skip=CKV_AWS_145: SSE-S3 encryption; a customer-managed KMS key would outlive the environment
  # checkov:skip=CKV2_AWS_62: nothing listens to object events
  # checkov:skip=CKV2_AWS_61: expiry is optional (object_expiration_days); the bucket goes with the environment

  bucket        = "${var.name}-data-${local.account_id}"
  force_destroy = true
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  count  = var.object_expiration_days == null ? 0 : 1
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "expire-run-data"
    status = "Enabled"

    filter {}

    expiration {
      days = var.object_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# -- Funnel's database -------------------------------------------------------------------
resource "aws_dynamodb_table" "funnel" {
  # checkov:skip=CKV_AWS_28: point-in-time recovery of a disposable task database is not wanted
  # checkov:skip=CKV_AWS_119: encrypted with the AWS owned key; a customer-managed key would outlive the environment
  # checkov:skip=CKV2_AWS_16: on-demand billing, nothing to auto-scale

  for_each = local.tables

  name                        = "${local.table_basename}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash
  range_key                   = each.value.range
  deletion_protection_enabled = false

  attribute {
    name = each.value.hash
    type = each.value.hash_type
  }

  attribute {
    name = each.value.range
    type = each.value.range_type
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# -- basic-auth users: generated passwords that never reach the plan or the state ---------
ephemeral "aws_secretsmanager_random_password" "user" {
  for_each = toset(var.users)

  password_length     = 32
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "user" {
  # checkov:skip=CKV_AWS_149: the AWS managed key; a customer-managed key would outlive the environment
  # checkov:skip=CKV2_AWS_57: rotate by increasing password_version (Funnel reads passwords at start)

  for_each = var.credentials_store == "secretsmanager" ? local.secret_names : {}

  name                    = each.value
  description             = "Funnel basic-auth password of ${each.key} (${var.name})"
  recovery_window_in_days = 0
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "user" {
  for_each = aws_secretsmanager_secret.user

  secret_id                = each.value.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.user[each.key].random_password
  secret_string_wo_version = var.password_version
}

resource "aws_ssm_parameter" "user" {
  # checkov:skip=CKV_AWS_337: SecureString with the AWS managed key; a customer-managed key would outlive the environment

  for_each = var.credentials_store == "ssm" ? local.secret_names : {}

  name             = each.value
  description      = "Funnel basic-auth password of ${each.key} (${var.name})"
  type             = "SecureString"
  value_wo         = ephemeral.aws_secretsmanager_random_password.user[each.key].random_password
  value_wo_version = var.password_version
  tags             = var.tags
}

# The server makes a self-signed certificate at first boot and publishes it here, so that
# clients can pin it. A certificate is not a secret.
resource "aws_ssm_parameter" "tls_certificate" {
  # checkov:skip=CKV2_AWS_34: a certificate is public; the server publishes it for clients to pin
  name        = local.tls_certificate_parameter
  description = "TLS certificate of the Funnel server of ${var.name} (written by the server)"
  type        = "String"
  value       = "pending"
  tags        = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

# -- network -------------------------------------------------------------------------------
resource "aws_security_group" "server" {
  name        = "${var.name}-server"
  description = "Funnel server: HTTPS from the allowed networks only"
  vpc_id      = local.vpc_id
  tags        = var.tags

  dynamic "ingress" {
    for_each = var.allowed_cidrs
    content {
      description      = "TES over HTTPS from ${ingress.value}"
      from_port        = var.https_port
      to_port          = var.https_port
      protocol         = "tcp"
      cidr_blocks      = strcontains(ingress.value, ":") ? [] : [ingress.value]
      ipv6_cidr_blocks = strcontains(ingress.value, ":") ? [ingress.value] : []
    }
  }

  # checkov:skip=CKV_AWS_382: the server downloads Funnel and calls AWS APIs (no VPC endpoints here)
  egress {
    description = "Funnel release download and AWS APIs"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# -- the server ------------------------------------------------------------------------------
resource "aws_instance" "this" {
  # checkov:skip=CKV_AWS_126: detailed monitoring costs extra and nothing reads it
  # checkov:skip=CKV_AWS_88: the server needs a public address to be reached from the allowed networks

  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = local.subnet_ids[0]
  vpc_security_group_ids      = [aws_security_group.server.id]
  iam_instance_profile        = aws_iam_instance_profile.server.name
  associate_public_ip_address = true
  ebs_optimized               = true
  user_data                   = var.user_data
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    encrypted   = true
    volume_size = 20
    volume_type = "gp3"
    tags        = var.tags
  }

  tags = merge(var.tags, { Name = "${var.name}-funnel" })

  # the passwords must exist before Funnel starts
  depends_on = [aws_secretsmanager_secret_version.user, aws_ssm_parameter.user]
}

# The guard stops the server when idle or past ttl (it is not terminated: the state keeps
# it); the next apply (`cfw up`) starts it again.
resource "aws_ec2_instance_state" "this" {
  instance_id = aws_instance.this.id
  state       = "running"
}
