# The local kind creates no cloud resource: only the directory that holds the sandboxes
# jobs run in, with a record of the labels that own it. terraform_data is built into
# Terraform, so this module needs no provider.
resource "terraform_data" "this" {
  input = {
    sandbox_root = var.sandbox_root
    labels       = jsonencode(merge(var.labels, { "cfw-env" = var.name, "cfw-id" = var.env_id }))
  }

  provisioner "local-exec" {
    command = "umask 077 && mkdir -p \"$ROOT\" && printf '%s\\n' \"$LABELS\" > \"$ROOT/.cfw-labels.json\""
    environment = {
      ROOT   = self.input.sandbox_root
      LABELS = self.input.labels
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "rm -rf -- \"$ROOT\""
    environment = {
      ROOT = self.input.sandbox_root
    }
  }
}
