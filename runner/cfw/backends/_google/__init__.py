"""Google Cloud tables shared by gke and google-batch: machine types and GPU models."""
