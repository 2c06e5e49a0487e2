locals {
  quota_hard = var.quota == null ? {} : {
    for key, value in {
      "requests.cpu"            = var.quota.cpu
      "limits.cpu"              = var.quota.cpu
      "requests.memory"         = var.quota.memory
      "limits.memory"           = var.quota.memory
      "requests.nvidia.com/gpu" = var.quota.gpus == null ? null : tostring(var.quota.gpus)
      "count/jobs.batch"        = var.quota.jobs == null ? null : tostring(var.quota.jobs)
      "pods"                    = var.quota.pods == null ? null : tostring(var.quota.pods)
    } : key => value if value != null
  }
  limit_defaults = var.limits == null ? {} : {
    for key, value in { cpu = var.limits.default_cpu, memory = var.limits.default_memory } : key => value if value != null
  }
  limit_max = var.limits == null ? {} : {
    for key, value in { cpu = var.limits.max_cpu, memory = var.limits.max_memory } : key => value if value != null
  }
  # what a person (or CI) running workflows may do in the namespace, and nothing else:
  # submit, watch and stop Jobs, read their pods and logs, keep each run's Secret and
  # heartbeat (a ConfigMap)
  runner_rules = [
    { api_groups = ["batch"], resources = ["jobs"], verbs = ["create", "get", "list", "watch", "delete"] },
    { api_groups = [""], resources = ["pods"], verbs = ["get", "list", "watch"] },
    { api_groups = [""], resources = ["pods/log"], verbs = ["get"] },
    { api_groups = [""], resources = ["secrets"], verbs = ["create", "get", "list", "update", "delete"] },
    { api_groups = [""], resources = ["configmaps"], verbs = ["create", "get", "list", "update", "delete"] },
  ]
}

resource "kubernetes_namespace_v1" "this" {
  metadata {
    name = var.namespace
    labels = merge(var.labels, var.pod_security_level == "privileged" ? {} : {
      "pod-security.kubernetes.io/enforce" = var.pod_security_level
      "pod-security.kubernetes.io/warn"    = var.pod_security_level
    })
  }
}

# the jobs' pods run as this account; it has no rights in the API (only a cloud identity,
# through its annotations) and no token mounted
resource "kubernetes_service_account_v1" "jobs" {
  metadata {
    name        = var.jobs_service_account
    namespace   = kubernetes_namespace_v1.this.metadata[0].name
    labels      = var.labels
    annotations = var.jobs_service_account_annotations
  }
  automount_service_account_token = false
}

resource "kubernetes_service_account_v1" "runner" {
  metadata {
    name      = var.runner_service_account
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }
  automount_service_account_token = false
}

resource "kubernetes_role_v1" "runner" {
  metadata {
    name      = "cfw-runner"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  dynamic "rule" {
    for_each = local.runner_rules
    content {
      api_groups = rule.value.api_groups
      resources  = rule.value.resources
      verbs      = rule.value.verbs
    }
  }
}

resource "kubernetes_role_binding_v1" "runner" {
  metadata {
    name      = "cfw-runner"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.runner.metadata[0].name
  }

  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.runner.metadata[0].name
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }

  dynamic "subject" {
    for_each = var.runners
    content {
      kind      = subject.value.kind
      name      = subject.value.name
      namespace = subject.value.namespace
      api_group = subject.value.kind == "ServiceAccount" ? null : "rbac.authorization.k8s.io"
    }
  }
}

resource "kubernetes_resource_quota_v1" "this" {
  count = length(local.quota_hard) > 0 ? 1 : 0

  metadata {
    name      = "cfw-quota"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  spec {
    hard = local.quota_hard
  }
}

resource "kubernetes_limit_range_v1" "this" {
  count = length(local.limit_defaults) + length(local.limit_max) > 0 ? 1 : 0

  metadata {
    name      = "cfw-limits"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  spec {
    limit {
      type    = "Container"
      default = local.limit_defaults
      max     = local.limit_max
    }
  }
}
