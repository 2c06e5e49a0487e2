"""The Kubernetes Job path shared by the kinds whose jobs are Kubernetes Jobs (gke, kubernetes):
the Job manifest (manifest.py, pure), Job and pod states (status.py, pure), the runner's
RBAC (rbac.py, pure), the API calls (client.py) and the backend (backend.py)."""
