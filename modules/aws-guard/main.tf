# The guard of one environment: an EventBridge Scheduler schedule that invokes a Lambda
# every `interval_minutes`; the Lambda runs one check (cfw.core.guard_check) with the kind's
# adapter: cancels the jobs of runs whose runner is gone, stops what bills while idle, and
# enforces ttl. Its role may call only the actions in `statements` (and write its own log).
data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  log_group = "/aws/lambda/${var.name}"
  log_arn   = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group}"
  variables = merge(var.environment, {
    CFW_GUARD_INTERVAL     = tostring(var.settings.interval_minutes * 60)
    CFW_GUARD_ORPHAN_AFTER = tostring(var.settings.orphan_after_seconds)
    CFW_GUARD_IDLE_AFTER   = var.settings.idle_after_seconds == null ? "off" : tostring(var.settings.idle_after_seconds)
    CFW_GUARD_EXPIRES_AT   = var.settings.expires_at
  })
}

# -- the function ---------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "OwnLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_arn}:*"]
  }

  dynamic "statement" {
    for_each = var.statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-function"
  description        = "The guard's Lambda of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  name   = "${var.name}-function"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_158: encrypted by CloudWatch Logs itself; a customer-managed KMS key would outlive the environment
  # checkov:skip=CKV_AWS_338: retention is log_retention_days (default 14): what the guard did is also in its record
  name              = local.log_group
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_116: the schedule invokes it and retries; a missed check is made up by the next one, a DLQ would add a queue to pay for
  # checkov:skip=CKV_AWS_117: the guard calls only AWS APIs (no VPC without NAT or endpoints, which would bill while idle)
  # checkov:skip=CKV_AWS_272: the zip is built by cfw from its own files; there is no signing profile to check against
  # checkov:skip=CKV_AWS_173: the environment holds names and durations, no secret worth a KMS key
  # checkov:skip=CKV_AWS_50: X-Ray traces cost extra and nothing reads them; the guard logs to CloudWatch
  function_name                  = var.name
  description                    = "cfw guard: cancels orphaned runs' jobs, stops what bills while idle, enforces ttl"
  role                           = aws_iam_role.function.arn
  filename                       = var.package.filename
  source_code_hash               = var.package.source_code_hash
  handler                        = var.handler
  runtime                        = var.runtime
  timeout                        = var.timeout
  memory_size                    = 256
  reserved_concurrent_executions = 1 # one check at a time

  environment {
    variables = local.variables
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.function]
}

# -- the schedule ---------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_scheduler" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "invoke" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-schedule"
  description        = "EventBridge Scheduler invoking the guard of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume_scheduler.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-schedule"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.invoke.json
}

# schedules carry no tags: their group does, and deleting the group deletes them
resource "aws_scheduler_schedule_group" "this" {
  name = var.name
  tags = var.tags
}

resource "aws_scheduler_schedule" "this" {
  # checkov:skip=CKV_AWS_297: the schedule's input is empty; a customer-managed KMS key would outlive the environment
  name                = "${var.name}-check"
  group_name          = aws_scheduler_schedule_group.this.name
  schedule_expression = "rate(${var.settings.interval_minutes} ${var.settings.interval_minutes == 1 ? "minute" : "minutes"})"
  description         = "cfw guard check of ${var.name}"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = "{}"

    retry_policy {
      maximum_retry_attempts       = 0 # the next check comes one interval later
      maximum_event_age_in_seconds = 60 * var.settings.interval_minutes
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}
