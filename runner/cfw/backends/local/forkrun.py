"""Run a job's Snakemake commands in processes forked from a preloaded interpreter.

A job's command is a chain such as ``python -m snakemake --deploy-sources ... && python -m
snakemake --target-jobs ...`` — the command a cloud node runs. Started through bash, each
``python -m snakemake`` spends ~0.6 s importing Snakemake before it does anything. Here the
same argv runs through ``snakemake.cli.main`` in a fresh fork of a forkserver that imported
Snakemake once, in the same sandbox, environment and process group. Anything that is not
such a chain (a user's --precommand, say) goes through bash as before.
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from functools import cache

_PRELOAD = ["cfw.backends.local.preload"]  # Snakemake, its plugins and registries
# `python -m MODULE` commands a job chain may hold, and the function that is their main
_ENTRY_POINTS = {
    "snakemake": ("snakemake.cli", "main"),
    "cfw.core.staging": ("cfw.core.staging", "main"),
}
_PUNCTUATION = set("();<>|&")
# The forkserver listens on a Unix socket in multiprocessing's temporary directory, and a
# socket's path may not exceed 107 bytes: under a TMPDIR longer than this, it goes in /tmp.
_SOCKET_DIR_LIMIT = 60


def parse_chain(command: str) -> list[list[str]] | None:
    """``[module, *argv]`` of each ``python -m MODULE`` in an ``&&`` chain of known modules,
    or None if the command is anything else."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            parts.append([])
        elif token and set(token) <= _PUNCTUATION:
            return None
        else:
            parts[-1].append(token)
    for part in parts:
        if part[:3] == ["python", "-c", _job_stage_script()]:
            # the in-job checkpoint staging: cfw.core.staging's own code, inlined
            part[:3] = ["python", "-m", "cfw.core.staging"]
    if not all(len(p) >= 3 and p[:2] == ["python", "-m"] and p[2] in _ENTRY_POINTS for p in parts):
        return None
    return [part[2:] for part in parts]


def _job_stage_script() -> str:
    from cfw.core.staging import job_stage_script

    return job_stage_script()


@cache
def _context():
    _short_socket_dir()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _short_socket_dir() -> None:
    """Make multiprocessing's temporary directory (where the forkserver's socket goes) short
    enough for a Unix socket path, whatever TMPDIR is. It is created once per process and
    removed at exit; jobs get their own TMPDIR from the sandbox."""
    if len(tempfile.gettempdir()) <= _SOCKET_DIR_LIMIT or not os.path.isdir("/tmp"):
        return
    import multiprocessing.util

    saved, tempfile.tempdir = tempfile.tempdir, "/tmp"
    try:
        multiprocessing.util.get_temp_dir()
    finally:
        tempfile.tempdir = saved


def _run_module(module: str, argv: list[str]) -> int:
    import importlib

    module_name, function = _ENTRY_POINTS[module]
    sys.argv = [module, *argv]
    try:
        result = getattr(importlib.import_module(module_name), function)(argv)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    return code


def _child(
    parts: list[list[str]], cwd: str, env: dict[str, str], log: str, cpus: list[int]
) -> None:
    """Runs in the forked process: become the job, then run each command in a fresh fork."""
    import tempfile

    os.setsid()
    if cpus:
        os.sched_setaffinity(0, cpus)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for module, *argv in parts:
        pid = os.fork()
        if pid == 0:
            code = _run_module(module, argv)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            os._exit(code if code > 0 else 128 - code)
    os._exit(0)


# A forked child's exit status is read once from a pipe; two threads reading it race, and
# the loser gets EOF, which multiprocessing reports as exit code 255. Process.start() reads
# the statuses of earlier children (its _cleanup), so every read happens under this lock.
_STATUS_LOCK = threading.Lock()


class ForkedJob:
    """A forked job with the slice of the Popen interface the backend uses."""

    def __init__(self, process):
        self.process = process
        self.pid = process.pid
        self._code: int | None = None
        self._done = threading.Event()
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        from multiprocessing.connection import wait

        wait([self.process.sentinel])  # readable once the child ends; nothing is read here
        with _STATUS_LOCK:
            self._code = self.process.exitcode
        self._done.set()

    def poll(self) -> int | None:
        return self._code if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired("forked job", timeout or 0)
        return self._code  # type: ignore[return-value]


def start(
    parts: list[list[str]], cwd: str, env: Mapping[str, str], log: str, cpus: list[int]
) -> ForkedJob:
    process = _context().Process(
        target=_child, args=(parts, cwd, dict(env), log, cpus), daemon=False
    )
    with _STATUS_LOCK:
        process.start()
    return ForkedJob(process)
