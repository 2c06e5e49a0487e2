"""What `cfw run` shows of a run while it goes on: a short account, read from the run's
records (jobs.jsonl, run.json) and Snakemake's own output (snakemake.log in the run's
directory), never from Snakemake's terminal output.

One line per finished, failed or cancelled job; under a failed one its last lines of
output (error lines first) and its log's path; at the end one table, per rule: jobs,
failures, retries, wall time and, where the run priced its jobs, their estimated cost.
`--verbose` (or ``CFW_LOG=snakemake``) shows Snakemake's output live instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfw.core.prices.job import format_usd
from cfw.core.records import read_run
from cfw.core.report import Reporter
from cfw.core.state import private_dir

SNAKEMAKE_LOG = "snakemake.log"
EXCERPT_LINES = 20
ERROR_RE = re.compile(
    r"error|exception|traceback|fail|fatal|cannot|can't|could not|not found|no such file|"
    r"denied|missing|killed|abort|panic",
    re.IGNORECASE,
)
# the executor's lines the account replaces with its own, in Snakemake's output
_REPLACED = ("cfw: jobs ", "cfw: log of failed job", "cfw: running on environment")


# Snakemake options whose output is the point (a dry run's job list, a DAG on stdout):
# Snakemake's output goes to the terminal as it is
INFO_OPTIONS = (
    "-n",
    "--dry-run",
    "--dryrun",
    "-l",
    "--list",
    "--list-rules",
    "--lt",
    "--list-target-rules",
    "-S",
    "--summary",
    "-D",
    "--detailed-summary",
    "--dag",
    "--rulegraph",
    "--filegraph",
    "--d3dag",
    "--lint",
    "--lc",
    "--list-changes",
    "--list-code-changes",
    "--li",
    "--list-input-changes",
    "--lp",
    "--list-params-changes",
    "--list-untracked",
    "--lu",
    "--print-compilation",
    "--export-cwl",
    "--containerize",
    "--archive",
    "-h",
    "--help",
    "-v",
    "--version",
)


def passthrough_wanted(snakemake_args: list[str]) -> bool:
    """Snakemake's output is the result (a dry run, a listing, a graph): no account."""
    return any(arg.split("=", 1)[0] in INFO_OPTIONS for arg in snakemake_args)


def verbose_wanted(snakemake_args: list[str], environ: Mapping[str, str]) -> bool:
    """Show Snakemake's own output live (`--verbose`, or CFW_LOG=snakemake)."""
    wanted = {w.strip() for w in environ.get("CFW_LOG", "").split(",")}
    return "snakemake" in wanted or "--verbose" in snakemake_args


def shown(run_dir: Path, project: Path) -> str:
    """The run's snakemake.log as the user can open it from the workflow directory."""
    path = run_dir / SNAKEMAKE_LOG
    try:
        return str(path.relative_to(project))
    except ValueError:
        return str(path)


# what every job's own Snakemake prints, whatever the job: not worth a line of the account
_BOILERPLATE = re.compile(
    r"^(Building DAG of jobs|Using shell:|Provided cores:|Rules claiming more threads|"
    r"Select jobs to execute|Execute \d+ jobs|Shutting down, this might|Exiting because a job|"
    r"Storing output in storage|Elapsed time:|WorkflowError:$|At least one job did not complete|"
    r"Complete log\(s\):|Waiting at most \d+ seconds for missing files|"
    r"\[\w{3} \w{3} +\d+ [\d:]+ \d{4}\]$|\s*(resources|reason|jobid|message): )"
)


def job_output(text: str) -> str:
    """A job's log without its Snakemake's banner and the lines every job prints."""
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.strip() == "SNAKEMAKE":  # the banner: up to the blank line that ends it
            for rest in lines:
                if not rest.strip() and any(x.startswith("  Config") for x in out[-1:]):
                    break
                if rest.startswith("  "):
                    out.append(rest)
                    continue
                if not rest.strip() or set(rest.strip()) == {"="}:
                    continue
                out.append(rest)
                break
            out = [x for x in out if not x.startswith("  ")]
            continue
        if not _BOILERPLATE.match(line):
            out.append(line)
    return "\n".join(out)


def excerpt(text: str, lines: int = EXCERPT_LINES) -> list[str]:
    """About LINES lines of a job's output: its error lines from before the tail first,
    then its last lines."""
    all_lines: list[str] = []
    for line in (line.rstrip() for line in text.splitlines()):
        if line or (all_lines and all_lines[-1]):  # no leading or repeated blank lines
            all_lines.append(line)
    while all_lines and not all_lines[-1]:
        all_lines.pop()
    if len(all_lines) <= lines:
        return all_lines
    errors = [line for line in all_lines[:-lines] if ERROR_RE.search(line)][-(lines // 3) :]
    if not errors:
        return all_lines[-lines:]
    return [*errors, "...", *all_lines[-(lines - len(errors) - 1) :]]


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class RuleTally:
    planned: int = 0
    jobids: set[int] = field(default_factory=set)
    done: int = 0
    failed: int = 0  # failed attempts
    cancelled: int = 0
    retries: int = 0  # attempts after the first
    running: int = 0
    first: float | None = None
    last: float | None = None
    usd: float | None = None

    @property
    def jobs(self) -> int:
        return max(self.planned, len(self.jobids))

    def wall(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return self.last - self.first

    def wall_so_far(self, now: float | None = None) -> float:
        """From the first submission to the last end, or to now while jobs run."""
        if self.first is None:
            return 0.0
        if self.running:
            return (time.time() if now is None else now) - self.first
        return self.wall()


class Account:
    """Follows one run's records and tells the user what happened, as it happens."""

    def __init__(
        self,
        reporter: Reporter,
        run_dir: Path,
        run_id: str,
        *,
        lines: bool = True,
    ):
        self.reporter = reporter
        self.run_dir = run_dir
        self.run_id = run_id
        # a line per job and the executor's own cfw: lines (else Snakemake's output is shown)
        self.lines = lines
        self.jobs: dict[str, dict[str, Any]] = {}  # external id -> its submission
        self.rules: dict[str, RuleTally] = {}
        self.finished = 0
        self.nothing_to_do = False
        self._offsets = {"jobs.jsonl": 0, SNAKEMAKE_LOG: 0}
        self._planned_read = False
        self.done_lines = True  # off under a live view, which shows them as bars
        self._cost: dict[str, Any] | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / SNAKEMAKE_LOG

    # -- following --------------------------------------------------------------------------
    def poll(self) -> None:
        """Read what the records gained since the last call and report it."""
        self._read_planned()
        for line in self._new_lines("jobs.jsonl"):
            try:
                self._event(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        for line in self._new_lines(SNAKEMAKE_LOG):
            self._snakemake_line(line)

    def _new_lines(self, name: str) -> list[str]:
        path = self.run_dir / name
        try:
            with path.open("rb") as handle:
                handle.seek(self._offsets[name])
                data = handle.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # complete lines only
        self._offsets[name] += end
        return data[:end].decode(errors="replace").splitlines()

    def cost_so_far(self) -> float | None:
        """The run's estimated cost so far (run.json, about once a second), if priced."""
        cost = self._cost or {}
        if not any(cost.get(k) for k in ("as_of", "attempts", "fixed_usd_per_hour")):
            return None
        total = cost.get("total_usd")
        return float(total) if total is not None else None

    def _read_planned(self) -> None:
        run = read_run(self.run_dir)
        if run is not None and run.cost:
            self._cost = run.cost
        if self._planned_read:
            return
        planned = (run.extra or {}).get("planned") if run else None
        if planned:
            for rule, count in planned.items():
                self._rule(rule).planned = int(count)
            self._planned_read = True

    def _rule(self, name: str) -> RuleTally:
        return self.rules.setdefault(name, RuleTally())

    @property
    def planned_total(self) -> int:
        return sum(t.jobs for t in self.rules.values())

    def _event(self, record: dict[str, Any]) -> None:
        event, ext = record["event"], record.get("external_id")
        t = record.get("t")
        if event == "submitted":
            self.jobs[ext] = record
            tally = self._rule(record.get("rule", "?"))
            tally.jobids.add(record.get("jobid"))
            tally.running += 1
            if int(record.get("attempt") or 1) > 1:
                tally.retries += 1
            if t is not None and tally.first is None:
                tally.first = t
            return
        job = self.jobs.get(ext)
        if job is None or event not in ("succeeded", "failed", "cancelled") or job.get("ended"):
            return
        job["ended"] = event
        tally = self._rule(job.get("rule", "?"))
        tally.running = max(0, tally.running - 1)
        if t is not None:
            tally.last = t if tally.last is None else max(tally.last, t)
        if record.get("usd") is not None:
            tally.usd = (tally.usd or 0.0) + float(record["usd"])
        took = _duration(t - job["t"]) if t is not None and job.get("t") else "?"
        name = f"{job.get('rule', '?')} job {job.get('jobid', '?')}"
        attempt = int(job.get("attempt") or 1)
        if attempt > 1:
            name += f" (attempt {attempt})"
        if event == "succeeded":
            tally.done += 1
            self.finished += 1
            if self.lines and self.done_lines:
                self.reporter.info(f"{self._position()} {name} done in {took}")
        elif event == "cancelled":
            tally.cancelled += 1
            if self.lines and self.done_lines:
                self.reporter.info(f"{self._position()} {name} cancelled after {took}")
        else:
            tally.failed += 1
            self._failure(name, record)

    def _position(self) -> str:
        total = self.planned_total
        return f"[{self.finished}/{total}]" if total else f"[{self.finished}]"

    def _failure(self, name: str, record: dict[str, Any]) -> None:
        reason = record.get("reason") or "failed"
        log = record.get("log")
        where = f"; log saved to {log}" if log else ""
        self.reporter.warn(f"{name} failed: {reason}{where}")
        hint = record.get("hint")
        if hint:
            self.reporter.warn(hint)
        text = ""
        if log:
            try:
                text = Path(log).read_text(errors="replace")
            except OSError:
                text = ""
        lines = excerpt(job_output(text))
        if lines:
            self.reporter.raw("\n".join(f"    | {line}" for line in lines))

    def _snakemake_line(self, line: str) -> None:
        if "Nothing to be done" in line:
            self.nothing_to_do = True
            if self.lines:
                self.reporter.info(line.strip())
            return
        # the executor's and backends' own lines: "cfw: ..." (a logging prefix before it,
        # WARNING:name:, is dropped); not Snakemake's echo of a job error's message
        at = line.find("cfw: ")
        if not self.lines or at < 0 or "message:" in line[:at] or " " in line[:at].strip():
            return
        line = line[at:]
        if line.startswith(_REPLACED):
            return
        text = line[len("cfw: ") :]
        if text.startswith(("warning: ", "the run's estimated job cost")):
            self.reporter.warn(text.removeprefix("warning: "))
        else:
            self.reporter.info(text)

    # -- the end ----------------------------------------------------------------------------
    def snakemake_error(self, lines: int = EXCERPT_LINES) -> list[str]:
        """Snakemake's own last words, when it failed before (or besides) any job."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        # Snakemake's banner and job blocks say nothing about why it stopped
        kept = [
            line
            for line in text.splitlines()
            if not line.startswith(("cfw: jobs ", "Complete log(s):"))
            and "Shutting down, this might take some time." not in line
        ]
        return excerpt("\n".join(kept), lines)

    def summary(self) -> list[str]:
        """The table at the end: per rule jobs, failures, retries, wall time (and cost)."""
        rows = sorted(
            ((rule, tally) for rule, tally in self.rules.items() if tally.jobids),
            key=lambda row: row[1].first or 0.0,
        )
        if not rows:
            return []
        priced = any(t.usd is not None for _, t in rows)
        cancelled = any(t.cancelled for _, t in rows)
        header = ["rule", "jobs", "done", "failed", "retries", "wall time"]
        header += ["cancelled"] * cancelled + ["cost (estimate)"] * priced
        table = [header]
        for rule, t in rows:
            row = [rule, str(t.jobs), str(t.done), str(t.failed), str(t.retries)]
            row.append(_duration(t.wall()))
            if cancelled:
                row.append(str(t.cancelled))
            if priced:
                row.append(format_usd(t.usd) if t.usd is not None else "-")
            table.append(row)
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        out = []
        for row in table:
            cells = [row[0].ljust(widths[0])] + [
                cell.rjust(widths[i]) for i, cell in enumerate(row) if i
            ]
            out.append("  " + "  ".join(cells).rstrip())
        return out


class Launched:
    """Snakemake started with its output going, whole, to the run's snakemake.log (and,
    verbose, to the terminal as well; passthrough: only to the terminal, as it is)."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str],
        run_dir: Path,
        verbose: bool,
        passthrough: bool = False,
        pass_fds: tuple[int, ...] = (),
    ):
        self._tee: threading.Thread | None = None
        self._log = None
        if passthrough:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=dict(env), start_new_session=True, pass_fds=pass_fds
            )
            return
        private_dir(run_dir)
        self.path = run_dir / SNAKEMAKE_LOG
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(fd, "ab", buffering=0)
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE if verbose else self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        if verbose:
            self._tee = threading.Thread(target=self._copy, daemon=True)
            self._tee.start()

    def _copy(self) -> None:
        assert self.proc.stdout is not None
        out = sys.stderr.buffer
        for chunk in iter(lambda: self.proc.stdout.readline(), b""):
            self._log.write(chunk)
            with contextlib.suppress(OSError, ValueError):
                out.write(chunk)
                out.flush()

    def close(self) -> None:
        if self._tee is not None:
            self._tee.join(timeout=5)
        if self._log is not None:
            self._log.close()
