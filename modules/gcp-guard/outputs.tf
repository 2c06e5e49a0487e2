output "guard_function_name" {
  description = "The guard's Cloud Function (call it, as the schedule's account, to run one check now)."
  value       = google_cloudfunctions2_function.this.name
}

output "guard_function_uri" {
  description = "The function's HTTPS endpoint (the schedule's target)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "guard_schedule_name" {
  description = "The guard's Cloud Scheduler job."
  value       = google_cloud_scheduler_job.this.name
}

output "guard_service_account_email" {
  description = "The service account the function runs as."
  value       = google_service_account.function.email
}

output "guard_scheduler_account_email" {
  description = "The service account the schedule calls the function as."
  value       = google_service_account.scheduler.email
}
