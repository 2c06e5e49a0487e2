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
import json
import os
import shutil
import signal
import subprocess
import threading
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

    def _popen(self, args: list[str]) -> subprocess.Popen[str]:
        # umask 077: state, plans and backups Terraform writes are readable by the owner only
        return subprocess.Popen(
            [self.binary, *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            umask=0o077,
        )

    @contextlib.contextmanager
    def _running(self, args: list[str]) -> Iterator[subprocess.Popen[str]]:
        proc = self._popen(args)
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

    def _capture(self, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> str:
        with self._running(args) as proc:
            out, err = proc.communicate()
        if proc.returncode not in ok_codes:
            raise failure(f"terraform {args[0]}", RunResult(text=err or out))
        return out

    def _run_text(self, args: list[str], what: str) -> RunResult:
        with self._running(args) as proc:
            out, err = proc.communicate()
        result = RunResult(text=(out or "") + (err or ""))
        if proc.returncode != 0:
            raise failure(what, result)
        return result

    def _run_json(self, args: list[str], what: str, single_document: bool = False) -> RunResult:
        with self._running(args) as proc:
            return self._collect(proc, what, single_document)

    def _collect(self, proc: subprocess.Popen[str], what: str, single_document: bool) -> RunResult:
        stderr_lines: list[str] = []
        drain = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)
        drain.start()
        assert proc.stdout is not None
        if single_document:
            result = read_document(proc.stdout.read())
        else:
            result = read_stream(proc.stdout, self.progress)
        proc.wait()
        drain.join(timeout=5)
        result.text += "".join(stderr_lines)
        if proc.returncode != 0:
            raise failure(what, result)
        return result


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
