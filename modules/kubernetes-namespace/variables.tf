variable "namespace" {
  type        = string
  description = "Namespace to create for the jobs."

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace)) && !startswith(var.namespace, "kube-") && var.namespace != "default"
    error_message = "namespace must be a DNS label (at most 63 lowercase letters, digits or '-'), not default or kube-*."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels for every object (cfw-env, cfw-id, cfw-expires-at, ...)."
  nullable    = false

  validation {
    condition     = length(var.labels) > 0
    error_message = "labels must not be empty: they are how teardown finds what this module made."
  }
}

variable "jobs_service_account" {
  type        = string
  description = "Service account the jobs' pods run as; it gets no Kubernetes API rights."
  default     = "cfw-jobs"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.jobs_service_account))
    error_message = "jobs_service_account must be a DNS label."
  }
}

variable "jobs_service_account_annotations" {
  type        = map(string)
  description = "Annotations of the jobs' service account: workload identity (eks.amazonaws.com/role-arn, azure.workload.identity/client-id, iam.gke.io/gcp-service-account)."
  default     = {}
  nullable    = false
}

variable "runner_service_account" {
  type        = string
  description = "Service account bound to the runner Role, for CI (`kubectl create token`)."
  default     = "cfw-runner"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.runner_service_account))
    error_message = "runner_service_account must be a DNS label."
  }
}

variable "runners" {
  type = list(object({
    kind      = string
    name      = string
    namespace = optional(string)
  }))
  description = "Users, groups and service accounts (besides the runner service account) bound to the runner Role."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for r in var.runners : contains(["User", "Group", "ServiceAccount"], r.kind)])
    error_message = "each runner's kind must be User, Group or ServiceAccount."
  }

  validation {
    condition     = alltrue([for r in var.runners : (r.kind == "ServiceAccount") == (r.namespace != null)])
    error_message = "a ServiceAccount runner needs its namespace; users and groups have none."
  }
}

variable "pod_security_level" {
  type        = string
  description = "Pod Security Standard the namespace enforces: privileged, baseline or restricted."
  default     = "baseline"

  validation {
    condition     = contains(["privileged", "baseline", "restricted"], var.pod_security_level)
    error_message = "pod_security_level must be privileged, baseline or restricted."
  }
}

variable "quota" {
  type = object({
    cpu    = optional(string)
    memory = optional(string)
    gpus   = optional(number)
    jobs   = optional(number)
    pods   = optional(number)
  })
  description = "A ResourceQuota for the namespace (requests and limits of all pods together, Kubernetes quantities such as \"64\" and \"256Gi\"); null: none."
  default     = null

  validation {
    condition     = alltrue([for q in [try(var.quota.cpu, null), try(var.quota.memory, null)] : q == null || can(regex("^[0-9]+(\\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$", q))])
    error_message = "quota cpu and memory must be Kubernetes quantities such as 64, 500m or 256Gi."
  }
}

variable "limits" {
  type = object({
    default_cpu    = optional(string)
    default_memory = optional(string)
    max_cpu        = optional(string)
    max_memory     = optional(string)
  })
  description = "A LimitRange for the namespace's containers (defaults for those that set no limit, maximums); null: none."
  default     = null

  validation {
    condition     = alltrue([for q in [try(var.limits.default_cpu, null), try(var.limits.default_memory, null), try(var.limits.max_cpu, null), try(var.limits.max_memory, null)] : q == null || can(regex("^[0-9]+(\\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$", q))])
    error_message = "limits must be Kubernetes quantities such as 2, 500m or 8Gi."
  }
}
