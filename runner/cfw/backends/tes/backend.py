"""The TES backend: CreateTask per job, ListTasks (MINIMAL view, the run's tags, page by
page, GetTask for what the pages miss) for status, CancelTask, and the FULL view for a
failed task's log."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cfw.backends.base import Backend, EnvContext, JobSpec, JobState, JobStatus
from cfw.backends.tes.client import AuthRejected, NotFound, connect
from cfw.backends.tes.config import TesConfig
from cfw.backends.tes.status import status_of
from cfw.backends.tes.translate import fill_env, run_filter, split_env
from cfw.core.errors import CfwError

log = logging.getLogger("cfw.tes")


class TesBackend(Backend[TesConfig]):
    def __init__(self, ctx: EnvContext[TesConfig]):
        super().__init__(ctx)
        self.config: TesConfig = ctx.config
        self.api = connect(self.config, ctx.outputs, ctx.state_dir)
        self.api.discover()  # reachability and credentials, before anything is submitted
        self.tags = run_filter(ctx.run_id, ctx.env_id)
        self._warned = False
        self._rejected_said = False

    def _warn_env_once(self, spec: JobSpec) -> None:
        if self._warned:
            return
        self._warned = True
        sent, withheld = split_env(spec.env, self.config.storage.pass_credentials)
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
        return self.api.create(fill_env(payload, secrets))

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
            result = {tid: status_of(state) for tid, state in states.items()}
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
        return status_of(task.state)

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
