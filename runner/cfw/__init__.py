"""cfw: cloud compute for Snakemake workflows — provision with Terraform, run, tear down."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    """The installed distribution's version, read when asked (`cfw --version`, records).

    importlib.metadata imports the email package (about 0.1 s of start-up), so the
    metadata file is looked up the way it does, first on sys.path; it stays the fallback.
    """
    import os
    import sys

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.split("-")[0] == "cfw":
                meta = os.path.join(entry or ".", name, "METADATA")
            elif name.endswith(".egg-info") and name.split("-")[0] in ("cfw", "cfw.egg"):
                meta = os.path.join(entry or ".", name, "PKG-INFO")
            else:
                continue
            found = _metadata_version(meta)
            if found:
                return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cfw")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


def _metadata_version(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():  # the headers end at the first empty line
                    break
    except OSError:
        pass
    return None


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'cfw' has no attribute {name!r}")
