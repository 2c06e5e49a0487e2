variable "project" {
  type        = string
  description = "Project id the environment lives in."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lowercase letters, digits or '-'."
  }
}

variable "region" {
  type        = string
  description = "Region of the bucket, the subnet and the jobs (us-central1, europe-west4, ...)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1 or europe-west4."
  }
}

variable "name" {
  type        = string
  description = "Base name of every resource; also the service account id, the network tag and the prefix of the job secrets."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.name)) && !strcontains(var.name, "goog")
    error_message = "name must be 6-30 lowercase letters, digits or '-', start with a letter and not contain \"goog\"."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels for every resource that takes labels (cfw-env, cfw-id, cfw-expires-at, ...)."
  nullable    = false
  default     = {}
}

variable "bucket_name" {
  type        = string
  description = "Name of the bucket for workflow sources and files (default: NAME-data)."
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid bucket name (3-63 lowercase letters, digits, '-', '_' or '.')."
  }
}

variable "bucket_retention_days" {
  type        = number
  description = "Objects in the bucket are deleted this many days after they were written."
  nullable    = false
  default     = 30

  validation {
    condition     = var.bucket_retention_days >= 1 && floor(var.bucket_retention_days) == var.bucket_retention_days
    error_message = "bucket_retention_days must be a whole number of at least 1."
  }
}

variable "data_buckets" {
  type        = list(string)
  description = "Existing buckets (names) holding input data that the jobs may read."
  nullable    = false
  default     = []
}

variable "subnet_cidr" {
  type        = string
  description = "Private IPv4 range of the job VMs' subnet."
  nullable    = false
  default     = "10.64.0.0/20"

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr))
    error_message = "subnet_cidr must be an IPv4 range such as 10.64.0.0/20."
  }
}

variable "enable_nat" {
  type        = bool
  description = "Create a Cloud NAT so that job VMs without external IPs reach the internet (container registries)."
  nullable    = false
  default     = true
}

variable "allow_ssh_from_iap" {
  type        = bool
  description = "Allow SSH to job VMs from Identity-Aware Proxy's range (debugging)."
  nullable    = false
  default     = false
}

variable "enable_apis" {
  type        = bool
  description = "Enable the Batch, Compute, Logging, Storage, IAM and Secret Manager APIs (never disabled on destroy)."
  nullable    = false
  default     = true
}
