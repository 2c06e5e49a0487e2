output "batch_account_url" {
  description = "URL of the Batch account's service endpoint (where jobs and tasks are submitted)."
  value       = "https://${azurerm_batch_account.this.account_endpoint}"
}

output "batch_account_id" {
  description = "Resource id of the Batch account (the scope of the guard's Batch role)."
  value       = azurerm_batch_account.this.id
}

output "batch_account_name" {
  description = "Name of the Batch account."
  value       = azurerm_batch_account.this.name
}

output "batch_pool_ids" {
  description = "Ids of the autoscaling pools, one per VM size."
  value       = [for p in var.pools : azurerm_batch_pool.pool[p.id].name]
}

output "storage_account_name" {
  description = "Name of the storage account (Batch auto-storage and Snakemake's default storage)."
  value       = azurerm_storage_account.env.name
}

output "storage_blob_endpoint" {
  description = "Blob endpoint of the storage account."
  value       = azurerm_storage_account.env.primary_blob_endpoint
}

output "storage_container_urls" {
  description = "URL of each blob container, by name."
  value       = { for name, c in azurerm_storage_container.run : name => "${azurerm_storage_account.env.primary_blob_endpoint}${c.name}" }
}

output "storage_container_ids" {
  description = "Resource id of each blob container, by name (role assignment scopes)."
  value       = { for name, c in azurerm_storage_container.run : name => c.id }
}

output "identity_id" {
  description = "Resource id of the nodes' user-assigned identity (for identity references)."
  value       = azurerm_user_assigned_identity.nodes.id
}

output "identity_client_id" {
  description = "Client id of the nodes' user-assigned identity."
  value       = azurerm_user_assigned_identity.nodes.client_id
}

output "resource_group_name" {
  description = "Resource group that holds everything."
  value       = azurerm_resource_group.env.name
}

output "subscription_id" {
  description = "Subscription the environment lives in."
  value       = data.azurerm_client_config.current.subscription_id
}

output "registry_login_server" {
  description = "Login server of the job image registry (null without one)."
  value       = local.registry_server
}
