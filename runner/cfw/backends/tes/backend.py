"""The TES backend: CreateTask per job, ListTasks (MINIMAL view, the run's tags, page by
page, GetTask for what the pages miss) for status, CancelTask, and the FULL view for a
failed task's log."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.tes import translate as tr
from cfw.backends.tes.client import Auth, AuthRejected, NotFound, TesApi, plain_http_to_remote
from cfw.backends.tes.config import TesConfig
from cfw.core.errors import CfwError, UserError

log = logging.getLogger("cfw.tes")

# TES state -> what Snakemake is told; UNKNOWN, QUEUED, INITIALIZING, RUNNING and PAUSED
# are not finished (UNKNOWN is "no state yet", never a verdict)
STATES: dict[str, JobStatus] = {
    "UNKNOWN": JobStatus(JobState.PENDING),
    "QUEUED": JobStatus(JobState.PENDING),
    "INITIALIZING": JobStatus(JobState.PENDING),
    "RUNNING": JobStatus(JobState.RUNNING),
    "PAUSED": JobStatus(JobState.RUNNING, reason="paused by the server"),
    "COMPLETE": JobStatus(JobState.SUCCEEDED, exit_code=0),
    "EXECUTOR_ERROR": JobStatus(
        JobState.FAILED, reason="the job's command failed (EXECUTOR_ERROR)"
    ),
    "SYSTEM_ERROR": JobStatus(
        JobState.FAILED, reason="the TES server failed to run it (SYSTEM_ERROR)"
    ),
    "PREEMPTED": JobStatus(
        JobState.FAILED, reason="preempted: its machine was reclaimed (PREEMPTED)"
    ),
    "CANCELING": JobStatus(JobState.CANCELLED, reason="cancelled (CANCELING)"),
    "CANCELED": JobStatus(JobState.CANCELLED, reason="cancelled (CANCELED)"),
}


def resolve_auth(config: TesConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]) -> Auth:
    """Bearer TES_TOKEN, else FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD, else the provisioned
    server's credentials (read from Secrets Manager or SSM now), else none."""
    if environ.get("TES_TOKEN"):
        return Auth(source="TES_TOKEN", token=environ["TES_TOKEN"])
    user, password = environ.get("FUNNEL_SERVER_USER"), environ.get("FUNNEL_SERVER_PASSWORD")
    if password:
        if not user:
            raise UserError(
                "FUNNEL_SERVER_PASSWORD is set but FUNNEL_SERVER_USER is not",
                "set both, or neither",
            )
        return Auth(
            source="FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD", user=user, password=password
        )
    names = outputs.get("basic_auth_names") or {}
    if config.provision and names:
        from cfw.backends.tes import aws

        user = user or outputs.get("basic_auth_user")
        if user not in names:
            raise UserError(
                f"FUNNEL_SERVER_USER={user!r} is not a user of this server",
                f"use one of: {', '.join(names)}",
            )
        store = outputs.get("basic_auth_store", "secretsmanager")
        return Auth(
            source=f"{store} {names[user]}",
            user=user,
            password=aws.read_password(store, names[user], outputs["region"]),
        )
    return Auth()


def server_verify(config: TesConfig, outputs: Mapping[str, Any], state_dir: Path) -> bool | str:
    """What requests verifies the server's certificate with: the provisioned server's own
    (pinned, from SSM), the configured CA bundle, or the system's CAs."""
    if not config.provision:
        return config.ca_bundle or True
    from cfw.backends.tes import aws

    pem = aws.read_certificate(outputs["tls_certificate_parameter"], outputs["region"])
    if pem is None:
        raise UserError(
            "the Funnel server has not published its TLS certificate yet (it is still starting)",
            "wait a minute or two and try again",
        )
    path = state_dir / "tes-server.pem"
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return str(path)


def connect(
    config: TesConfig,
    outputs: Mapping[str, Any],
    state_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> TesApi:
    environ = os.environ if environ is None else environ
    url = outputs["tes_url"]
    auth = resolve_auth(config, outputs, environ)
    api = TesApi(url, auth, verify=server_verify(config, outputs, state_dir))
    if auth.sends_credentials and plain_http_to_remote(url):
        log.warning(
            "cfw: the TES server %s is plain http: credentials (%s) cross the network "
            "unencrypted; use https",
            url,
            auth.source,
        )
    return api


def describe_server(config: TesConfig, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """For `cfw status NAME`: where the server is and whether it answers."""
    details: dict[str, Any] = {
        "tes url": outputs.get("tes_url"),
        "storage": config.storage.prefix or outputs.get("storage_prefix"),
    }
    if outputs.get("basic_auth_names"):
        details["credentials"] = f"{outputs.get('basic_auth_store')}: " + ", ".join(
            outputs["basic_auth_names"].values()
        )
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            info = connect(config, outputs, Path(tmp)).discover()
        details["server"] = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except CfwError as exc:
        details["server"] = f"not answering: {exc}"
    return details


class TesBackend(Backend):
    def __init__(self, ctx: EnvContext):
        super().__init__(ctx)
        self.config: TesConfig = ctx.config
        self.api = connect(self.config, ctx.outputs, ctx.state_dir)
        self.api.discover()  # reachability and credentials, before anything is submitted
        self.tags = tr.run_filter(ctx.run_id, ctx.env_id)
        self._warned = False
        self._rejected_said = False

    def _warn_env_once(self, spec: JobSpec) -> None:
        if self._warned:
            return
        self._warned = True
        sent, withheld = tr.split_env(spec.env, self.config.storage.pass_credentials)
        message = (
            f"cfw: environment variables are not secret on TES: the server keeps them in "
            f"each task, readable by whoever may read the task ({self.api.url})"
        )
        if sent:
            message += f"; sent: {', '.join(sent)}"
        if withheld:
            message += (
                f"; credentials withheld: {', '.join(withheld)} (jobs reach storage "
                "with the compute's own role; storage.pass_credentials sends them)"
            )
        log.warning(message)

    def submit(self, spec: JobSpec, payload: dict[str, Any], secrets: Mapping[str, str]) -> str:
        self._warn_env_once(spec)
        return self.api.create(tr.fill_env(payload, secrets))

    def poll(self, external_ids: Sequence[str]) -> dict[str, JobStatus]:
        """ListTasks (MINIMAL, this run's tags) page by page until every id is seen or the
        pages end; then one GetTask (MINIMAL) per task the listing did not reach.

        A server may apply the page size before its tag filter and end the pages early:
        Funnel's DynamoDB backend reads page_size tasks, filters them, and gives no page
        token when none of them is this run's. The tasks it skips are asked for by id in
        the same poll, so each poll costs at most (pages + missing tasks) calls and every
        task's state is known after one poll. A 401/403 fails every job (the run cannot go
        on); an unreachable or failing server (5xx) means trying again at the next poll."""
        if not external_ids:
            return {}
        wanted, states = set(external_ids), {}
        token = None
        try:
            while True:
                tasks, token = self.api.list_page(
                    tags=self.tags,
                    view="MINIMAL",
                    page_size=self.config.page_size,
                    page_token=token,
                )
                states.update({t.id: t.state for t in tasks if t.id in wanted})
                if not token or wanted <= states.keys():
                    break
            result = {
                tid: STATES.get(state or "UNKNOWN", STATES["UNKNOWN"])
                for tid, state in states.items()
            }
            for tid in sorted(wanted - states.keys()):
                found = self._lookup(tid)
                if found is not None:
                    result[tid] = found
        except AuthRejected as exc:
            return self._rejected(external_ids, exc)
        except CfwError as exc:
            log.warning("cfw: TES status check failed, trying again next time: %s", exc)
            return {}
        return result

    def _lookup(self, task_id: str) -> JobStatus | None:
        """GetTask (MINIMAL) of a task ListTasks did not return; a task the server no longer
        knows has failed; None (ask again next poll) when the server is failing."""
        try:
            task = self.api.get(task_id, view="MINIMAL")
        except NotFound:
            return JobStatus(JobState.FAILED, reason="the TES server no longer knows this task")
        except AuthRejected:
            raise
        except CfwError as exc:
            log.warning("cfw: TES GetTask %s failed, trying again next time: %s", task_id, exc)
            return None
        return STATES.get(task.state or "UNKNOWN", STATES["UNKNOWN"])

    def _rejected(self, external_ids: Sequence[str], exc: AuthRejected) -> dict[str, JobStatus]:
        """The server no longer accepts the credentials: every job fails with one reason
        (the executor reports each and the run ends) instead of waiting forever."""
        reason = (
            f"TES server rejected the credentials (HTTP {exc.status}): "
            "set TES_TOKEN or FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD"
        )
        if not self._rejected_said:
            self._rejected_said = True
            log.error("cfw: %s", exc)
        return {tid: JobStatus(JobState.FAILED, reason=reason) for tid in external_ids}

    def cancel(self, external_ids: Sequence[str]) -> None:
        """CancelTask each; a task that has finished or is gone needs nothing."""
        for task_id in external_ids:
            try:
                self.api.cancel(task_id)
            except CfwError as exc:
                log.warning("cfw: could not cancel TES task %s: %s", task_id, exc)

    def logs(self, external_id: str) -> str:
        """The task's logs from the FULL view: system logs, exit codes, stdout and stderr
        (never the task's env, which the FULL view also holds)."""
        task = self.api.get(external_id, view="FULL")
        lines = [f"TES task {task.id} ({task.name or '?'}): {task.state}"]
        for attempt, task_log in enumerate(task.logs or [], start=1):
            lines.append(
                f"--- attempt {attempt}: {task_log.start_time or '?'} .. {task_log.end_time or '?'}"
            )
            lines += [f"system: {line}" for line in task_log.system_logs or []]
            for index, executor in enumerate(task_log.logs or []):
                lines.append(f"--- executor {index}: exit code {executor.exit_code}")
                if executor.stdout:
                    lines += ["--- stdout", executor.stdout.rstrip("\n")]
                if executor.stderr:
                    lines += ["--- stderr", executor.stderr.rstrip("\n")]
        return "\n".join(lines) + "\n"
