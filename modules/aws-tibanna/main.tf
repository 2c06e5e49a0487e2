# A Tibanna "unicorn": what `tibanna deploy_unicorn -g USERGROUP -b BUCKETS` creates, as
# plain Terraform. Names follow Tibanna's (tibanna/iam_utils.py, stepfunction.py) so that
# Tibanna's own CLI and Lambdas find everything. Differences, all towards least privilege:
# - every policy is scoped to this unicorn's buckets, functions, state machines, log groups
#   and table; AWS-managed policies (AmazonEC2FullAccess, AWSLambdaRole, ...) are replaced
#   by the actions Tibanna's code calls;
# - the buckets keep their public-access block (deploy_unicorn deletes it);
# - the Lambdas' log groups are created here, so that destroy removes them.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  prefix       = "tibanna_${var.usergroup}"
  sfn_name     = "tibanna_unicorn_${var.usergroup}"
  sfn_cu_name  = "${local.sfn_name}_costupdater"
  ec2_role     = "${local.prefix}_for_ec2"
  function_arn = "arn:${local.partition}:lambda:${local.region}:${local.account}:function"
  states_arn   = "arn:${local.partition}:states:${local.region}:${local.account}"

  functions = {
    run_task_awsem    = "launch an ec2 instance"
    check_task_awsem  = "check status of AWSEM run by interrogating appropriate files on S3"
    update_cost_awsem = "update costs of a workflow run"
  }
  function_names = { for f, _ in local.functions : f => "${f}_${var.usergroup}" }

  # environment of each Lambda, as deploy_unicorn sets it (tibanna/core.py env_list)
  function_env = {
    run_task_awsem = {
      TIBANNA_REPO_NAME   = var.awsf_repo.name
      TIBANNA_REPO_BRANCH = var.awsf_repo.branch
      AWS_S3_ROLE_NAME    = local.ec2_role
    }
    check_task_awsem = {
      TIBANNA_DEFAULT_STEP_FUNCTION_NAME = local.sfn_name
    }
    update_cost_awsem = {}
  }

  bucket_names = distinct(concat([var.data_bucket_name, var.log_bucket_name], var.extra_bucket_names))
  table_arn    = "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${var.dynamodb_table_name}"
  log_groups   = { for f, name in local.function_names : f => "/aws/lambda/${name}" }
  state_machines = concat(
    ["${local.states_arn}:stateMachine:${local.sfn_name}", "${local.states_arn}:execution:${local.sfn_name}:*"],
    var.cost_updater ? ["${local.states_arn}:stateMachine:${local.sfn_cu_name}", "${local.states_arn}:execution:${local.sfn_cu_name}:*"] : [],
  )

  # Tibanna's retry structure (tibanna/stepfunction.py)
  lambda_error_retry = {
    ErrorEquals     = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.ResourceNotFoundException"]
    IntervalSeconds = 60
    MaxAttempts     = 6
    BackoffRate     = 2
  }
  unicorn_definition = {
    Comment = "Start a workflow run on awsem and track it"
    StartAt = "RunTaskAwsem"
    States = {
      RunTaskAwsem = {
        Type     = "Task"
        Resource = "${local.function_arn}:${local.function_names.run_task_awsem}"
        Retry = [
          { ErrorEquals = ["DependencyStillRunningException"], IntervalSeconds = 600, MaxAttempts = 10000, BackoffRate = 1 },
          { ErrorEquals = ["EC2InstanceLimitWaitException"], IntervalSeconds = 300, MaxAttempts = 2016, BackoffRate = 1 },
          local.lambda_error_retry,
        ]
        Next = "CheckTaskAwsem"
      }
      CheckTaskAwsem = {
        Type     = "Task"
        Resource = "${local.function_arn}:${local.function_names.check_task_awsem}"
        Retry = [
          { ErrorEquals = ["EC2StartingException"], IntervalSeconds = 300, MaxAttempts = 25, BackoffRate = 1 },
          { ErrorEquals = ["StillRunningException"], IntervalSeconds = 300, MaxAttempts = 100000, BackoffRate = 1 },
          local.lambda_error_retry,
        ]
        End = true
      }
    }
  }
  costupdater_definition = {
    Comment = "Update costs for a workflow run"
    StartAt = "Wait"
    States = {
      Wait = { Type = "Wait", Seconds = 43200, Next = "UpdateCostAwsem" }
      UpdateCostAwsem = {
        Type       = "Task"
        Resource   = "${local.function_arn}:${local.function_names.update_cost_awsem}"
        ResultPath = "$.done"
        Next       = "UpdateCostDone"
      }
      UpdateCostDone = {
        Type    = "Choice"
        Choices = [{ Variable = "$.done.done", BooleanEquals = true, Next = "Done" }]
        Default = "Wait"
      }
      Done = { Type = "Pass", End = true }
    }
  }
}

# -- buckets (data and logs) ---------------------------------------------------------------
resource "aws_s3_bucket" "data" {
  # checkov:skip=CKV_AWS_18: access logging of a bucket of disposable run data would need a bucket that outlives the unicorn
  # checkov:skip=CKV_AWS_21: versioning would keep every intermediate file (or log) of every run
  # checkov:skip=CKV_AWS_144: cross-region replication of disposable run data is not wanted
  # checkov:skip=CKV_AWS_145: SSE-S3 encryption; a customer-managed KMS key would outlive the unicorn
  # checkov:skip=CKV2_AWS_62: nothing listens to object events (Tibanna polls the log bucket)
  bucket        = var.data_bucket_name
  force_destroy = true # holds only run data
  tags          = var.tags
}

resource "aws_s3_bucket" "log" {
  # checkov:skip=CKV_AWS_18: access logging of a bucket of disposable run data would need a bucket that outlives the unicorn
  # checkov:skip=CKV_AWS_21: versioning would keep every intermediate file (or log) of every run
  # checkov:skip=CKV_AWS_144: cross-region replication of disposable run data is not wanted
  # checkov:skip=CKV_AWS_145: SSE-S3 encryption; a customer-managed KMS key would outlive the unicorn
  # checkov:skip=CKV2_AWS_62: nothing listens to object events (Tibanna polls the log bucket)
  bucket        = var.log_bucket_name
  force_destroy = true # holds only job logs
  tags          = var.tags
}

locals {
  buckets = { data = aws_s3_bucket.data.id, log = aws_s3_bucket.log.id }
}

# Snakemake's S3 storage plugin deletes a bucket that it has just emptied (after removing
# the uploaded workflow sources, say): this object keeps the data bucket from ever being
# empty, and says whose it is. force_destroy removes it with the bucket.
resource "aws_s3_object" "marker" {
  bucket       = aws_s3_bucket.data.id
  key          = ".cfw-unicorn.json"
  content_type = "application/json"
  content = jsonencode({
    what      = "data bucket of the Tibanna unicorn tibanna_unicorn_${var.usergroup}"
    usergroup = var.usergroup
    tags      = var.tags
  })
  tags = var.tags
}

# deploy_unicorn deletes this block; this module keeps every public access blocked
resource "aws_s3_bucket_public_access_block" "bucket" {
  for_each = local.buckets

  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Not BucketOwnerEnforced: Tibanna writes <jobid>.postrun.json with a canned ACL
# (ACL='private', from the check_task Lambda and from awsf3 on the instance), and a bucket
# with ACLs disabled rejects every PUT whose ACL is not bucket-owner-full-control. With
# BucketOwnerPreferred the PUT succeeds and the bucket still owns the objects; the
# public-access block above keeps any public ACL from taking effect.
resource "aws_s3_bucket_ownership_controls" "bucket" {
  # checkov:skip=CKV2_AWS_65: Tibanna PUTs <jobid>.postrun.json with ACL='private', which a bucket with ACLs disabled rejects
  for_each = local.buckets

  bucket = each.value
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "bucket" {
  for_each = local.buckets

  bucket = each.value
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "log" {
  count = var.log_object_expiration_days > 0 ? 1 : 0

  bucket = aws_s3_bucket.log.id
  rule {
    id     = "expire-job-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_object_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# Snakemake's S3 plugin uploads large files in parts: parts of an upload that never
# finished are invisible and billed until aborted
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# -- the job table -------------------------------------------------------------------------
resource "aws_dynamodb_table" "jobs" {
  # checkov:skip=CKV_AWS_119: encrypted with the AWS managed key; a customer-managed key would outlive the unicorn (and every unicorn of the account would need it)
  count = var.create_dynamodb_table ? 1 : 0

  name         = var.dynamodb_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "Job Id"

  attribute {
    name = "Job Id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# -- Lambdas -------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "function" {
  # checkov:skip=CKV_AWS_158: encrypted by CloudWatch Logs itself; a customer-managed KMS key would outlive the unicorn
  # checkov:skip=CKV_AWS_338: retention is log_retention_days (default 30): debugging logs of the Lambdas, no audit trail
  for_each = local.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "function" {
  # checkov:skip=CKV_AWS_116: Step Functions invokes the Lambdas synchronously and retries them; a DLQ only takes asynchronous events
  # checkov:skip=CKV_AWS_117: Tibanna's Lambdas call only AWS APIs and S3, as deploy_unicorn deploys them (no VPC without NAT or endpoints)
  # checkov:skip=CKV_AWS_115: a reserved concurrency would throttle job starts and take from the account's pool; the state machine paces calls
  # checkov:skip=CKV_AWS_272: the zips are built by cfw from the installed tibanna package; there is no signing profile to check against
  # checkov:skip=CKV_AWS_173: the environment holds names, the Tibanna version and the account number, no secret worth a KMS key
  # checkov:skip=CKV_AWS_50: X-Ray traces cost extra and nothing reads them; the Lambdas log to CloudWatch
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = each.value
  role             = aws_iam_role.lambda[each.key].arn
  filename         = var.lambda_packages[each.key].filename
  source_code_hash = var.lambda_packages[each.key].source_code_hash
  handler          = "service.handler"
  runtime          = var.lambda_runtime
  timeout          = var.lambda_timeout
  memory_size      = var.lambda_memory_size

  environment {
    variables = merge(local.function_env[each.key], {
      TIBANNA_VERSION    = var.tibanna_version
      AWS_ACCOUNT_NUMBER = local.account
    })
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy_attachment.role]
}

# -- state machines ------------------------------------------------------------------------
resource "aws_sfn_state_machine" "this" {
  # checkov:skip=CKV_AWS_285: Step Functions keeps every execution's history, which cfw and Tibanna read; CloudWatch logging would duplicate job inputs
  # checkov:skip=CKV_AWS_284: X-Ray traces cost extra and nothing reads them
  name       = local.sfn_name
  role_arn   = aws_iam_role.states.arn
  definition = jsonencode(local.unicorn_definition)
  tags       = var.tags

  depends_on = [aws_iam_role_policy_attachment.role]
}

resource "aws_sfn_state_machine" "costupdater" {
  # checkov:skip=CKV_AWS_285: Step Functions keeps every execution's history, which cfw and Tibanna read; CloudWatch logging would duplicate job inputs
  # checkov:skip=CKV_AWS_284: X-Ray traces cost extra and nothing reads them
  count = var.cost_updater ? 1 : 0

  name       = local.sfn_cu_name
  role_arn   = aws_iam_role.states.arn
  definition = jsonencode(local.costupdater_definition)
  tags       = var.tags

  depends_on = [aws_iam_role_policy_attachment.role]
}
