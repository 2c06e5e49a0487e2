output "sandbox_root" {
  description = "Directory that holds job sandboxes."
  value       = terraform_data.this.output.sandbox_root
}

output "env_id" {
  description = "Unique id of the environment."
  value       = var.env_id
}
