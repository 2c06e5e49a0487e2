"""The fork launcher: chains it runs, chains it leaves to bash, and exit statuses under load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from cfw.backends.local import forkrun


def test_parse_chain_accepts_only_known_python_modules():
    chain = forkrun.parse_chain(
        "python -m snakemake --deploy-sources s3://b/x.tar.xz abc && "
        "python -m snakemake --target-jobs 'a:s=1' --cores all"
    )
    assert chain == [
        ["snakemake", "--deploy-sources", "s3://b/x.tar.xz", "abc"],
        ["snakemake", "--target-jobs", "a:s=1", "--cores", "all"],
    ]
    assert forkrun.parse_chain("python -m cfw.core.staging q -- x") == [
        ["cfw.core.staging", "q", "--", "x"]
    ]
    for shell in (
        "pip install x && python -m snakemake",  # a precommand: bash runs it
        "python -m snakemake; rm -rf /",
        "python -m snakemake | tee log",
        "python -m os",
        "python -m snakemake 'unterminated",
    ):
        assert forkrun.parse_chain(shell) is None, shell


def test_many_jobs_ended_at_once_all_report_their_own_status(tmp_path: Path):
    """Exit statuses are read under one lock: with two readers, one got EOF (code 255)."""
    jobs: list[forkrun.ForkedJob] = []
    lock = threading.Lock()

    def launch(n: int) -> None:
        sandbox = tmp_path / f"s{n}"
        sandbox.mkdir()
        argv = ["--version"] if n % 3 else ["--no-such-option"]
        job = forkrun.start(
            [["snakemake", *argv]],
            str(sandbox),
            {"PATH": "/usr/bin:/bin"},
            str(tmp_path / f"{n}.log"),
            [],
        )
        with lock:
            jobs.append(job)

    # starts keep coming while earlier jobs end: each start reads finished children's status
    threads = [threading.Thread(target=launch, args=(n,)) for n in range(90)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    codes = sorted(job.wait(timeout=300) for job in jobs)
    assert 255 not in codes
    assert codes.count(0) == 60 and codes.count(2) == 30  # argparse's usage error is 2


def test_a_long_tmpdir_does_not_stop_the_forkserver(tmp_path: Path):
    """The forkserver's socket lives in multiprocessing's temp dir; under a TMPDIR deeper than
    a Unix socket path allows (107 bytes), it failed with 'AF_UNIX path too long'."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    sandbox = tmp_path / "s"
    sandbox.mkdir()
    script = (
        "import sys; from cfw.backends.local import forkrun; "
        "job = forkrun.start([['snakemake', '--version']], sys.argv[1], "
        "{'PATH': '/usr/bin:/bin'}, sys.argv[2], []); sys.exit(job.wait(timeout=300))"
    )
    env = {**os.environ, "TMPDIR": str(deep)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(sandbox), str(tmp_path / "job.log")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "job.log").read_text().strip()[0].isdigit()  # Snakemake's version
