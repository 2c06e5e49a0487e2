output "namespace" {
  description = "Namespace the jobs run in."
  value       = kubernetes_namespace_v1.this.metadata[0].name
}

output "jobs_service_account" {
  description = "Service account the jobs run as."
  value       = kubernetes_service_account_v1.jobs.metadata[0].name
}

output "runner_service_account" {
  description = "Service account bound to the runner Role (`kubectl create token` it for CI)."
  value       = kubernetes_service_account_v1.runner.metadata[0].name
}

output "runner_role" {
  description = "Role with what running workflows needs in the namespace."
  value       = kubernetes_role_v1.runner.metadata[0].name
}

output "resource_quota" {
  description = "Name of the namespace's ResourceQuota, or null."
  value       = try(kubernetes_resource_quota_v1.this[0].metadata[0].name, null)
}
