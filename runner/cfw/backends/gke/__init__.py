"""Kind `gke`: a GKE cluster with autoscaling pools; each DAG job a Kubernetes batch/v1 Job."""
