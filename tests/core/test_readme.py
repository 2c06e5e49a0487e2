"""Every row of the README's guard table names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def guard_rows() -> list[str]:
    section = README.split("### The guard in the cloud, per kind", 1)[1].split("\n#", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_every_guard_row_is_backed_by_tests_that_exist():
    rows = guard_rows()
    kinds = {row.split("|")[1].strip().split()[0].strip("`") for row in rows}
    assert kinds >= {"tibanna", "tes", "gke", "kubernetes", "azure-batch", "google-batch", "local"}
    for row in rows:
        backed = row.rstrip(" |").rsplit("|", 1)[1]
        refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", backed)
        assert refs, f"no test named in: {row[:60]}"
        for path, name in refs:
            source = REPO / path
            assert source.is_file(), f"{path} does not exist"
            if name:
                assert re.search(rf"^def {name}\(", source.read_text(), re.M), f"{path}::{name}"
