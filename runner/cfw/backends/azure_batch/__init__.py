"""Kind `azure-batch`: autoscaling Azure Batch pools; each job a Batch task."""
