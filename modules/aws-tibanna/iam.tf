# IAM of the unicorn: Tibanna's policies, roles, instance profile and user group
# (tibanna/iam_utils.py), each scoped to this unicorn's resources.

locals {
  bucket_arns = [for b in local.bucket_names : "arn:${local.partition}:s3:::${b}"]
  log_group_arns = flatten([for g in values(local.log_groups) : [
    "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${g}",
    "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${g}:*",
  ]])
  ec2_role_arn = "arn:${local.partition}:iam::${local.account}:role/${local.ec2_role}"

  # policy key => (Tibanna's policy suffix, document)
  policies = {
    bucket            = { suffix = "bucket_access", document = data.aws_iam_policy_document.bucket.json }
    termination       = { suffix = "ec2_termination", document = data.aws_iam_policy_document.termination.json }
    list              = { suffix = "list_instanceprofiles", document = data.aws_iam_policy_document.list.json }
    cloudwatch        = { suffix = "cloudwatchlogs", document = data.aws_iam_policy_document.cloudwatch.json }
    passrole          = { suffix = "iam_passrole_s3", document = data.aws_iam_policy_document.passrole.json }
    lambdainvoke      = { suffix = "lambdainvoke", document = data.aws_iam_policy_document.lambdainvoke.json }
    cloudwatch_metric = { suffix = "cw_metric", document = data.aws_iam_policy_document.cloudwatch_metric.json }
    cw_dashboard      = { suffix = "cw_dashboard", document = data.aws_iam_policy_document.cw_dashboard.json }
    dynamodb          = { suffix = "dynamodb", document = data.aws_iam_policy_document.dynamodb.json }
    ec2_desc          = { suffix = "ec2_desc", document = data.aws_iam_policy_document.ec2_desc.json }
    executions        = { suffix = "executions", document = data.aws_iam_policy_document.executions.json }
    pricing           = { suffix = "pricing", document = data.aws_iam_policy_document.pricing.json }
    # instead of AmazonEC2FullAccess (run_task), AmazonEC2ContainerRegistryReadOnly and
    # CloudWatchAgentServerPolicy (EC2), CloudWatchReadOnlyAccess (users)
    ec2_launch = { suffix = "ec2_launch", document = data.aws_iam_policy_document.ec2_launch.json }
    ec2_agent  = { suffix = "ec2_agent", document = data.aws_iam_policy_document.ec2_agent.json }
    user_read  = { suffix = "user_read", document = data.aws_iam_policy_document.user_read.json }
  }

  # role => policies (Tibanna's policy_arn_list_for_role; vpc_access is left out: the
  # Lambdas do not run in a VPC)
  role_policies = {
    ec2               = ["bucket", "cloudwatch_metric", "ec2_desc", "ec2_agent"]
    states            = ["lambdainvoke"]
    run_task_awsem    = ["bucket", "list", "cloudwatch", "passrole", "dynamodb", "executions", "cw_dashboard", "ec2_launch"]
    check_task_awsem  = ["bucket", "cloudwatch_metric", "cloudwatch", "ec2_desc", "termination", "dynamodb", "pricing"]
    update_cost_awsem = ["bucket", "executions", "dynamodb", "pricing"]
  }
  role_names = merge(
    { ec2 = local.ec2_role, states = "${local.prefix}_states" },
    { for f, _ in local.functions : f => "${local.prefix}_${f}" },
  )
  role_attachments = merge([for role, keys in local.role_policies : { for k in keys : "${role}/${k}" => { role = role, policy = k } }]...)

  # what `tibanna add_user` gives a user (create_user_group)
  group_policies = ["bucket", "ec2_desc", "cloudwatch_metric", "dynamodb", "termination", "pricing", "executions", "user_read"]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = local.bucket_arns
  }
  statement {
    # PutObjectAcl: Tibanna puts <jobid>.postrun.json with ACL='private'
    actions   = ["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject", "s3:DeleteObject", "s3:PutObjectTagging"]
    resources = [for b in local.bucket_arns : "${b}/*"]
  }
}

data "aws_iam_policy_document" "termination" {
  statement {
    actions   = ["ec2:TerminateInstances"]
    resources = ["*"]
    # only Tibanna's job instances (run_task tags them Name=awsem-<jobid>)
    condition {
      test     = "StringLike"
      variable = "ec2:ResourceTag/Name"
      values   = ["awsem-*"]
    }
  }
}

data "aws_iam_policy_document" "list" {
  statement {
    actions   = ["iam:ListInstanceProfiles"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "cloudwatch" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = local.log_group_arns
  }
}

data "aws_iam_policy_document" "passrole" {
  statement {
    actions   = ["iam:PassRole"]
    resources = [local.ec2_role_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "lambdainvoke" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = flatten([for name in values(local.function_names) : ["${local.function_arn}:${name}", "${local.function_arn}:${name}:*"]])
  }
}

data "aws_iam_policy_document" "cloudwatch_metric" {
  statement {
    actions   = ["cloudwatch:PutMetricData", "cloudwatch:GetMetricStatistics"]
    resources = ["*"] # CloudWatch metrics take no resource-level permissions
  }
}

data "aws_iam_policy_document" "cw_dashboard" {
  statement {
    actions   = ["cloudwatch:PutDashboard"]
    resources = ["arn:${local.partition}:cloudwatch::${local.account}:dashboard/awsem-*"]
  }
}

data "aws_iam_policy_document" "dynamodb" {
  statement {
    actions   = ["dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:GetItem"]
    resources = [local.table_arn]
  }
}

data "aws_iam_policy_document" "ec2_desc" {
  statement {
    actions = ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSpotInstanceRequests"]
    resources = ["*"] # Describe* take no resource-level permissions
  }
}

data "aws_iam_policy_document" "executions" {
  statement {
    actions = ["states:StartExecution", "states:StopExecution", "states:ListExecutions",
      "states:DescribeExecution", "states:GetExecutionHistory", "states:DescribeStateMachineForExecution",
    "states:DescribeStateMachine"]
    resources = local.state_machines
  }
  statement {
    actions   = ["states:ListStateMachines"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "pricing" {
  statement {
    actions   = ["pricing:DescribeServices", "pricing:GetAttributeValues", "pricing:GetProducts", "ce:GetCostAndUsage"]
    resources = ["*"] # the Pricing and Cost Explorer APIs take no resource-level permissions
  }
}

data "aws_iam_policy_document" "ec2_launch" {
  # what run_task_awsem calls to start a job's instance (tibanna/ec2_utils.py)
  statement {
    # CreateFleet/RunInstances touch resources whose ids are not known in advance (the
    # instance, its volumes and network interface, Tibanna's public AMI): any of them, but
    # only in the unicorn's region; tags are set at launch (TagSpecifications)
    actions = ["ec2:CreateLaunchTemplate", "ec2:DeleteLaunchTemplate", "ec2:CreateFleet", "ec2:DeleteFleets",
    "ec2:RunInstances", "ec2:CreateTags"]
    resources = ["arn:${local.partition}:ec2:${local.region}:*:*"]
  }
  statement {
    actions = ["ec2:DescribeInstanceTypes", "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSubnets",
      "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeAvailabilityZones",
    "ec2:DescribeSpotPriceHistory"]
    resources = ["*"] # Describe* take no resource-level permissions
  }
  statement {
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["spot.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "ec2_agent" {
  # pull job images from ECR and run the CloudWatch agent (Tibanna's metrics)
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = ["arn:${local.partition}:ecr:${local.region}:${local.account}:repository/*"]
  }
  statement {
    actions   = ["ec2:DescribeVolumes", "ec2:DescribeTags", "cloudwatch:PutMetricData"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "user_read" {
  # what a member of the group reads to follow jobs (instead of CloudWatchReadOnlyAccess)
  statement {
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"]
    resources = local.log_group_arns
  }
  statement {
    actions   = ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"]
    resources = ["*"] # metrics take no resource-level permissions
  }
  statement {
    actions   = ["cloudwatch:GetDashboard"]
    resources = ["arn:${local.partition}:cloudwatch::${local.account}:dashboard/awsem-*"]
  }
}

resource "aws_iam_policy" "policy" {
  for_each = local.policies

  name   = "${local.prefix}_${each.value.suffix}"
  policy = each.value.document
  tags   = var.tags
}

data "aws_iam_policy_document" "assume" {
  for_each = { ec2 = "ec2", states = "states", lambda = "lambda" }

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.value}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ec2" {
  name               = local.role_names.ec2
  assume_role_policy = data.aws_iam_policy_document.assume["ec2"].json
  tags               = var.tags
}

resource "aws_iam_role" "states" {
  name               = local.role_names.states
  assume_role_policy = data.aws_iam_policy_document.assume["states"].json
  tags               = var.tags
}

resource "aws_iam_role" "lambda" {
  for_each = local.functions

  name               = local.role_names[each.key]
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
  tags               = var.tags
}

locals {
  role_ids = merge(
    { ec2 = aws_iam_role.ec2.name, states = aws_iam_role.states.name },
    { for f, role in aws_iam_role.lambda : f => role.name },
  )
}

resource "aws_iam_role_policy_attachment" "role" {
  for_each = local.role_attachments

  role       = local.role_ids[each.value.role]
  policy_arn = aws_iam_policy.policy[each.value.policy].arn
}

# the instance profile Tibanna's EC2 instances run with (same name as the role)
resource "aws_iam_instance_profile" "ec2" {
  name = local.ec2_role
  role = aws_iam_role.ec2.name
  tags = var.tags
}

# the group `tibanna add_user` / `cfw users add` puts users in (IAM groups take no tags)
resource "aws_iam_group" "users" {
  name = local.prefix
}

resource "aws_iam_group_policy_attachment" "users" {
  for_each = toset(local.group_policies)

  group      = aws_iam_group.users.name
  policy_arn = aws_iam_policy.policy[each.key].arn
}
