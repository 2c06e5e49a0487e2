variable "name" {
  type        = string
  description = "Name of the function, its roles, log group and schedule group (e.g. cfw-<env id>-guard)."

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,52}$", var.name))
    error_message = "name: 1-52 letters, digits, '-' or '_' (the roles add a suffix of up to 12)."
  }
}

variable "package" {
  type = object({
    filename         = string
    source_code_hash = string
  })
  description = "The Lambda zip cfw builds (cfw.backends._aws.guard_zip) and its base64 SHA-256."
}

variable "handler" {
  type        = string
  description = "The function's handler."
  default     = "cfw.backends._aws.guard_lambda.handler"
}

variable "environment" {
  type        = map(string)
  description = "What the handler reads: CFW_GUARD_ADAPTER, CFW_GUARD_STORE and the adapter's names (no secret belongs here)."
  nullable    = false
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

variable "statements" {
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  description = "The function's permissions: only the actions its adapter calls, on the environment's resources."
  nullable    = false
}

variable "runtime" {
  type        = string
  description = "Lambda Python runtime."
  default     = "python3.12"
}

variable "timeout" {
  type        = number
  description = "Seconds one check may take."
  default     = 120
}

variable "log_retention_days" {
  type        = number
  description = "Days the function's log is kept."
  default     = 14
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource (cfw-env, cfw-id, cfw-expires-at, user labels)."
  nullable    = false
}
