variable "name" {
  type        = string
  description = "Name of the cfw environment."
}

variable "env_id" {
  type        = string
  description = "Unique id of the environment (the cfw-id label)."
}

variable "sandbox_root" {
  type        = string
  description = "Absolute path of the directory that holds job sandboxes."

  validation {
    condition     = startswith(var.sandbox_root, "/") && length(var.sandbox_root) > 1
    error_message = "sandbox_root must be an absolute path other than /."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels recorded with the environment (cfw-env, cfw-id, cfw-expires-at, ...)."
  nullable    = false
  default     = {}
}
