"""The Snakemake executor: each DAG job becomes a backend submission."""
