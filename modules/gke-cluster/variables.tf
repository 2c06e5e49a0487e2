variable "name" {
  type        = string
  description = "Name of the cfw environment."
}

variable "env_id" {
  type        = string
  description = "Unique id of the environment (the cfw-id label)."
}

variable "project" {
  type        = string
  description = "GCP project id everything is created in."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a GCP project id (6-30 lowercase letters, digits or '-')."
  }
}

variable "region" {
  type        = string
  description = "Region of the network, the bucket and (unless location is a zone) the cluster."
}

variable "location" {
  type        = string
  description = "Cluster location: the region (regional cluster) or one of its zones (zonal)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+(-[a-z])?$", var.location))
    error_message = "location must be a region such as europe-west4 or a zone such as europe-west4-a."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels for every resource that takes labels (cfw-env, cfw-id, cfw-expires-at, ...)."
  nullable    = false

  validation {
    condition     = length(var.labels) > 0
    error_message = "labels must not be empty: they are how teardown finds what this module made."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the GKE cluster, its network, subnet and router."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must be 2-40 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "release_channel" {
  type        = string
  description = "GKE release channel: RAPID, REGULAR or STABLE."
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the node subnet."
  default     = "10.10.0.0/20"
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range for pod IPs."
  default     = "10.16.0.0/14"
}

variable "services_cidr" {
  type        = string
  description = "Secondary range for service IPs."
  default     = "10.20.0.0/20"
}

variable "master_cidr" {
  type        = string
  description = "/28 range of the control plane's private endpoint."
  default     = "172.16.0.32/28"
}

variable "authorized_networks" {
  type        = list(string)
  description = "CIDR ranges allowed to reach the control plane's public endpoint."
  nullable    = false
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.authorized_networks) > 0 && alltrue([for c in var.authorized_networks : can(cidrhost(c, 0))])
    error_message = "authorized_networks must be a non-empty list of CIDR ranges."
  }
}

variable "system_machine_type" {
  type        = string
  description = "Machine type of the system pool (cluster add-ons, not jobs)."
  default     = "e2-standard-2"
}

variable "node_pools" {
  type = map(object({
    machine_type      = string
    spot              = bool
    max_nodes         = number
    disk_size_gb      = optional(number, 100)
    disk_type         = optional(string, "pd-balanced")
    accelerator_type  = optional(string)
    accelerator_count = optional(number, 0)
    driver_version    = optional(string, "DEFAULT")
    zones             = optional(list(string), [])
  }))
  description = "Job pools by name: each autoscales from 0 to max_nodes; spot pools and GPU pools are tainted."
  nullable    = false

  validation {
    condition     = alltrue([for k, p in var.node_pools : can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", k))])
    error_message = "node pool names must be 2-40 lowercase letters, digits or '-'."
  }

  validation {
    condition     = alltrue([for p in values(var.node_pools) : p.max_nodes >= 1])
    error_message = "max_nodes of every pool must be at least 1."
  }

  validation {
    condition     = alltrue([for p in values(var.node_pools) : (p.accelerator_type == null) == (p.accelerator_count == 0)])
    error_message = "a GPU pool needs both accelerator_type and accelerator_count >= 1."
  }

  validation {
    condition     = alltrue([for p in values(var.node_pools) : contains(["DEFAULT", "LATEST"], p.driver_version)])
    error_message = "driver_version must be DEFAULT or LATEST."
  }
}

variable "bucket_name" {
  type        = string
  description = "Name of the bucket that holds the workflow's sources and files (globally unique)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lowercase letters, digits, '-' or '_'."
  }
}

variable "bucket_retention_days" {
  type        = number
  description = "Objects in the bucket are deleted this many days after they were written."
  default     = 30

  validation {
    condition     = var.bucket_retention_days >= 1
    error_message = "bucket_retention_days must be at least 1."
  }
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace jobs run in (bound into the Workload Identity member)."
  default     = "cfw-jobs"
}

variable "service_account" {
  type        = string
  description = "Kubernetes service account jobs run as (bound into the Workload Identity member)."
  default     = "cfw-jobs"
}

variable "runners" {
  type        = list(string)
  description = "IAM members (user:, group:, serviceAccount:) who run workflows here: object access to the bucket."
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for m in var.runners : can(regex("^(user|group|serviceAccount):[^@]+@[^@]+$", m))])
    error_message = "runners must be IAM members such as user:alice@example.com."
  }
}

variable "jobs_account_id" {
  type        = string
  description = "Account id of the Google service account jobs act as (bucket access)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.jobs_account_id))
    error_message = "jobs_account_id must be 6-30 lowercase letters, digits or '-'."
  }
}

variable "nodes_account_id" {
  type        = string
  description = "Account id of the nodes' Google service account (logging, monitoring, image pulls)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.nodes_account_id))
    error_message = "nodes_account_id must be 6-30 lowercase letters, digits or '-'."
  }
}
