"""Backend-neutral core: config, rendering, Terraform, working state, lifecycle."""
