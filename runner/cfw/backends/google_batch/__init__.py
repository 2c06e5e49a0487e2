"""Kind `google-batch`: each job a Google Batch job, the successor of Cloud Life Sciences."""
