output "state_machine_arn" {
  description = "ARN of the unicorn state machine jobs are started on."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the unicorn state machine (Tibanna's --sfn)."
  value       = aws_sfn_state_machine.this.name
}

output "costupdater_arn" {
  description = "ARN of the cost-updater state machine (null when switched off)."
  value       = try(aws_sfn_state_machine.costupdater[0].arn, null)
}

output "data_bucket" {
  description = "Bucket for job inputs and outputs."
  value       = aws_s3_bucket.data.id
}

output "log_bucket" {
  description = "Bucket for Tibanna's job logs."
  value       = aws_s3_bucket.log.id
}

output "user_group" {
  description = "IAM group whose members may run jobs on this unicorn."
  value       = aws_iam_group.users.name
}

output "usergroup" {
  description = "Tibanna user group name (the suffix of every name)."
  value       = var.usergroup
}

output "instance_profile_arn" {
  description = "Instance profile of the job instances."
  value       = aws_iam_instance_profile.ec2.arn
}

output "function_names" {
  description = "Names of the three Lambdas."
  value       = { for f, fn in aws_lambda_function.function : f => fn.function_name }
}

output "iam_names" {
  description = "Names of the IAM roles and policies (for verification after destroy)."
  value = {
    roles    = values(local.role_names)
    policies = [for p in aws_iam_policy.policy : p.name]
    group    = aws_iam_group.users.name
    profile  = aws_iam_instance_profile.ec2.name
  }
}

output "dynamodb_table" {
  description = "The job table."
  value       = var.dynamodb_table_name
}

output "dynamodb_table_created" {
  description = "Whether this module manages the job table (false: another unicorn's table is used by name)."
  value       = length(aws_dynamodb_table.jobs) > 0
}

output "account_id" {
  description = "AWS account the unicorn lives in."
  value       = local.account
}

output "region" {
  description = "AWS region of the unicorn."
  value       = local.region
}
