"""`cfw up` interrupted as a user's machine interrupts it: SIGINT (Ctrl-C) or SIGKILL (a
closed laptop, a killed CI runner) once a given share of its planned resources is made.

Without a terminal, `up` says how many changes Terraform planned ("N changes planned") and
prints one line per resource it finished ("creating ADDRESS: done"): the signal goes when
the count of those lines reaches the share, so each point of the matrix lands at the same
place of the apply whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLANNED = re.compile(r"(\d+) changes planned")
# the points of the fault matrix: after the first resource, a third, two thirds
POINTS = {"early": 0.0, "a third": 1 / 3, "two thirds": 2 / 3}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}
# SIGINT stops Terraform where it is, so each point leaves a different half-made state. After
# SIGKILL, Terraform (in its own session) finishes the whole apply whatever the point, and
# cfw had recorded the same (phase applying) from the first resource on: one point stands
# for all three, and saves CI the two minutes each case costs (the full apply, then down).
CASES = [("SIGINT", point) for point in POINTS] + [("SIGKILL", "a third")]


@dataclass
class Interrupted:
    code: int
    planned: int
    done: int  # resources finished when the signal went
    stderr: str


def up_interrupted(project: Path, name: str, share: float, sig: signal.Signals) -> Interrupted:
    env = {k: v for k, v in os.environ.items() if k != "CFW_DEBUG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfw", "up", name, "--yes"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    planned = done = 0
    try:
        for line in proc.stderr:
            lines.append(line)
            if match := PLANNED.search(line):
                planned = int(match[1])
            elif line.rstrip().endswith(": done"):
                done += 1
            if planned and done >= max(1, round(share * planned)):
                proc.send_signal(sig)
                break
        lines.append(proc.stderr.read())  # what cfw says while it stops (nothing on SIGKILL)
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    assert planned, f"`cfw up` never said how many changes it planned:\n{text[-3000:]}"
    assert done < planned, f"`cfw up` finished before the signal:\n{text[-3000:]}"
    return Interrupted(code, planned, done, text)


def down_leaves_nothing(project: Path, name: str, point: str, signal_name: str) -> str:
    """One case of the fault matrix: `up` interrupted at POINT by SIGNAL_NAME, then `down`
    exits 0, the environment is forgotten and nothing carries its cfw-id. Returns its id."""
    from support.aws_tags import tagged

    cut = up_interrupted(project, name, POINTS[point], SIGNALS[signal_name])
    assert cut.code != 0, cut.stderr[-3000:]
    assert "Traceback" not in cut.stderr, cut.stderr[-3000:]
    meta = project / ".cfw" / name / "cfw.json"
    env_id = json.loads(meta.read_text())["env_id"]
    down = subprocess.run(
        [sys.executable, "-m", "cfw", "down", name, "--yes"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    said = down.stdout + down.stderr
    assert down.returncode == 0, f"after {cut.done}/{cut.planned} by {signal_name}:\n{said[-4000:]}"
    assert "Traceback" not in said
    assert tagged(env_id) == [], said[-4000:]
    assert not meta.exists()
    assert not list((project / ".cfw").rglob(".terraform.tfstate.lock.info"))
    return env_id
