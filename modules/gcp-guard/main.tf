# The guard of one environment on Google Cloud: a Cloud Scheduler job calls a Cloud Function
# (2nd gen, on Cloud Run) every `interval_minutes`, with an OIDC token of its own service
# account, the only one allowed to invoke it. Each call is one check (cfw.core.guard_check)
# with the kind's adapter: it cancels the jobs of runs whose runner is gone, stops what
# bills while idle, and enforces ttl. The function runs as a service account of its own
# whose only project permissions are `permissions` (one custom role), and, with
# `store_prefix`, object access to that folder of the bucket (heartbeats, the record).
# The function bills per call (none between checks); the schedule $0.10 a month beyond the
# billing account's three free Cloud Scheduler jobs.

locals {
  # resources that take no labels carry the environment's id in their description
  described = "cfw environment ${lookup(var.labels, "cfw-env", var.name)} (cfw-id=${var.labels["cfw-id"]})"
  role_id   = replace(var.name, "-", "_")
  variables = merge(var.environment, {
    CFW_GUARD_INTERVAL     = tostring(var.settings.interval_minutes * 60)
    CFW_GUARD_ORPHAN_AFTER = tostring(var.settings.orphan_after_seconds)
    CFW_GUARD_IDLE_AFTER   = var.settings.idle_after_seconds == null ? "off" : tostring(var.settings.idle_after_seconds)
    CFW_GUARD_EXPIRES_AT   = var.settings.expires_at
  })
  # every interval_minutes from the full hour (60: once an hour); an interval that does not
  # divide 60 has a shorter last gap before the hour
  schedule = var.settings.interval_minutes == 60 ? "0 * * * *" : "*/${var.settings.interval_minutes} * * * *"
  apis = toset([
    "artifactregistry.googleapis.com", "cloudbuild.googleapis.com", "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com", "run.googleapis.com",
  ])
  bucket_resource = "projects/_/buckets/${var.bucket}"
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.apis : toset([])

  project                    = var.project
  service                    = each.value
  disable_on_destroy         = false # other workloads of the project may use them
  disable_dependent_services = false
}

# -- the function's identity: only what its adapter calls -----------------------------------
resource "google_service_account" "function" {
  project      = var.project
  account_id   = var.account_ids.function
  display_name = "cfw guard of ${lookup(var.labels, "cfw-env", var.name)}"
  description  = "The guard function of ${local.described}"
}

# A deleted custom role keeps its id for a while; the provider undeletes it when the same
# environment is brought up again.
resource "google_project_iam_custom_role" "function" {
  project     = var.project
  role_id     = local.role_id
  title       = "cfw guard ${var.name}"
  description = "What the guard of ${local.described} calls"
  permissions = var.permissions
}

resource "google_project_iam_member" "function" {
  project = var.project
  role    = google_project_iam_custom_role.function.name
  member  = "serviceAccount:${google_service_account.function.email}"
}

# heartbeats and the guard's record: read, list and write under store_prefix only (GCS asks
# for storage.objects.delete to overwrite an object: the record is rewritten every check)
resource "google_project_iam_custom_role" "store" {
  count = var.store_prefix == null ? 0 : 1

  project     = var.project
  role_id     = "${local.role_id}_store"
  title       = "cfw guard ${var.name}: heartbeats"
  description = "The heartbeats and guard record of ${local.described}"
  permissions = ["storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"]
}

resource "google_storage_bucket_iam_member" "store" {
  count = var.store_prefix == null ? 0 : 1

  bucket = var.bucket
  role   = google_project_iam_custom_role.store[0].name
  member = "serviceAccount:${google_service_account.function.email}"

  condition {
    title       = "${var.name}-store"
    description = "Only ${var.store_prefix} of gs://${var.bucket} (listing is checked on the bucket)"
    expression  = "resource.name == \"${local.bucket_resource}\" || resource.name.startsWith(\"${local.bucket_resource}/objects/${var.store_prefix}\")"
  }
}

# -- the function -----------------------------------------------------------------------------
# Named by its content: a changed zip is a new object, and so a new build of the function.
# A bucket lifecycle rule may delete it later: the built function keeps running, and the
# next `cfw up` uploads it again.
resource "google_storage_bucket_object" "source" {
  bucket       = var.bucket
  name         = "cfw-guard/${substr(var.package.sha256, 0, 16)}.zip"
  source       = var.package.filename
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project
  location    = var.region
  name        = var.name
  description = "cfw guard: cancels orphaned runs' jobs, stops what bills while idle, enforces ttl"
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = var.entry_point

    source {
      storage_source {
        bucket = var.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = 0 # nothing runs, nothing bills, between checks
    max_instance_count               = 1 # one check at a time
    max_instance_request_concurrency = 1
    available_memory                 = "512M"
    timeout_seconds                  = var.timeout
    environment_variables            = local.variables
    # Cloud Run counts Cloud Scheduler of the same project as internal; its OIDC token is
    # also checked (roles/run.invoker)
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function.email
  }

  depends_on = [google_project_service.apis, google_project_iam_member.function]
}

# -- the schedule -----------------------------------------------------------------------------
resource "google_service_account" "scheduler" {
  project      = var.project
  account_id   = var.account_ids.scheduler
  display_name = "cfw guard schedule of ${lookup(var.labels, "cfw-env", var.name)}"
  description  = "Calls the guard function of ${local.described}"
}

# the schedule's account may invoke the function, and nobody else (no allUsers)
resource "google_cloud_run_service_iam_member" "invoker" {
  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.this.name # a 2nd gen function's Cloud Run service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "this" {
  project          = var.project
  region           = var.region
  name             = var.name
  description      = "cfw guard check of ${local.described}"
  schedule         = local.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${var.timeout}s"

  retry_config {
    retry_count = 0 # the next check comes one interval later
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.this.service_config[0].uri
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  depends_on = [google_project_service.apis, google_cloud_run_service_iam_member.invoker]
}
