"""`cfw run --explain` of a wide fan-out against Snakemake's own dry-run of it.

One workflow (N independent jobs and a gather); `snakemake -n` and `cfw run --explain
--env KIND` of it, in turn, several times; prints the medians and the ratio (target
within 1.2x, issue 16). cfw's explain runs Snakemake's dry-run itself, then builds and
translates each job's submission and prices it, so the ratio is what cfw adds per job.

    python benchmarks/explain.py [--jobs 2000] [--kind local] [--repeat 3] [--profile]

Cloud kinds are explained from their defaults (no cloud is asked): gke and google-batch
get a made-up GOOGLE_CLOUD_PROJECT, azure-batch a made-up subscription. --profile prints
where the explaining Snakemake spends its time (cProfile, cumulative, top 30).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.2

SNAKEFILE = """
N = {n}

rule all:
    input: "results/gathered.txt"

rule scatter:
    output: "results/part/{{i}}.txt"
    resources: mem_mb=1000
    shell: "echo part {{wildcards.i}} > {{output}}"

rule gather:
    input: expand("results/part/{{i}}.txt", i=range(N))
    output: "results/gathered.txt"
    shell: "cat {{input}} > {{output}}"
"""

KIND_ENV = {
    "gke": {"GOOGLE_CLOUD_PROJECT": "bench-project"},
    "google-batch": {"GOOGLE_CLOUD_PROJECT": "bench-project"},
    "azure-batch": {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000"},
}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, the process and every child it waited for)."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd[:6])} failed with {proc.returncode}")
    return elapsed, cpu_of_children() - cpu, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="fan-out width (default 2000)")
    parser.add_argument("--kind", default="local", help="environment kind (default local)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--profile", action="store_true", help="profile one explain")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="cfw-bench-explain-"))
    try:
        root = base / "wf"
        root.mkdir()
        (root / "Snakefile").write_text(SNAKEFILE.format(n=args.jobs))
        env = {**os.environ, **KIND_ENV.get(args.kind, {})}
        env.pop("CFW_DEBUG", None)
        # what a user runs: the dry-run that lists every job it would run
        plain_cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "all"]
        cfw_cmd = [sys.executable, "-m", "cfw", "run", "--explain", "--env", args.kind]
        plain: list[tuple[float, float]] = []
        explained: list[tuple[float, float]] = []
        lines = 0
        for _ in range(args.repeat):
            plain.append(run(plain_cmd, root, env)[:2])
            wall, cpu, out = run(cfw_cmd, root, env)
            explained.append((wall, cpu))
            lines = len(out.splitlines())
        print(
            f"fan-out of {args.jobs} jobs (+1 gather), kind {args.kind}, "
            f"{args.repeat} runs each; median (min) seconds"
        )
        print(f"{'':22} {'wall':>16} {'cpu':>16}")
        for label, runs in (("snakemake -n", plain), ("cfw run --explain", explained)):
            cells = [
                f"{statistics.median(v):7.2f} ({min(v):6.2f})" for v in zip(*runs, strict=True)
            ]
            print(f"{label:22} {cells[0]:>16} {cells[1]:>16}")
        for i, what in enumerate(("wall", "cpu")):
            ratio = statistics.median(c[i] / p[i] for c, p in zip(explained, plain, strict=True))
            verdict = "met" if ratio <= TARGET else "NOT met"
            extra = (
                statistics.median(c[i] for c in explained) - statistics.median(p[i] for p in plain)
            ) / args.jobs
            print(
                f"ratio {what:4} (pair by pair): {ratio:5.2f} x (target <= {TARGET} x: {verdict});"
                f" cfw's extra per job {extra * 1000:5.2f} ms"
            )
        print(f"jobs explained: {lines}")
        if args.profile:
            profile(root, env, args.kind)
    finally:
        shutil.rmtree(base, ignore_errors=True)


PROFILED = """
import subprocess, sys
import cfw.orchestration.explain as explain

def dry_run(project, argv, env):
    cmd = [sys.executable, "-m", "cProfile", "-o", {stats!r}, "-m", "cfw.executor.explain"]
    return subprocess.run([*cmd, *argv], cwd=project, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)

explain.dry_run = dry_run
from cfw.cli import main
main(sys.argv[1:])
"""


def profile(root: Path, env: dict[str, str], kind: str) -> None:
    """Profile the explaining dry-run (the Snakemake `cfw run --explain` starts)."""
    import pstats

    stats = root / "explain.prof"
    code = PROFILED.format(stats=str(stats))
    run([sys.executable, "-c", code, "run", "--explain", "--env", kind], root, env)
    pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(30)
    pstats.Stats(str(stats)).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
