"""A thin wrapper around the Terraform binary.

Why not python-terraform: it is unmaintained (last release 2020), builds `-var` command
lines (values would land in `ps` and shell history), cannot stream Terraform's machine-
readable UI (`-json`), and passes flags Terraform 1.x removed. This wrapper runs the
binary with `-json` where Terraform has it, turns the event stream into progress
callbacks (terraform_ui), and maps failures to :class:`~cfw.core.errors.CfwError` with
Terraform's own diagnostic text (terraform_errors).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cfw.core.errors import UserError
from cfw.core.terraform_errors import failure
from cfw.core.terraform_ui import Diagnostic, Event, Progress, RunResult, read_document, read_stream

__all__ = [
    "Diagnostic",
    "Event",
    "Progress",
    "RunResult",
    "Terraform",
    "count_state_resources",
]


# in the workdir: Terraform's output while it runs, and who runs it
OUT_FILE = ".terraform-output.log"
ERR_FILE = ".terraform-errors.log"
PID_FILE = ".terraform-pid.json"
LOCK_INFO = ".terraform.tfstate.lock.info"
ORPHAN_WAIT = 900.0  # seconds to wait for the Terraform of a killed cfw


class Terraform:
    def __init__(
        self,
        workdir: Path,
        *,
        binary: str = "terraform",
        env: Mapping[str, str] | None = None,
        plugin_mirror: Path | None = None,
        progress: Progress | None = None,
        lock_timeout: float = 60.0,
    ):
        self.workdir = Path(workdir)
        # how long to wait for Terraform's own state lock (shared, remote state)
        self._lock_arg = f"-lock-timeout={int(lock_timeout)}s"
        found = shutil.which(binary)
        if not found:
            raise UserError(
                f"the Terraform binary {binary!r} was not found on PATH",
                "install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)",
            )
        self.binary = found
        self.progress = progress or Progress()
        self.env = dict(os.environ if env is None else env)
        self.env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        mirror = plugin_mirror or self.env.get("CFW_TF_PLUGIN_MIRROR")
        if mirror:
            self.env["TF_CLI_CONFIG_FILE"] = str(self._write_cli_config(Path(mirror)))
        self._proc: subprocess.Popen[str] | None = None
        self.sensitive: set[str] = set()

    # -- commands -------------------------------------------------------------------------
    def version(self) -> str:
        out = self._capture(["version", "-json"])
        return json.loads(out)["terraform_version"]

    def init(self, backend_config: Path | None = None, reconfigure: bool = False) -> RunResult:
        args = ["init", "-input=false", "-no-color"]
        if backend_config is not None:
            args.append(f"-backend-config={backend_config}")
        if reconfigure:
            args.append("-reconfigure")
        self.progress.phase("terraform init")
        return self._run_text(args, what="terraform init")

    def validate(self) -> RunResult:
        result = self._run_json(
            ["validate", "-json", "-no-color"], what="terraform validate", single_document=True
        )
        return result

    def plan(self, destroy: bool = False, out: Path | None = None) -> RunResult:
        args = ["plan", "-json", "-input=false", self._lock_arg, "-var-file=terraform.tfvars.json"]
        if destroy:
            args.append("-destroy")
        if out is not None:
            args.append(f"-out={out}")
        self.progress.phase("terraform plan")
        return self._run_json(args, what="terraform plan")

    def apply(self) -> RunResult:
        self.recover()
        self.progress.phase("terraform apply")
        return self._run_json(
            [
                "apply",
                "-json",
                "-input=false",
                "-auto-approve",
                self._lock_arg,
                "-var-file=terraform.tfvars.json",
            ],
            what="terraform apply",
        )

    def destroy(self) -> RunResult:
        self.recover()
        self.progress.phase("terraform destroy")
        return self._run_json(
            [
                "apply",
                "-destroy",
                "-json",
                "-input=false",
                "-auto-approve",
                self._lock_arg,
                "-var-file=terraform.tfvars.json",
            ],
            what="terraform destroy",
        )

    def output(self) -> dict[str, Any]:
        """Output values; names of sensitive outputs are left in ``self.sensitive``."""
        raw = json.loads(self._capture(["output", "-json", "-no-color"]) or "{}")
        self.sensitive = {name for name, item in raw.items() if item.get("sensitive")}
        return {name: item.get("value") for name, item in raw.items()}

    def state_list(self) -> list[str]:
        out = self._capture(["state", "list", "-no-color"], ok_codes=(0, 1))
        return [line for line in out.splitlines() if line.strip()]

    def state_rm(self, addresses: Iterable[str]) -> None:
        """Forget resources without destroying them."""
        self._capture(["state", "rm", self._lock_arg, *addresses])

    def fmt(self, paths: Iterable[Path]) -> None:
        self._capture(["fmt", "-list=false", *map(str, paths)])

    def interrupt(self) -> None:
        """Ask a running Terraform to stop gracefully (it saves state first)."""
        proc = self._proc
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    # -- after a crash ---------------------------------------------------------------------
    def recover(self, wait: float = ORPHAN_WAIT) -> None:
        """Before apply or destroy: wait for a Terraform a killed cfw left running (it
        finishes its work and saves the state), clear a local state lock whose holder is
        gone, and push a state Terraform could not save (errored.tfstate) back."""
        self._wait_for_orphan(wait)
        self._clear_stale_lock()
        errored = self.workdir / "errored.tfstate"
        if errored.is_file():
            self.progress.message(
                f"pushing {errored.name}, the state an interrupted Terraform could not save"
            )
            self._capture(["state", "push", "-force", errored.name])
            errored.rename(errored.with_name(f"errored.tfstate.pushed-{int(time.time())}"))

    def _wait_for_orphan(self, wait: float) -> None:
        try:
            record = json.loads((self.workdir / PID_FILE).read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if pid != os.getpid() and _is_terraform(pid):
            self.progress.message(
                f"waiting for `terraform {record.get('command', '?')}` (pid {pid}), which an "
                "interrupted cfw left running, to finish and save its state"
            )
            deadline = time.monotonic() + wait
            while _is_terraform(pid):
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"`terraform {record.get('command', '?')}` (pid {pid}) of an interrupted "
                        f"cfw is still running in {self.workdir}",
                        "wait for it to finish (it saves the state), then run the command again",
                    )
                time.sleep(0.5)
        with contextlib.suppress(OSError):
            (self.workdir / PID_FILE).unlink()

    def _clear_stale_lock(self) -> None:
        """Terraform's local backend holds a lock on terraform.tfstate and describes the
        holder in .terraform.tfstate.lock.info; the info left when Terraform was killed
        names a holder that is gone: nobody holds the lock itself."""
        info = self.workdir / LOCK_INFO
        state = self.workdir / "terraform.tfstate"
        if not info.is_file():
            return
        try:
            holder = json.loads(info.read_text())
        except (OSError, ValueError):
            holder = {}
        if state.is_file():
            fd = os.open(state, os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # a live Terraform holds it: its own -lock-timeout waits
            else:
                fcntl.lockf(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        info.unlink(missing_ok=True)
        what = holder.get("Operation", "an operation").removeprefix("OperationType").lower()
        self.progress.message(
            f"cleared a stale Terraform lock ({info}): {what} by {holder.get('Who', '?')} "
            f"since {holder.get('Created', '?')}, whose Terraform is gone"
        )

    # -- plumbing -------------------------------------------------------------------------
    def _write_cli_config(self, mirror: Path) -> Path:
        if not mirror.is_dir():
            raise UserError(
                f"the provider mirror {mirror} does not exist",
                "point terraform.plugin_mirror (or CFW_TF_PLUGIN_MIRROR) at a directory made "
                "by `terraform providers mirror`",
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "terraform.rc"
        path.write_text(
            "provider_installation {\n"
            f"  filesystem_mirror {{\n    path = {json.dumps(str(mirror.resolve()))}\n  }}\n"
            "}\n"
        )
        return path

    def _popen(self, args: list[str], to_files: bool = False) -> subprocess.Popen[str]:
        """Terraform in its own session (Ctrl-C on cfw's terminal does not reach it). With
        ``to_files`` its output goes to files in the workdir, which cfw follows: a pipe
        would kill Terraform (SIGPIPE) mid-write if cfw itself were killed."""
        out: Any = subprocess.PIPE
        err: Any = subprocess.PIPE
        if to_files:
            self._wait_for_orphan(ORPHAN_WAIT)  # its output goes to these files
            self.workdir.mkdir(parents=True, exist_ok=True)
            out = _private(self.workdir / OUT_FILE)
            err = _private(self.workdir / ERR_FILE)
        try:
            # umask 077: state, plans and backups Terraform writes are readable by the owner
            proc = subprocess.Popen(
                [self.binary, *args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                errors="replace",
                start_new_session=True,
                umask=0o077,
            )
        finally:
            if to_files:
                out.close()
                err.close()
        if to_files:
            record = {"pid": proc.pid, "command": args[0], "started": time.time()}
            (self.workdir / PID_FILE).write_text(json.dumps(record))
        return proc

    @contextlib.contextmanager
    def _running(self, args: list[str], to_files: bool = False) -> Iterator[subprocess.Popen[str]]:
        proc = self._popen(args, to_files)
        self._proc = proc
        try:
            yield proc
        except BaseException:
            # Terraform runs in its own session, so Ctrl-C does not reach it: stop it
            # gracefully (it saves the state of what it made so far and releases its lock)
            self.interrupt()
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            if to_files and proc.poll() is not None:  # read: nothing of it stays on disk
                for name in (PID_FILE, OUT_FILE, ERR_FILE):
                    with contextlib.suppress(OSError):
                        (self.workdir / name).unlink()

    def _capture(self, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> str:
        with self._running(args) as proc:
            out, err = proc.communicate()
        if proc.returncode not in ok_codes:
            raise failure(f"terraform {args[0]}", RunResult(text=err or out))
        return out

    def _run_text(self, args: list[str], what: str) -> RunResult:
        with self._running(args, to_files=True) as proc:
            proc.wait()
            out = (self.workdir / OUT_FILE).read_text(errors="replace")
            err = (self.workdir / ERR_FILE).read_text(errors="replace")
        result = RunResult(text=out + err)
        if proc.returncode != 0:
            raise failure(what, result)
        return result

    def _run_json(self, args: list[str], what: str, single_document: bool = False) -> RunResult:
        with self._running(args, to_files=True) as proc:
            return self._collect(proc, what, single_document)

    def _collect(self, proc: subprocess.Popen[str], what: str, single_document: bool) -> RunResult:
        lines = _follow(self.workdir / OUT_FILE, proc)
        if single_document:
            result = read_document("".join(lines))
        else:
            result = read_stream(lines, self.progress)
        proc.wait()
        result.text += (self.workdir / ERR_FILE).read_text(errors="replace")
        if proc.returncode != 0:
            raise failure(what, result)
        return result


def _follow(path: Path, proc: subprocess.Popen[str]) -> Iterator[str]:
    """The lines of ``path`` as ``proc`` writes them, until it has exited."""
    with open(path, errors="replace") as handle:
        partial = ""
        while True:
            chunk = handle.readline()
            if chunk:
                partial += chunk
                if partial.endswith("\n"):
                    yield partial
                    partial = ""
                continue
            if proc.poll() is not None:
                rest = partial + handle.read()
                if rest:
                    yield from rest.splitlines(keepends=True)
                return
            time.sleep(0.05)


def _private(path: Path):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w")


def _is_terraform(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ProcessLookupError):
        return False
    # a zombie (exited, not yet reaped) has an empty command line
    return b"terraform" in cmdline


def count_state_resources(state_file: Path) -> int:
    """Resources recorded in a local state file (0 if there is none)."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, json.JSONDecodeError):
        return 0
    return sum(
        len(resource.get("instances", []))
        for resource in state.get("resources", [])
        if resource.get("mode") == "managed"
    )
