variable "name" {
  type        = string
  description = "Name of the Function app and its plan (e.g. cfw-<env id>-guard); also its custom Batch role's prefix."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$", var.name))
    error_message = "name: 2-60 lowercase letters, digits or '-', not starting or ending with '-'."
  }
}

variable "resource_group_name" {
  type        = string
  description = "Resource group of the environment, where the guard's resources go."
}

variable "location" {
  type        = string
  description = "Azure location of every resource, e.g. westeurope."
}

variable "host_storage_account_name" {
  type        = string
  description = "The Function host's own storage account (globally unique): 3-24 lowercase letters and digits."

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.host_storage_account_name))
    error_message = "host_storage_account_name: 3-24 lowercase letters and digits."
  }
}

variable "package" {
  type = object({
    filename = string
    sha256   = string
  })
  description = "The Function's zip cfw builds (cfw.backends.azure_batch.guard_zip; its name changes with its content) and its hex SHA-256."
}

variable "environment" {
  type        = map(string)
  description = "What the Function reads: CFW_GUARD_ADAPTER and the adapter's names (no key, SAS or connection string belongs here)."
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.environment : !can(regex("(?i)(AccountKey=|SharedAccessSignature|[?&]sig=)", v))])
    error_message = "environment: no value may hold a key, a SAS or a connection string with a key."
  }
}

variable "settings" {
  type = object({
    interval_minutes     = number
    orphan_after_seconds = number
    idle_after_seconds   = optional(number)
    expires_at           = optional(string, "never")
  })
  description = "The guard's config: how often it checks, when a run is orphaned, when idle stops (null: never), the cfw-expires-at label."

  validation {
    condition     = var.settings.interval_minutes >= 1 && var.settings.interval_minutes <= 60 && floor(var.settings.interval_minutes) == var.settings.interval_minutes
    error_message = "settings.interval_minutes: a whole number from 1 to 60."
  }
}

variable "batch_account_id" {
  type        = string
  description = "Resource id of the Batch account: the only scope of the Function's Batch role (its jobs and tasks)."
}

variable "data_container_id" {
  type        = string
  description = "Resource id of the blob container of the heartbeats and the guard's record: the only scope of the Function's data access."
}

variable "python_version" {
  type        = string
  description = "Python of the Function app."
  nullable    = false
  default     = "3.11"

  validation {
    condition     = contains(["3.10", "3.11", "3.12"], var.python_version)
    error_message = "python_version: 3.10, 3.11 or 3.12."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource that takes them (cfw-env, cfw-id, cfw-expires-at, user labels)."
  nullable    = false
}
