variable "usergroup" {
  type        = string
  description = "Tibanna user group: every name is derived from it (tibanna_<usergroup>_..., run_task_awsem_<usergroup>, tibanna_unicorn_<usergroup>)."

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,37}$", var.usergroup))
    error_message = "usergroup must be 1-38 letters, digits, '_' or '-', starting with a letter or digit (IAM role names are at most 64 characters)."
  }
}

variable "data_bucket_name" {
  type        = string
  description = "Name of the S3 bucket created for job inputs and outputs."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.data_bucket_name))
    error_message = "data_bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' or '-')."
  }
}

variable "log_bucket_name" {
  type        = string
  description = "Name of the S3 bucket created for Tibanna's job logs (<jobid>.log, .postrun.json, ...)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.log_bucket_name))
    error_message = "log_bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' or '-')."
  }
}

variable "extra_bucket_names" {
  type        = list(string)
  description = "Existing buckets (not created or changed here) that jobs may read and write, like `deploy_unicorn -b`."
  nullable    = false
  default     = []
}

variable "lambda_packages" {
  type = map(object({
    filename         = string
    source_code_hash = string
  }))
  description = "The Lambda zip of each Tibanna function (run_task_awsem, check_task_awsem, update_cost_awsem): path and base64 SHA-256."
  nullable    = false

  validation {
    condition     = alltrue([for f in ["run_task_awsem", "check_task_awsem", "update_cost_awsem"] : contains(keys(var.lambda_packages), f)])
    error_message = "lambda_packages needs run_task_awsem, check_task_awsem and update_cost_awsem."
  }
}

variable "tibanna_version" {
  type        = string
  description = "Version of the tibanna package the Lambdas were built from (their TIBANNA_VERSION)."
}

variable "lambda_runtime" {
  type        = string
  description = "Python runtime of the Lambdas (Tibanna's own config uses python3.11)."
  default     = "python3.11"

  validation {
    condition     = can(regex("^python3\\.[0-9]+$", var.lambda_runtime))
    error_message = "lambda_runtime must be a Python runtime such as python3.11."
  }
}

variable "lambda_timeout" {
  type        = number
  description = "Timeout of each Lambda in seconds (Tibanna: 800)."
  default     = 800

  validation {
    condition     = var.lambda_timeout >= 30 && var.lambda_timeout <= 900
    error_message = "lambda_timeout must be between 30 and 900 seconds."
  }
}

variable "lambda_memory_size" {
  type        = number
  description = "Memory of each Lambda in MB (Tibanna: 256)."
  default     = 256
}

variable "awsf_repo" {
  type = object({
    name   = optional(string, "4dn-dcic/tibanna")
    branch = optional(string, "master")
  })
  description = "GitHub repository and branch the EC2 instances fetch Tibanna's awsf3 scripts from (TIBANNA_REPO_NAME/BRANCH)."
  nullable    = false
  default     = {}
}

variable "cost_updater" {
  type        = bool
  description = "Also create the cost-updater state machine (`deploy_unicorn --deploy-costupdater`)."
  default     = false
}

variable "dynamodb_table_name" {
  type        = string
  description = "The job table Tibanna's code writes to; its Lambdas use the fixed name tibanna-master."
  default     = "tibanna-master"
}

variable "create_dynamodb_table" {
  type        = bool
  description = "Create the job table, which Tibanna shares among the unicorns of an account and region; false where another unicorn made it (the policies still name it)."
  default     = true
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the Lambdas' CloudWatch log groups and of the objects in the log bucket (0: keep forever)."
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention: 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ... 3653."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource that takes tags (cfw-env, cfw-id, cfw-expires-at, ...)."
  nullable    = false
  default     = {}
}

variable "log_object_expiration_days" {
  type        = number
  description = "Delete objects in the log bucket after this many days (0: keep them)."
  default     = 0

  validation {
    condition     = var.log_object_expiration_days >= 0
    error_message = "log_object_expiration_days must be 0 or more."
  }
}
