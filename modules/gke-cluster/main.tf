# A GKE cluster for batch workflows: private nodes behind Cloud NAT, a small system pool,
# job pools that scale from zero (on-demand, Spot, GPU), a bucket for the workflow's files,
# and a Google service account for jobs, reached through Workload Identity.

locals {
  workload_pool = "${var.project}.svc.id.goog"
  # the Kubernetes service account jobs run as, as IAM names it
  jobs_member = "serviceAccount:${local.workload_pool}[${var.namespace}/${var.service_account}]"
  node_roles = toset([
    "roles/container.defaultNodeServiceAccount",
    "roles/artifactregistry.reader",
  ])
  oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
}

# -- network -----------------------------------------------------------------------------

resource "google_compute_network" "vpc" {
  #checkov:skip=CKV2_GCP_18:GKE writes the cluster's own firewall rules; the implied rule denies every other ingress
  project                 = var.project
  name                    = var.cluster_name
  description             = "cfw ${var.name} (cfw-id ${var.env_id})"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "nodes" {
  #checkov:skip=CKV_GCP_26:flow logs are billed per GB and nobody reads them for a short-lived batch network
  #checkov:skip=CKV_GCP_76:the network is IPv4 only; Private Google Access is on for IPv4
  project                  = var.project
  name                     = var.cluster_name
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }
}

# private nodes reach image registries and storage through Cloud NAT
resource "google_compute_router" "nat" {
  project = var.project
  name    = var.cluster_name
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  project                            = var.project
  name                               = var.cluster_name
  region                             = var.region
  router                             = google_compute_router.nat.name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# -- identities --------------------------------------------------------------------------

# nodes run with a least-privilege account, not the Compute Engine default (Editor)
resource "google_service_account" "nodes" {
  project      = var.project
  account_id   = var.nodes_account_id
  display_name = "cfw ${var.name} GKE nodes"
  description  = "Nodes of cluster ${var.cluster_name} (cfw-id ${var.env_id})"
}

resource "google_project_iam_member" "nodes" {
  for_each = local.node_roles
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${google_service_account.nodes.email}"
}

# what jobs act as: read and write the bucket, nothing else
resource "google_service_account" "jobs" {
  project      = var.project
  account_id   = var.jobs_account_id
  display_name = "cfw ${var.name} jobs"
  description  = "Jobs of cluster ${var.cluster_name}, via Workload Identity (cfw-id ${var.env_id})"
}

resource "google_service_account_iam_member" "jobs_workload_identity" {
  service_account_id = google_service_account.jobs.name
  role               = "roles/iam.workloadIdentityUser"
  member             = local.jobs_member

  # the identity pool PROJECT.svc.id.goog exists once a cluster with Workload Identity does
  depends_on = [google_container_cluster.this]
}

# -- cluster -----------------------------------------------------------------------------

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_12:Dataplane V2 (ADVANCED_DATAPATH) enforces network policy; the network_policy block conflicts with it
  #checkov:skip=CKV_GCP_65:RBAC through Google Groups needs a Workspace domain the user may not have; access is IAM plus a namespaced Role
  #checkov:skip=CKV_GCP_66:jobs run the workflow's own public images (Snakemake, BioContainers), which carry no attestations
  #checkov:skip=CKV_GCP_61:intranode visibility logs every pod-to-pod flow; batch jobs do not talk to each other
  #checkov:skip=CKV_GCP_21:labels are var.labels, which must not be empty (validation); the check only sees literal maps
  #checkov:skip=CKV_GCP_24:PodSecurityPolicy was removed from Kubernetes in 1.25
  project             = var.project
  name                = var.cluster_name
  location            = var.location
  network             = google_compute_network.vpc.id
  subnetwork          = google_compute_subnetwork.nodes.id
  networking_mode     = "VPC_NATIVE"
  datapath_provider   = "ADVANCED_DATAPATH"
  deletion_protection = false
  resource_labels     = var.labels

  # node pools are managed below; the default pool is removed right after creation
  remove_default_node_pool = true
  initial_node_count       = 1

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false # cfw reaches the API from the user's machine
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.authorized_networks
      content {
        cidr_block   = cidr_blocks.value
        display_name = "cfw-${cidr_blocks.key}"
      }
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  # scale idle job nodes away quickly
  cluster_autoscaling {
    autoscaling_profile = "OPTIMIZE_UTILIZATION"
  }

  enable_shielded_nodes = true

  # the short-lived default pool gets the same hardened settings as the real pools
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.oauth_scopes
    image_type      = "COS_CONTAINERD"
    resource_labels = var.labels
    metadata = {
      disable-legacy-endpoints = "true"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  lifecycle {
    ignore_changes = [node_config, initial_node_count]
  }

  depends_on = [google_project_iam_member.nodes]
}

resource "google_container_node_pool" "system" {
  project  = var.project
  name     = "system"
  cluster  = google_container_cluster.this.id
  location = var.location

  initial_node_count = 1

  autoscaling {
    total_min_node_count = 1
    total_max_node_count = 3
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.system_machine_type
    disk_size_gb    = 50
    disk_type       = "pd-balanced"
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.oauth_scopes
    labels          = { "cfw-pool" = "system" }
    resource_labels = var.labels
    metadata = {
      disable-legacy-endpoints = "true"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# one pool per entry, from zero nodes; jobs select their pool by the cfw-pool label
resource "google_container_node_pool" "jobs" {
  for_each = var.node_pools

  project        = var.project
  name           = each.key
  cluster        = google_container_cluster.this.id
  location       = var.location
  node_locations = length(each.value.zones) > 0 ? each.value.zones : null

  initial_node_count = 0

  autoscaling {
    total_min_node_count = 0
    total_max_node_count = each.value.max_nodes
    location_policy      = "ANY"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = each.value.machine_type
    spot            = each.value.spot
    disk_size_gb    = each.value.disk_size_gb
    disk_type       = each.value.disk_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.oauth_scopes
    labels          = { "cfw-pool" = each.key }
    resource_labels = var.labels
    metadata = {
      disable-legacy-endpoints = "true"
    }

    # only jobs that tolerate preemption land on Spot nodes
    dynamic "taint" {
      for_each = each.value.spot ? [1] : []
      content {
        key    = "cloud.google.com/gke-spot"
        value  = "true"
        effect = "NO_SCHEDULE"
      }
    }

    # only jobs that ask for a GPU land on GPU nodes
    dynamic "taint" {
      for_each = each.value.accelerator_type != null ? [1] : []
      content {
        key    = "nvidia.com/gpu"
        value  = "present"
        effect = "NO_SCHEDULE"
      }
    }

    dynamic "guest_accelerator" {
      for_each = each.value.accelerator_type != null ? [each.value] : []
      content {
        type  = guest_accelerator.value.accelerator_type
        count = guest_accelerator.value.accelerator_count

        gpu_driver_installation_config {
          gpu_driver_version = guest_accelerator.value.driver_version
        }
      }
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# -- storage -----------------------------------------------------------------------------

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:access logs of a bucket that holds one environment's run data are not kept
  #checkov:skip=CKV_GCP_78:run data is reproducible and deleted with the environment; versions would only add cost
  project                     = var.project
  name                        = var.bucket_name
  location                    = upper(var.region)
  force_destroy               = true
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  # deleted run data is gone at once (no billed soft-delete copies after teardown)
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  lifecycle_rule {
    condition {
      age = var.bucket_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

# objects read/write/delete, and bucket metadata (Snakemake checks that the bucket exists)
resource "google_storage_bucket_iam_member" "jobs" {
  for_each = toset(["roles/storage.objectUser", "roles/storage.legacyBucketReader"])
  bucket   = google_storage_bucket.data.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.jobs.email}"
}

# people who run workflows on a shared cluster read and write the same bucket
resource "google_storage_bucket_iam_member" "runners" {
  for_each = {
    for pair in setproduct(var.runners, ["roles/storage.objectUser", "roles/storage.legacyBucketReader"]) :
    "${pair[0]} ${pair[1]}" => { member = pair[0], role = pair[1] }
  }
  bucket = google_storage_bucket.data.name
  role   = each.value.role
  member = each.value.member
}
