output "guard_function_name" {
  description = "The guard's Lambda (invoke it to run one check now)."
  value       = aws_lambda_function.this.function_name
}

output "guard_schedule_name" {
  description = "The guard's EventBridge Scheduler schedule and its group."
  value       = "${aws_scheduler_schedule_group.this.name}/${aws_scheduler_schedule.this.name}"
}

output "guard_role_names" {
  description = "The roles of the guard's function and schedule."
  value       = [aws_iam_role.function.name, aws_iam_role.scheduler.name]
}
