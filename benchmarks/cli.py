"""Start-up time of cfw's common commands, each a whole process, as a user runs them.

Each command runs several times in a fresh directory (a warm-up first, not counted);
prints the median and minimum wall and CPU seconds (user + system), and, beside them,
`python -c pass` and `import typer` (the floor any Typer CLI pays). With --against DIR
(a checkout's runner/ directory, an older cfw), the same commands run from there too, in
turn, and the ratio is printed (target for `--help`: at most a third, issue 16).

    python benchmarks/cli.py [--runs 5] [--against /path/to/old/runner]

Modules are byte-compiled once, into a temporary cache (PYTHONPYCACHEPREFIX), as an
installed cfw's are. `status` runs in a directory with no environment (what it reads there
is the .cfw/ directory only); `run --help` and `prices` stand for commands that parse more
options.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["--help"],
    ["--version"],
    ["status"],
    ["run", "--help"],
    ["prices", "gcp", "--machine", "n2-standard-8"],
]
FLOORS = {"python -c pass": ["-c", "pass"], "python -c 'import typer'": ["-c", "import typer"]}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(argv: list[str], cwd: Path, runner: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(runner)}
    env.pop("CFW_DEBUG", None)
    cpu, started = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, check=False
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()[-2000:]}")
    return wall, cpu_of_children() - cpu


def measure(argv: list[str], cwd: Path, runner: Path, runs: int) -> list[tuple[float, float]]:
    once(argv, cwd, runner)  # warm-up: bytecode caches, the page cache
    return [once(argv, cwd, runner) for _ in range(runs)]


def cells(samples: list[tuple[float, float]]) -> str:
    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    return (
        f"{statistics.median(wall):6.3f} ({min(wall):5.3f})  "
        f"{statistics.median(cpu):6.3f} ({min(cpu):5.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each (default 5)")
    parser.add_argument("--against", type=Path, help="another cfw's runner/ directory")
    args = parser.parse_args()
    runner = ROOT / "runner"
    with tempfile.TemporaryDirectory(prefix="cfw-bench-cli-") as tmp:
        cwd = Path(tmp) / "project"
        cwd.mkdir()
        # bytecode caches, as an installed cfw has them (the warm-up runs write them), kept
        # out of the checkouts; with PYTHONDONTWRITEBYTECODE every run compiled every module
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        print(f"{args.runs} runs each; seconds: median (min), wall then CPU")
        print(
            f"{'command':42} {'wall':>14}  {'cpu':>14}"
            + ("   old: wall    cpu  ratio: wall   cpu" if args.against else "")
        )
        for label, argv in FLOORS.items():
            print(f"{label:42} {cells(measure(argv, cwd, runner, args.runs))}")
        for command in COMMANDS:
            argv = ["-m", "cfw", *command]
            label = "cfw " + " ".join(command)
            if not args.against:
                print(f"{label:42} {cells(measure(argv, cwd, runner, args.runs))}")
                continue
            ours, old = [], []
            once(argv, cwd, runner), once(argv, cwd, args.against)
            for _ in range(args.runs):  # in turn, so that a drift of the machine hits both
                ours.append(once(argv, cwd, runner))
                old.append(once(argv, cwd, args.against))
            pairs = list(zip(ours, old, strict=True))
            wall_ratio = statistics.median(a[0] / b[0] for a, b in pairs)
            cpu_ratio = statistics.median(a[1] / b[1] for a, b in pairs)
            old_wall = statistics.median(w for w, _ in old)
            old_cpu = statistics.median(c for _, c in old)
            print(
                f"{label:42} {cells(ours)}   {old_wall:9.3f} {old_cpu:6.3f}"
                f"  {wall_ratio:10.2f} {cpu_ratio:5.2f}"
            )


if __name__ == "__main__":
    main()
