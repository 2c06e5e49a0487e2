output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_location" {
  description = "Location (region or zone) of the cluster."
  value       = google_container_cluster.this.location
}

output "cluster_endpoint" {
  description = "IP address of the cluster's control plane."
  value       = google_container_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64-encoded CA certificate of the control plane."
  value       = try(google_container_cluster.this.master_auth[0].cluster_ca_certificate, null)
}

output "bucket_name" {
  description = "Bucket for the workflow's sources and files."
  value       = google_storage_bucket.data.name
}

output "namespace" {
  description = "Kubernetes namespace jobs run in."
  value       = var.namespace
}

output "service_account" {
  description = "Kubernetes service account jobs run as."
  value       = var.service_account
}

output "jobs_service_account_email" {
  description = "Google service account jobs act as through Workload Identity."
  value       = google_service_account.jobs.email
}

output "nodes_service_account_email" {
  description = "Google service account of the nodes."
  value       = google_service_account.nodes.email
}

output "node_pools" {
  description = "Job pool name -> machine type."
  value       = { for name, pool in google_container_node_pool.jobs : name => pool.node_config[0].machine_type }
}

output "network_name" {
  description = "Name of the VPC network."
  value       = google_compute_network.vpc.name
}
