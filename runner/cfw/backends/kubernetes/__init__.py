"""Kind `kubernetes`: jobs as Kubernetes Jobs on a cluster cfw did not create (any kubeconfig)."""
