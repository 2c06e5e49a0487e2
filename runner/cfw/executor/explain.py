"""`cfw run --explain`: the exact submission of every DAG job, submitting nothing.

Runs Snakemake's own dry-run (so the DAG, checkpoints aside, is exactly the one a real run
would schedule, in the same order), with the dry-run executor swapped for one that builds
each job's command exactly as the cfw executor does and translates it with the
environment's backend. Each job becomes one JSON line in the file named by
``CFW_EXPLAIN_OUT``, with its ``price`` on a cloud kind (its share of the machine it
gets; a "no price for X in Y" problem where the tables have none). Values known only
after `up` are placeholders; secrets are redacted.

Invoked by `cfw run --explain` as ``python -m cfw.executor.explain SNAKEMAKE_ARGS...``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from cfw.backends.base import JobSpec
from cfw.core.errors import CfwError
from cfw.executor.cost import job_pricer
from cfw.executor.executor import CfwExecutor
from cfw.executor.override import override
from cfw.executor.resources import check_resources
from cfw.executor.session import open_context, pick_environment
from cfw.executor.spec import resources_of

REDACTED = "<redacted>"
CREDENTIAL_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL|SESSION|SAS|AUTH", re.I)
OUT_VAR = "CFW_EXPLAIN_OUT"
STORAGE_VAR = "CFW_EXPLAIN_STORAGE"  # JSON {provider, prefix}: what a real run would use
CORES_VAR = "CFW_EXPLAIN_CORES"
COLLECT_VAR = "CFW_COLLECT_OUT"  # write {inputs, targets} of the DAG there, then stop
UNLIMITED_CORES = 2**20  # what a dry-run gets instead of a remote run's "no core limit"
ERROR = "cannot_submit"  # the key of a job's record when the backend refuses it
ENV_VAR = "CFW_EXPLAIN_ENV"  # the environment: the dry-run executor gets no --cfw-* settings


def redact(value: Any, secrets: list[str]) -> Any:
    """Replace every secret value wherever it appears in a JSON-like structure."""
    secrets = [s for s in secrets if s and len(s) >= 4]
    if not secrets:
        return value
    text = json.dumps(value)
    found = [s for s in (json.dumps(s)[1:-1] for s in secrets) if s in text]
    if not found:  # most jobs: nothing to redact, no second parse
        return value
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return json.loads(text)


class ExplainExecutor(CfwExecutor):
    """Builds and translates each job like CfwExecutor, then reports it done unsubmitted."""

    def __post_init__(self) -> None:
        settings = self.workflow.executor_settings
        self.project = Path.cwd()
        env = os.environ.get(ENV_VAR) or (getattr(settings, "env", None) if settings else None)
        name, _ = pick_environment(self.project, env)
        self.run_id = getattr(settings, "run_id", None) or "explain"
        self.kind, self.ctx = open_context(self.project, name, self.run_id, explain=True)
        self.backend = None
        self.pricer = job_pricer(self.kind, self.ctx, override())
        self.out = open(os.environ[OUT_VAR], "a")  # noqa: SIM115 - closed in shutdown
        self.real_storage = json.loads(os.environ.get(STORAGE_VAR) or "null")
        if os.environ.get(COLLECT_VAR):
            self._collect(Path(os.environ[COLLECT_VAR]))
            raise SystemExit(0)
        self._fake_source_archive()

    def _collect(self, path: Path) -> None:
        """The DAG's external input files (to upload) and its targets (to download)."""
        dag = self.workflow.dag

        def queries(files) -> set[str]:
            return {f.storage_object.query for f in files if getattr(f, "is_storage", False)}

        inputs: set[str] = set()
        for job in dag.needrun_jobs(exclude_finished=False):
            inputs |= queries(f for f in job.input if dag.is_external_input(f, job))
        targets: set[str] = set()
        for job in dag.targetjobs:
            targets |= queries(job.output if job.output else job.input)
        found: dict[str, Any] = {"inputs": sorted(inputs), "targets": sorted(targets)}
        for job in dag.needrun_jobs(exclude_finished=False):
            if self._runs_locally(job):
                continue
            try:  # every rule's resources, before anything is uploaded or submitted
                check_resources(job.name, job.threads, resources_of(job))
            except CfwError as exc:
                found[ERROR] = {"message": exc.message, "hint": exc.hint}
                break
        path.write_text(json.dumps(found))

    @property
    def cores(self):
        return os.environ.get(CORES_VAR) or "all"

    def _fake_source_archive(self) -> None:
        """The archive query and checksum a real run would upload (nothing is uploaded)."""
        from snakemake.workflow import SourceArchiveInfo

        workflow = self.workflow
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sources.tar.xz"
            workflow.write_source_archive(path)
            checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        prefix = self._storage()[1] or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        workflow._source_archive = SourceArchiveInfo(
            f"{prefix}snakemake-workflow-sources.{checksum}.tar.xz", checksum
        )

    def _storage(self) -> tuple[str | None, str | None]:
        if self.real_storage:
            return self.real_storage["provider"], self.real_storage["prefix"]
        settings = self.workflow.storage_settings
        return settings.default_storage_provider, settings.default_storage_prefix

    def job_spec(self, job: JobExecutorInterface) -> JobSpec:
        settings = self.workflow.storage_settings
        saved = settings.default_storage_provider, settings.default_storage_prefix
        settings.default_storage_provider, settings.default_storage_prefix = self._storage()
        try:
            return super().job_spec(job)
        finally:
            settings.default_storage_provider, settings.default_storage_prefix = saved

    def run_job(self, job: JobExecutorInterface) -> None:
        if self._runs_locally(job):  # local rules run in the main Snakemake: nothing submitted
            self._done(job)
            return
        try:
            spec = self.job_spec(job)
            payload = self.kind.translate(spec, self.ctx)
        except CfwError as exc:  # a job this environment cannot take: said, not a traceback
            error = {"message": exc.message, "hint": getattr(exc, "hint", None)}
            rule = job.name if job.is_group() else job.rule.name
            self.out.write(json.dumps({"rule": rule, "jobid": job.jobid, ERROR: error}))
            self.out.write("\n")
            self._done(job)
            return
        record = {
            "rule": spec.rule,
            "jobid": spec.jobid,
            "kind": self.kind.name,
            "env": self.ctx.name,
            "wildcards": dict(spec.wildcards),
            "resources": {
                "threads": spec.threads,
                "mem_mb": spec.mem_mb,
                "disk_mb": spec.disk_mb,
                "runtime": spec.runtime,
                "machine_type": spec.machine_type,
                "gpu": spec.gpu,
                "gpu_model": spec.gpu_model,
                "preemptible": spec.preemptible,
            },
            "env_vars": list(spec.env),
            "submission": payload,
        }
        plan = self.spot.policy.plan(spec, self.kind, self.ctx)  # spot jobs only
        if plan is not None:
            record = {**record, "preemption": plan, "submission": record.pop("submission")}
        envvars = self.envvars()
        record = redact(record, list(envvars.values()))
        price = self.pricer(spec)  # the job's share of its machine: an estimate
        if price is not None:
            # machine, region and list prices; only credentials are redacted from it, so
            # that "no price for X in REGION" keeps its region
            credentials = [v for k, v in envvars.items() if CREDENTIAL_NAME.search(k)]
            submission = record.pop("submission")
            record["price"] = redact(price.as_dict(), credentials)
            record["submission"] = submission
        # buffered: `cfw run --explain` reads the file once this process has ended
        self.out.write(json.dumps(record, sort_keys=False) + "\n")
        self._done(job)

    def _runs_locally(self, job: JobExecutorInterface) -> bool:
        """Job.is_local as a real run would see it (in a dry-run every job looks local)."""
        from itertools import chain

        from snakemake.io import is_flagged

        localrules = getattr(self.workflow, "_localrules", set())
        for single in job.jobs if job.is_group() else [job]:
            rule = single.rule
            if rule.group is None and (
                rule.name in localrules or rule.norun or getattr(rule, "is_template_engine", False)
            ):
                return True
            if any(is_flagged(f, "local") for f in chain(single.input, single.output)):
                return True
        return False

    def _done(self, job: JobExecutorInterface) -> None:
        # like the dry-run executor: done at once, nothing registered on disk
        self.workflow.scheduler.submit_callback(job)
        self.workflow.scheduler.finish_callback(job)

    async def check_active_jobs(self, active_jobs):
        for info in active_jobs:
            yield info

    def cancel_jobs(self, active_jobs) -> None:
        pass

    def shutdown(self) -> None:
        with self.lock:
            self.wait = False
        self.wait_thread.join()
        self.out.close()

    def printjob(self, job: JobExecutorInterface) -> None:
        pass


def main(argv: list[str]) -> None:
    import snakemake.cli
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    registry = ExecutorPluginRegistry()
    dryrun = registry.get_plugin("dryrun")
    registry.plugins["dryrun"] = dataclasses.replace(dryrun, executor=ExplainExecutor)
    if not any(a in ("--cores", "-c") or a.startswith("--cores=") for a in argv):
        # a real run of a remote executor has no core limit, but a dry-run without --cores
        # gets 1 and would scale every rule's threads down to 1
        argv = [*argv, "--cores", str(UNLIMITED_CORES)]
    snakemake.cli.main([*argv, "--dry-run"])


if __name__ == "__main__":
    main(sys.argv[1:])
