output "tes_url" {
  description = "Base URL of the TES API (HTTPS with the certificate published in tls_certificate_parameter)."
  value       = var.https_port == 443 ? "https://${local.host}" : "https://${local.host}:${var.https_port}"
}

output "basic_auth_user" {
  description = "The first basic-auth user (cfw uses it unless FUNNEL_SERVER_USER says otherwise)."
  value       = var.users[0]
}

output "basic_auth_store" {
  description = "Where the users' passwords are: secretsmanager or ssm."
  value       = var.credentials_store
}

output "basic_auth_names" {
  description = "Per user, the Secrets Manager secret or SSM parameter that holds the password."
  value       = local.secret_names
}

output "tls_certificate_parameter" {
  description = "SSM parameter with the server's self-signed TLS certificate (PEM)."
  value       = aws_ssm_parameter.tls_certificate.name
}

output "bucket_name" {
  description = "S3 bucket for run data."
  value       = aws_s3_bucket.data.id
}

output "storage_prefix" {
  description = "Where Snakemake keeps sources and files (--default-storage-prefix)."
  value       = "s3://${aws_s3_bucket.data.id}/cfw"
}

output "region" {
  description = "AWS region of the environment."
  value       = local.region
}

output "instance_id" {
  description = "EC2 instance of the Funnel server."
  value       = aws_instance.this.id
}

output "table_basename" {
  description = "Funnel's DynamoDB TableBasename."
  value       = local.table_basename
}

output "job_queue_name" {
  description = "AWS Batch job queue Funnel submits to."
  value       = aws_batch_job_queue.this.name
}

output "job_definition_name" {
  description = "AWS Batch job definition of Funnel's worker."
  value       = aws_batch_job_definition.this.name
}

output "compute_environment_name" {
  description = "AWS Batch compute environment (scales between 0 and batch.max_vcpus)."
  value       = aws_batch_compute_environment.this.compute_environment_name
}
