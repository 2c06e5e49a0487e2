"""Failed jobs' sandboxes are kept for debugging, then pruned after a week."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cfw.backends.local.client import KEEP_FAILED_DAYS, prune_kept_sandboxes


def test_old_kept_sandboxes_are_pruned(tmp_path: Path):
    now = time.time()
    old, fresh = tmp_path / "run-old", tmp_path / "run-fresh"
    for run in (old, fresh):
        (run / "job-a1").mkdir(parents=True)
        (run / "job-a1" / "log").write_text("kept for debugging\n")
    week_ago = now - (KEEP_FAILED_DAYS + 1) * 86400
    os.utime(old, (week_ago, week_ago))
    elsewhere = tmp_path.parent / f"{tmp_path.name}-target"
    elsewhere.mkdir()
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    os.utime(link, (week_ago, week_ago), follow_symlinks=False)

    assert prune_kept_sandboxes(tmp_path, now=now) == [old]
    assert not old.exists() and (fresh / "job-a1" / "log").exists()
    assert elsewhere.is_dir()  # a link is never followed
    assert prune_kept_sandboxes(tmp_path / "missing", now=now) == []
