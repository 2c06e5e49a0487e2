output "project" {
  description = "Project id of the environment."
  value       = var.project
}

output "region" {
  description = "Region of the jobs, the bucket and the subnet."
  value       = var.region
}

output "bucket" {
  description = "Name of the bucket for workflow sources and files."
  value       = google_storage_bucket.data.name
}

output "service_account" {
  description = "Email of the service account the job VMs run as."
  value       = google_service_account.this.email
}

output "network" {
  description = "Network of the job VMs (projects/P/global/networks/N)."
  value       = google_compute_network.this.id
}

output "subnetwork" {
  description = "Subnet of the job VMs (projects/P/regions/R/subnetworks/N)."
  value       = google_compute_subnetwork.this.id
}

output "network_tag" {
  description = "Network tag the jobs' VMs carry (the firewall rules target it)."
  value       = local.tag
}

output "secret_prefix" {
  description = "Job secrets are named with this prefix; the service account may read only those."
  value       = local.secret_prefix
}
