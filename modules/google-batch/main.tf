# Everything Google Batch jobs of one cfw environment need: the APIs, a service account
# the job VMs run as, a bucket for workflow sources and files, and a network of their own.
# The jobs themselves are created by cfw at run time, not here.

locals {
  tag           = var.name
  secret_prefix = "${var.name}-"
  # resources that take no labels carry the environment's id in their description
  described = "cfw environment ${lookup(var.labels, "cfw-env", var.name)} (cfw-id=${lookup(var.labels, "cfw-id", var.name)})"
  member    = "serviceAccount:${google_service_account.this.email}"
  apis = toset([
    "batch.googleapis.com", "cloudresourcemanager.googleapis.com", "compute.googleapis.com",
    "iam.googleapis.com", "logging.googleapis.com", "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
  # report to Batch, write logs, and be billed for bucket requests (the gcs storage
  # plugin of Snakemake sends userProject)
  job_roles = toset([
    "roles/batch.agentReporter", "roles/logging.logWriter", "roles/serviceusage.serviceUsageConsumer",
  ])
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.apis : toset([])

  project                    = var.project
  service                    = each.value
  disable_on_destroy         = false # other workloads of the project may use them
  disable_dependent_services = false
}

data "google_project" "this" {
  project_id = var.project

  depends_on = [google_project_service.apis]
}

# -- identity ------------------------------------------------------------------------------
resource "google_service_account" "this" {
  project      = var.project
  account_id   = var.name
  display_name = "cfw jobs of ${lookup(var.labels, "cfw-env", var.name)}"
  description  = local.described

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "job" {
  for_each = local.job_roles

  project = var.project
  role    = each.value
  member  = local.member
}

# Jobs read their environment variables from Secret Manager; cfw names those secrets
# with secret_prefix and deletes them after the run. The account may read only those.
resource "google_project_iam_member" "secrets" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = local.member

  condition {
    title       = "${var.name}-secrets"
    description = "Only the job secrets of ${local.described}"
    expression  = "resource.name.startsWith(\"projects/${data.google_project.this.number}/secrets/${local.secret_prefix}\")"
  }
}

# -- storage -------------------------------------------------------------------------------
resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:run data with a retention of days; access logs would need a second bucket that outlives teardown
  #checkov:skip=CKV_GCP_78:versioning would keep deleted run data (and its cost) past the lifecycle rule
  project                     = var.project
  name                        = coalesce(var.bucket_name, "${var.name}-data")
  location                    = upper(var.region)
  force_destroy               = true # holds only run data; `cfw down` must be able to remove it
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

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

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "data" {
  for_each = toset(["roles/storage.objectAdmin", "roles/storage.legacyBucketReader"])

  bucket = google_storage_bucket.data.name
  role   = each.value
  member = local.member
}

resource "google_storage_bucket_iam_member" "inputs" {
  for_each = {
    for pair in setproduct(var.data_buckets, ["roles/storage.objectViewer", "roles/storage.legacyBucketReader"]) :
    "${pair[0]} ${pair[1]}" => { bucket = pair[0], role = pair[1] }
  }

  bucket = each.value.bucket
  role   = each.value.role
  member = local.member
}

# -- network -------------------------------------------------------------------------------
resource "google_compute_network" "this" {
  project                 = var.project
  name                    = var.name
  description             = local.described
  auto_create_subnetworks = false

  depends_on = [google_project_service.apis]
}

resource "google_compute_subnetwork" "this" {
  #checkov:skip=CKV_GCP_26:flow logs of short-lived batch VMs cost more than they tell; enable them on the subnet if policy requires
  project                  = var.project
  name                     = var.name
  description              = local.described
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true # Cloud Storage, Logging and Batch without external IPs
}

# Job VMs serve nothing: no inbound traffic (outbound is allowed by the implied rule).
resource "google_compute_firewall" "deny_ingress" {
  project     = var.project
  name        = "${var.name}-deny-ingress"
  description = "No inbound traffic to the job VMs of ${local.described}"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 65000

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]
  target_tags   = [local.tag]

  log_config {
    metadata = "EXCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "iap_ssh" {
  count = var.allow_ssh_from_iap ? 1 : 0

  project     = var.project
  name        = "${var.name}-iap-ssh"
  description = "SSH from Identity-Aware Proxy to the job VMs of ${local.described}"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 1000

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  source_ranges = ["35.235.240.0/20"] # Identity-Aware Proxy's TCP forwarding range
  target_tags   = [local.tag]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  count = var.enable_nat ? 1 : 0

  project     = var.project
  name        = var.name
  description = local.described
  region      = var.region
  network     = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  count = var.enable_nat ? 1 : 0

  project                            = var.project
  name                               = var.name
  region                             = var.region
  router                             = google_compute_router.this[0].name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.this.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
