# A shared Azure Batch account with one autoscaling pool per VM size. Pools scale to zero
# when idle; every node pulls the job image and reaches storage with one user-assigned
# identity. Everything lives in one resource group and carries the cfw tags.

data "azurerm_client_config" "current" {}

locals {
  tags = merge(var.labels, { "cfw-env" = var.name, "cfw-id" = var.env_id })
  # pool metadata names must be identifiers: cfw-env -> cfw_env
  metadata = { for k, v in local.tags : replace(k, "-", "_") => v }

  uses_sas_start = nonsensitive(var.start_task_sas_url != null)
  uses_script    = var.start_task.script != null
  registry_server = (
    var.create_registry ? azurerm_container_registry.images[0].login_server :
    try(var.registry.server, null)
  )
  registry_user = var.create_registry ? null : try(var.registry.username, null)
  grant_acr     = var.create_registry || var.acr_id != null
}

resource "azurerm_resource_group" "env" {
  name     = var.resource_group_name
  location = var.location
  tags     = local.tags
}

resource "azurerm_user_assigned_identity" "nodes" {
  name                = "${var.batch_account_name}-nodes"
  location            = azurerm_resource_group.env.location
  resource_group_name = azurerm_resource_group.env.name
  tags                = local.tags
}

# Hierarchical namespace stays off: Batch output files and auto-storage need a flat
# blob namespace.
resource "azurerm_storage_account" "env" {
  #checkov:skip=CKV_AZURE_33:queue logging is moot: no queue is used, only blobs
  #checkov:skip=CKV_AZURE_206:run data is scratch that a rerun recreates; LRS is enough
  #checkov:skip=CKV2_AZURE_1:customer-managed keys are a platform choice; Microsoft-managed keys encrypt at rest
  #checkov:skip=CKV2_AZURE_33:nodes and laptops reach blobs over the public endpoint (no VNet); access is Entra ID or short SAS
  #checkov:skip=CKV_AZURE_59:public network access is needed without a VNet; anonymous access is off
  #checkov:skip=CKV2_AZURE_40:shared keys sign the short write-only SAS for task logs (output_files_auth = sas)
  #checkov:skip=CKV2_AZURE_41:cfw mints SAS tokens itself with a bounded lifetime (sas_hours)
  #checkov:skip=CKV_AZURE_244:no SFTP local users are created (SFTP is off)
  name                            = var.storage_account_name
  resource_group_name             = azurerm_resource_group.env.name
  location                        = azurerm_resource_group.env.location
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  is_hns_enabled                  = false
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = true
  tags                            = local.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  sas_policy {
    expiration_period = "07.00:00:00"
    expiration_action = "Log"
  }
}

resource "azurerm_storage_container" "run" {
  #checkov:skip=CKV2_AZURE_21:blob read logging is a storage-account diagnostic setting chosen by the platform team
  for_each              = toset(var.containers)
  name                  = each.value
  storage_account_id    = azurerm_storage_account.env.id
  container_access_type = "private"
}

resource "azurerm_role_assignment" "blob" {
  scope                = azurerm_storage_account.env.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.nodes.principal_id
}

resource "azurerm_container_registry" "images" {
  #checkov:skip=CKV_AZURE_139:nodes pull over the public endpoint (no VNet); only Entra ID pulls, no admin user
  #checkov:skip=CKV_AZURE_163:image scanning is Defender for Containers, a subscription-wide choice
  #checkov:skip=CKV_AZURE_164:signed-image trust policy needs Notary signing in the image pipeline
  #checkov:skip=CKV_AZURE_165:geo-replication is a cost choice; the pool is in one region
  #checkov:skip=CKV_AZURE_166:quarantine would block freshly pushed job images from running
  #checkov:skip=CKV_AZURE_233:zone redundancy is a cost choice for a disposable build cache
  #checkov:skip=CKV_AZURE_237:dedicated data endpoints matter only with firewall rules, which are not used
  count                         = var.create_registry ? 1 : 0
  name                          = "${var.batch_account_name}acr"
  resource_group_name           = azurerm_resource_group.env.name
  location                      = azurerm_resource_group.env.location
  sku                           = "Premium"
  admin_enabled                 = false
  public_network_access_enabled = true
  retention_policy_in_days      = 7
  tags                          = local.tags
}

resource "azurerm_role_assignment" "acr_pull" {
  count                = local.grant_acr ? 1 : 0
  scope                = var.create_registry ? azurerm_container_registry.images[0].id : var.acr_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.nodes.principal_id
}

resource "azurerm_batch_account" "this" {
  #checkov:skip=CKV_AZURE_76:Batch encrypts with Microsoft-managed keys; a Key Vault CMK is a platform choice
  name                                = var.batch_account_name
  resource_group_name                 = azurerm_resource_group.env.name
  location                            = azurerm_resource_group.env.location
  pool_allocation_mode                = "BatchService"
  storage_account_id                  = azurerm_storage_account.env.id
  storage_account_authentication_mode = "BatchAccountManagedIdentity"
  storage_account_node_identity       = azurerm_user_assigned_identity.nodes.id
  public_network_access_enabled       = true
  tags                                = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.nodes.id]
  }

  depends_on = [azurerm_role_assignment.blob]
}

resource "azurerm_storage_container" "scripts" {
  #checkov:skip=CKV2_AZURE_21:blob read logging is a storage-account diagnostic setting chosen by the platform team
  count                 = local.uses_script ? 1 : 0
  name                  = "scripts"
  storage_account_id    = azurerm_storage_account.env.id
  container_access_type = "private"
}

# The provider writes blobs with Entra ID (storage_use_azuread): whoever applies needs
# data access to upload the start script.
resource "azurerm_role_assignment" "deployer_blob" {
  count                = local.uses_script ? 1 : 0
  scope                = azurerm_storage_container.scripts[0].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_storage_blob" "start_task" {
  count                  = local.uses_script ? 1 : 0
  name                   = "start-task.sh"
  storage_account_name   = azurerm_storage_account.env.name
  storage_container_name = azurerm_storage_container.scripts[0].name
  type                   = "Block"
  source_content         = var.start_task.script
  content_type           = "text/x-shellscript"

  depends_on = [azurerm_role_assignment.deployer_blob]
}

resource "azurerm_batch_pool" "pool" {
  for_each            = { for p in var.pools : p.id => p }
  name                = each.key
  display_name        = "${var.name} ${each.value.vm_size}"
  resource_group_name = azurerm_resource_group.env.name
  account_name        = azurerm_batch_account.this.name
  vm_size             = each.value.vm_size
  node_agent_sku_id   = var.node_image.node_agent_sku_id
  max_tasks_per_node  = each.value.task_slots_per_node
  metadata            = local.metadata

  storage_image_reference {
    publisher = var.node_image.publisher
    offer     = var.node_image.offer
    sku       = var.node_image.sku
    version   = var.node_image.version
  }

  auto_scale {
    evaluation_interval = var.autoscale_evaluation_interval
    formula             = each.value.autoscale_formula
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.nodes.id]
  }

  task_scheduling_policy {
    node_fill_type = var.node_fill_type
  }

  container_configuration {
    type                  = "DockerCompatible"
    container_image_names = [var.container_image]

    dynamic "container_registries" {
      for_each = local.registry_server == null ? [] : [local.registry_server]
      content {
        registry_server           = container_registries.value
        user_name                 = local.registry_user
        password                  = local.registry_user == null ? null : var.registry_password
        user_assigned_identity_id = local.registry_user == null ? azurerm_user_assigned_identity.nodes.id : null
      }
    }
  }

  dynamic "start_task" {
    for_each = local.uses_sas_start || local.uses_script ? [1] : []
    content {
      command_line       = var.start_task.command_line
      wait_for_success   = true
      task_retry_maximum = 1

      user_identity {
        auto_user {
          elevation_level = "Admin"
          scope           = "Pool"
        }
      }

      resource_file {
        http_url                  = local.uses_sas_start ? var.start_task_sas_url : azurerm_storage_blob.start_task[0].url
        file_path                 = "start-task.sh"
        user_assigned_identity_id = local.uses_sas_start ? null : azurerm_user_assigned_identity.nodes.id
      }
    }
  }

  depends_on = [azurerm_role_assignment.blob, azurerm_role_assignment.acr_pull]
}
