"""cfw's extra cost per job on the local backend, against plain Snakemake.

Runs one fan-out workflow (N independent jobs and a gather) twice, in fresh copies:
with plain `snakemake --cores 2` and with `cfw run` (local backend, 2 parallel jobs: every
job deployed from the source archive into its own sandbox, inputs and outputs through
storage, as a cloud job would). Prints wall times and the extra cost per job:

    extra per job = (cfw wall time - plain wall time) / N

Target (issue 2): at most 1.5 s per job. Snakemake's own no-shared-filesystem path costs
about 2.8 s per job on a 2-core machine (a nested snakemake for --deploy-sources, another
for the job), which is why cfw runs those commands in forks of a preloaded interpreter
(`launcher: fork`, the default); `--launcher shell` measures the plain bash path.

    python benchmarks/local_overhead.py [--jobs 500] [--launcher fork|shell] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5

SNAKEFILE = """
N = {n}

rule all:
    input: "results/gathered.txt"

rule scatter:
    output: "results/part/{{i}}.txt"
    shell: "echo part {{wildcards.i}} > {{output}}"

rule gather:
    input: expand("results/part/{{i}}.txt", i=range(N))
    output: "results/gathered.txt"
    shell: "cat {{input}} > {{output}}"
"""


def make_workflow(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    (root / "Snakefile").write_text(SNAKEFILE.format(n=n))
    return root


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd[:4])} failed with {proc.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500, help="fan-out width (default 500)")
    parser.add_argument("--launcher", choices=["fork", "shell"], default="fork")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="cfw-bench-"))
    try:
        plain_dir = make_workflow(base / "plain", args.jobs)
        cfw_dir = make_workflow(base / "cfw", args.jobs)
        (cfw_dir / "environments").mkdir()
        (cfw_dir / "environments" / "local.yaml").write_text(
            f"kind: local\nlauncher: {args.launcher}\njobs: 2\n"
        )

        print(f"fan-out of {args.jobs} jobs (+1 gather), 2 in parallel, launcher {args.launcher}")
        plain = timed([sys.executable, "-m", "snakemake", "--cores", "2", "--quiet"], plain_dir)
        print(f"plain snakemake --cores 2 : {plain:8.1f} s")
        cfw = timed([sys.executable, "-m", "cfw", "run", "--quiet", "rules"], cfw_dir)
        print(f"cfw run (local)           : {cfw:8.1f} s")

        same = (plain_dir / "results/gathered.txt").read_bytes() == (
            cfw_dir / "results/gathered.txt"
        ).read_bytes()
        extra = (cfw - plain) / args.jobs
        print(f"outputs identical         : {same}")
        print(
            f"cfw extra cost per job    : {extra:8.3f} s   (target <= {TARGET_S} s: "
            f"{'met' if extra <= TARGET_S else 'NOT met'})"
        )
        print(f"cfw wall time per job     : {cfw / args.jobs:8.3f} s")
        if not same:
            raise SystemExit("outputs differ")
    finally:
        if args.keep:
            print(f"runs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
