variable "name" {
  type        = string
  description = "Name of the cfw environment."
}

variable "env_id" {
  type        = string
  description = "Unique id of the environment (the cfw-id tag)."
}

variable "labels" {
  type        = map(string)
  description = "Tags for every resource (cfw-env, cfw-id, cfw-expires-at, user labels)."
  nullable    = false
  default     = {}
}

variable "location" {
  type        = string
  description = "Azure location of every resource, e.g. westeurope."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group the module creates and puts everything in."

  validation {
    condition     = can(regex("^[-\\w\\.\\(\\)]{1,89}[-\\w\\(\\)]$", var.resource_group_name))
    error_message = "resource_group_name: 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'."
  }
}

variable "batch_account_name" {
  type        = string
  description = "Batch account name: 3-24 lowercase letters and digits."

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.batch_account_name))
    error_message = "batch_account_name: 3-24 lowercase letters and digits."
  }
}

variable "storage_account_name" {
  type        = string
  description = "Storage account name (globally unique): 3-24 lowercase letters and digits."

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name: 3-24 lowercase letters and digits."
  }
}

variable "containers" {
  type        = list(string)
  description = "Blob containers to create (run data, task logs)."
  nullable    = false
  default     = ["data", "logs"]

  validation {
    condition     = alltrue([for c in var.containers : can(regex("^[a-z0-9](-?[a-z0-9])+$", c)) && length(c) <= 63])
    error_message = "containers: 3-63 lowercase letters, digits and single '-'."
  }
}

variable "pools" {
  type = list(object({
    id                  = string
    vm_size             = string
    task_slots_per_node = optional(number, 1)
    autoscale_formula   = string
  }))
  description = "One autoscaling pool per VM size; the formula is cfw's rendered autoscale formula."
  nullable    = false

  validation {
    condition     = length(var.pools) > 0 && length(var.pools) == length(distinct([for p in var.pools : p.id]))
    error_message = "pools: at least one, with distinct ids."
  }

  validation {
    condition     = alltrue([for p in var.pools : p.task_slots_per_node >= 1 && p.task_slots_per_node <= 256])
    error_message = "pools: task_slots_per_node must be between 1 and 256."
  }

  validation {
    condition     = alltrue([for p in var.pools : strcontains(p.autoscale_formula, "$NodeDeallocationOption = taskcompletion")])
    error_message = "pools: the autoscale formula must deallocate on taskcompletion (running tasks are never killed)."
  }
}

variable "autoscale_evaluation_interval" {
  type        = string
  description = "How often Batch evaluates the autoscale formula (ISO 8601, at least PT5M)."
  nullable    = false
  default     = "PT5M"

  validation {
    condition     = can(regex("^PT([5-9]|[1-9][0-9]+)M$", var.autoscale_evaluation_interval))
    error_message = "autoscale_evaluation_interval: PTnM with n >= 5."
  }
}

variable "node_image" {
  type = object({
    publisher         = string
    offer             = string
    sku               = string
    version           = optional(string, "latest")
    node_agent_sku_id = string
  })
  description = "Marketplace image of the nodes (must support containers) and its node agent."
  nullable    = false
  default = {
    publisher         = "microsoft-dsvm"
    offer             = "ubuntu-hpc"
    sku               = "2204"
    node_agent_sku_id = "batch.node.ubuntu 22.04"
  }
}

variable "node_fill_type" {
  type        = string
  description = "How tasks are spread over nodes: Pack or Spread."
  nullable    = false
  default     = "Pack"

  validation {
    condition     = contains(["Pack", "Spread"], var.node_fill_type)
    error_message = "node_fill_type: Pack or Spread."
  }
}

variable "container_image" {
  type        = string
  description = "Job image with Snakemake and its Azure storage plugin; prefetched on every node."
}

variable "registry" {
  type = object({
    server   = string
    username = optional(string)
  })
  description = "Private registry of the job image; without username the pool identity pulls (AcrPull)."
  default     = null
}

variable "registry_password" {
  type        = string
  description = "Password of registry.username (pass it as TF_VAR_registry_password)."
  sensitive   = true
  default     = null
}

variable "acr_id" {
  type        = string
  description = "Resource id of an existing Azure Container Registry to grant AcrPull on."
  default     = null
}

variable "create_registry" {
  type        = bool
  description = "Create an Azure Container Registry (Premium: private, no admin user) for job images."
  nullable    = false
  default     = false
}

variable "start_task" {
  type = object({
    command_line = optional(string, "/bin/bash -c 'bash ./start-task.sh'")
    script       = optional(string)
  })
  description = "What every node runs when it starts; script is uploaded by the module."
  nullable    = false
  default     = {}
}

variable "start_task_sas_url" {
  type        = string
  description = "SAS URL of a start script (instead of start_task.script); pass it as TF_VAR_start_task_sas_url."
  sensitive   = true
  default     = null

  validation {
    condition     = var.start_task_sas_url == null || startswith(coalesce(var.start_task_sas_url, "x"), "https://")
    error_message = "start_task_sas_url must be an https:// URL."
  }
}
