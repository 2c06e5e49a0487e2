"""Google Cloud code shared by gke and google-batch: machine types and GPU models, and the
guard's Cloud Function (its entry, its zip, its module call)."""
