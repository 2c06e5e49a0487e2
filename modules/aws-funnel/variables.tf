variable "name" {
  type        = string
  description = "Prefix of every resource name (for example cfw-tes-0a1b2c); lowercase letters, digits and '-'."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters: lowercase letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource (and for the instances AWS Batch starts)."
  nullable    = false
  default     = {}
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "Networks (CIDR blocks) that may reach the Funnel server's HTTPS port; nothing else can."
  nullable    = false

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_cidrs must hold at least one valid CIDR block, such as 203.0.113.7/32."
  }
}

variable "https_port" {
  type        = number
  description = "Port on which the server answers (HTTPS in front of Funnel's HTTP port)."
  default     = 443

  validation {
    condition     = var.https_port > 0 && var.https_port < 65536
    error_message = "https_port must be a TCP port number."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of the Funnel server."
  default     = "t3.small"
}

variable "ami_id" {
  type        = string
  description = "AMI of the Funnel server; null means the latest Amazon Linux 2023."
  default     = null
}

variable "vpc_id" {
  type        = string
  description = "VPC to use; null means the region's default VPC."
  default     = null
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets for the server (the first) and for AWS Batch; empty means the VPC's subnets."
  nullable    = false
  default     = []
}

variable "user_data" {
  type        = string
  description = "cloud-init document that installs and starts Funnel (it holds no password)."

  validation {
    condition     = length(var.user_data) > 0 && length(var.user_data) <= 16384
    error_message = "user_data must be a non-empty document of at most 16 KiB."
  }
}

variable "users" {
  type        = list(string)
  description = "Basic-auth users of the Funnel server; each gets a generated password kept in the credentials store."
  nullable    = false
  default     = ["cfw"]

  validation {
    condition     = length(var.users) > 0 && alltrue([for u in var.users : can(regex("^[a-z][a-z0-9_-]{0,31}$", u))])
    error_message = "users must hold at least one name of lowercase letters, digits, '_' or '-'."
  }
}

variable "credentials_store" {
  type        = string
  description = "Where the generated passwords are kept: secretsmanager or ssm (SecureString parameters)."
  default     = "secretsmanager"

  validation {
    condition     = contains(["secretsmanager", "ssm"], var.credentials_store)
    error_message = "credentials_store must be secretsmanager or ssm."
  }
}

variable "password_version" {
  type        = number
  description = "Increase to generate new passwords for every user."
  default     = 1
}

variable "batch" {
  type = object({
    max_vcpus      = optional(number, 64)
    instance_types = optional(list(string), ["optimal"])
    spot           = optional(bool, false)
    worker_image   = optional(string, "quay.io/ohsu-comp-bio/funnel:0.12.2")
  })
  description = "Funnel's AWS Batch compute backend: the compute environment (min 0 vCPU) and the worker image."
  nullable    = false
  default     = {}

  validation {
    condition     = var.batch.max_vcpus >= 1 && var.batch.max_vcpus <= 10000
    error_message = "batch.max_vcpus must be between 1 and 10000."
  }

  validation {
    condition     = length(var.batch.instance_types) > 0
    error_message = "batch.instance_types must name at least one type (or optimal)."
  }
}

variable "object_expiration_days" {
  type        = number
  description = "Delete run data in the bucket after this many days; null keeps it."
  default     = null

  validation {
    condition     = var.object_expiration_days == null || try(var.object_expiration_days >= 1, false)
    error_message = "object_expiration_days must be null or at least 1."
  }
}
