# The guard of one azure-batch environment: a timer-triggered Python Function (Linux
# Consumption plan: billed per call, nothing while idle) that runs one check
# (cfw.core.guard_check) every `interval_minutes` with the kind's adapter: it cancels the
# tasks of runs whose runner is gone, and past the ttl every task (the pools' autoscale
# formula then keeps no node). Its only credential is its system-assigned identity: no
# storage key, SAS or connection string is in its settings, and its roles reach only the
# Batch account's jobs, the heartbeats' container and its own host storage.
locals {
  minutes = var.settings.interval_minutes
  # NCRONTAB (with seconds): every `minutes` minutes from the full hour
  schedule = local.minutes == 60 ? "0 0 * * * *" : "0 */${local.minutes} * * * *"
  app_settings = merge(var.environment, {
    CFW_GUARD_SCHEDULE     = local.schedule # function.json: "schedule": "%CFW_GUARD_SCHEDULE%"
    CFW_GUARD_INTERVAL     = tostring(local.minutes * 60)
    CFW_GUARD_ORPHAN_AFTER = tostring(var.settings.orphan_after_seconds)
    CFW_GUARD_IDLE_AFTER   = var.settings.idle_after_seconds == null ? "off" : tostring(var.settings.idle_after_seconds)
    CFW_GUARD_EXPIRES_AT   = var.settings.expires_at
    CFW_GUARD_PACKAGE      = var.package.sha256
    # the zip holds cfw's files and a pinned requirements.txt: the deployment installs it
    SCM_DO_BUILD_DURING_DEPLOYMENT = "true"
    ENABLE_ORYX_BUILD              = "true"
  })
}

# -- the host's own storage (timer schedule and locks), reached with the identity only ------
resource "azurerm_storage_account" "host" {
  #checkov:skip=CKV_AZURE_33:queue logging is moot: the timer host keeps only blobs (schedule status, locks)
  #checkov:skip=CKV_AZURE_206:what is stored is the timer's schedule status, rebuilt by the host; LRS is enough
  #checkov:skip=CKV2_AZURE_1:customer-managed keys are a platform choice; Microsoft-managed keys encrypt at rest
  #checkov:skip=CKV2_AZURE_33:the Consumption plan has no VNet integration: the host reaches its storage over the public endpoint, with Entra ID only
  #checkov:skip=CKV_AZURE_59:public network access is needed by the Consumption plan's host (no VNet); anonymous access and shared keys are off
  #checkov:skip=CKV2_AZURE_38:soft delete would keep the timer host's throwaway blobs after `cfw down`
  name                            = var.host_storage_account_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true
  tags                            = var.tags

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }
}

# -- the function ---------------------------------------------------------------------------
resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_212:a Consumption plan scales per call; a minimum instance count would bill while idle
  #checkov:skip=CKV_AZURE_225:zone redundancy needs a Premium plan, which bills while idle
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "Y1"
  tags                = var.tags
}

resource "azurerm_linux_function_app" "this" {
  #checkov:skip=CKV_AZURE_221:zip_deploy_file reaches the app's SCM endpoint from the machine that applies; the timer needs no inbound traffic
  name                                           = var.name
  resource_group_name                            = var.resource_group_name
  location                                       = var.location
  service_plan_id                                = azurerm_service_plan.this.id
  storage_account_name                           = azurerm_storage_account.host.name
  storage_uses_managed_identity                  = true
  content_share_force_disabled                   = true  # Azure Files takes only keys; the package runs from its zip
  builtin_logging_enabled                        = false # AzureWebJobsDashboard needs a connection string
  https_only                                     = true
  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = true # zip_deploy_file deploys with the publishing profile
  zip_deploy_file                                = var.package.filename
  app_settings                                   = local.app_settings
  tags                                           = var.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    ftps_state          = "Disabled"
    minimum_tls_version = "1.2"
    http2_enabled       = true

    application_stack {
      python_version = var.python_version
    }
  }
}

# -- what the identity may do: its host storage, the Batch account's jobs, the heartbeats -----
resource "azurerm_role_assignment" "host" {
  scope                = azurerm_storage_account.host.id
  role_definition_name = "Storage Blob Data Owner" # what the Functions host needs of AzureWebJobsStorage
  principal_id         = azurerm_linux_function_app.this.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

# The adapter lists jobs and their tasks (jobs/read), terminates tasks (jobs/write) and
# deletes a cancelled run's job (jobs/delete); nothing of pools, the account or its keys.
resource "azurerm_role_definition" "batch_jobs" {
  name        = "${var.name}-batch-jobs"
  scope       = var.batch_account_id
  description = "cfw guard of ${var.name}: list, terminate and delete the Batch account's jobs and tasks"

  permissions {
    actions = []
    data_actions = [
      "Microsoft.Batch/batchAccounts/jobs/read",
      "Microsoft.Batch/batchAccounts/jobs/write",
      "Microsoft.Batch/batchAccounts/jobs/delete",
    ]
  }

  assignable_scopes = [var.batch_account_id]
}

resource "azurerm_role_assignment" "batch_jobs" {
  scope              = var.batch_account_id
  role_definition_id = azurerm_role_definition.batch_jobs.role_definition_resource_id
  principal_id       = azurerm_linux_function_app.this.identity[0].principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "heartbeats" {
  scope                = var.data_container_id
  role_definition_name = "Storage Blob Data Contributor" # read heartbeats, write the record
  principal_id         = azurerm_linux_function_app.this.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}
