variable "project" {
  type        = string
  description = "Project id of the environment."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project: a Google Cloud project id (6-30 lowercase letters, digits or '-')."
  }
}

variable "region" {
  type        = string
  description = "Region of the function and the schedule (the environment's)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region: a Google Cloud region such as europe-west4."
  }
}

variable "name" {
  type        = string
  description = "Name of the function, its custom roles and the schedule (e.g. cfw-<env id>-guard)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,56}[a-z0-9]$", var.name))
    error_message = "name: 2-58 lowercase letters, digits or '-', starting with a letter (the roles add a suffix)."
  }
}

variable "account_ids" {
  type = object({
    function  = string
    scheduler = string
  })
  description = "Ids of the function's and the schedule's service accounts (6-30 characters each)."
  nullable    = false

  validation {
    condition     = alltrue([for id in [var.account_ids.function, var.account_ids.scheduler] : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", id))]) && var.account_ids.function != var.account_ids.scheduler
    error_message = "account_ids: two different service account ids, 6-30 lowercase letters, digits or '-'."
  }
}

variable "bucket" {
  type        = string
  description = "The environment's bucket: holds the function's source zip (and, with store_prefix, the heartbeats)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket: a Cloud Storage bucket name."
  }
}

variable "store_prefix" {
  type        = string
  description = "Where in the bucket the heartbeats and the guard's record are (\".cfw/\"); null: not in the bucket (gke keeps them in ConfigMaps)."
  default     = null

  validation {
    condition     = var.store_prefix == null || can(regex("^([A-Za-z0-9._-]+/)+$", var.store_prefix))
    error_message = "store_prefix: null or a folder path ending in '/' (\".cfw/\")."
  }
}

variable "package" {
  type = object({
    filename = string
    sha256   = string
  })
  description = "The function's source zip cfw builds (cfw.backends._google.guard_zip) and its hex SHA-256."

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.package.sha256))
    error_message = "package.sha256: the zip's SHA-256, 64 hex digits."
  }
}

variable "environment" {
  type        = map(string)
  description = "What the handler reads: CFW_GUARD_ADAPTER and the adapter's names (no secret belongs here)."
  nullable    = false

  validation {
    condition     = can(regex("^cfw\\.backends\\.[a-z_]+\\.guard:from_environ$", lookup(var.environment, "CFW_GUARD_ADAPTER", "")))
    error_message = "environment: CFW_GUARD_ADAPTER must name a cfw adapter (cfw.backends.KIND.guard:from_environ)."
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

variable "permissions" {
  type        = list(string)
  description = "The function's project permissions (one custom role): only what its adapter calls."
  nullable    = false

  validation {
    condition     = length(var.permissions) > 0 && alltrue([for p in var.permissions : can(regex("^[a-z]+\\.[A-Za-z]+\\.[A-Za-z]+$", p))])
    error_message = "permissions: a non-empty list of IAM permissions (service.resource.verb)."
  }
}

variable "runtime" {
  type        = string
  description = "Cloud Functions Python runtime."
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]+$", var.runtime))
    error_message = "runtime: a Python runtime such as python311."
  }
}

variable "entry_point" {
  type        = string
  description = "The function's entry point in the zip's main.py."
  default     = "guard"
}

variable "timeout" {
  type        = number
  description = "Seconds one check may take (GKE's pool resizes are waited for)."
  default     = 540

  validation {
    condition     = var.timeout >= 60 && var.timeout <= 1800
    error_message = "timeout: 60 to 1800 seconds (Cloud Scheduler waits at most 30 minutes)."
  }
}

variable "enable_apis" {
  type        = bool
  description = "Enable the APIs the function and the schedule need (kept enabled on destroy)."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels for every resource that takes them (cfw-env, cfw-id, cfw-expires-at, user labels)."
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "cfw-id")
    error_message = "labels: must hold the environment's cfw-id."
  }
}
