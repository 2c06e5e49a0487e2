output "guard_function_app_name" {
  description = "The guard's Function app (its function cfw_guard runs one check per call of the schedule)."
  value       = azurerm_linux_function_app.this.name
}

output "guard_principal_id" {
  description = "Object id of the Function app's system-assigned identity (the guard's only credential)."
  value       = azurerm_linux_function_app.this.identity[0].principal_id
}

output "guard_schedule" {
  description = "The check's NCRONTAB schedule (app setting CFW_GUARD_SCHEDULE)."
  value       = local.schedule
}

output "guard_host_storage_account_name" {
  description = "The Function host's own storage account (no shared key: reached with the identity)."
  value       = azurerm_storage_account.host.name
}
