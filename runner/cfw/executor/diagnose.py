"""What the executor can tell about a run's jobs beyond their states: how many of each rule
the DAG will submit, and why a job whose declared output is missing failed."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from cfw.backends.base import Backend

MISSING_OUTPUT_RE = re.compile(
    r"MissingOutputException|Missing files after|missing in storage|Missing output files",
)


def planned_jobs(workflow: Any) -> dict[str, int]:
    """The jobs this executor will be handed, per rule (not the local rules); {} when the
    DAG cannot tell."""
    try:
        jobs = [j for j in workflow.dag.needrun_jobs() if not j.is_local]
    except Exception:  # best effort: a view, never a reason to fail a run
        return {}
    names = Counter(j.name if j.is_group() else j.rule.name for j in jobs)
    return dict(names)


def _plain_paths(job: Any, prefix: str | None) -> list[str]:
    """The job's declared outputs as the Snakefile names them (relative paths)."""
    paths = []
    for f in getattr(job, "output", []):
        query = str(getattr(getattr(f, "storage_object", None), "query", "") or f)
        if prefix and query.startswith(prefix.rstrip("/") + "/"):
            query = query[len(prefix.rstrip("/")) + 1 :]
        if not Path(query).is_absolute():
            paths.append(query)
    return paths


def output_hint(
    backend: Backend, external_id: str, job: Any, log: Path | None, prefix: str | None = None
) -> str | None:
    """A failed job whose declared output is missing in storage: name the file it wrote at
    the output's plain path in its working directory, and say to write to {output}."""
    try:
        text = log.read_text(errors="replace") if log else ""
    except OSError:
        return None
    if not MISSING_OUTPUT_RE.search(text):
        return None
    rule = job.name if job.is_group() else job.rule.name
    workdir = backend.workdir(external_id)
    outputs = _plain_paths(job, prefix)
    if workdir is not None:
        written = [p for p in outputs if (workdir / p).exists()]
        if written:
            return (
                f"rule {rule} wrote {', '.join(written)} in its working directory ({workdir}) "
                "instead of to its declared output: write to {output} (in storage mode "
                "{output} is the local copy Snakemake uploads, not the plain path)"
            )
    return (
        f"rule {rule} did not produce its declared output "
        f"({', '.join(outputs) or 'see the log'}) where Snakemake looks for it: if the rule "
        "writes a literal path, write to {output} instead"
    )
