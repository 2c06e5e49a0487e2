"""Move files between a storage and this machine with the workflow's own storage plugin.

Three uses, all with the storage arguments a job's Snakemake gets (--default-storage-*,
--storage-*, --local-storage-prefix) after ``--``:

``python -m cfw.core.staging QUERY... -- ARGS``
    In a job, before its Snakemake: put storage objects where Snakemake keeps local
    copies. Used for checkpoints — a job whose input function reads a checkpoint's output
    (``glob_wildcards`` over a checkpoint directory) needs it locally, but without a
    shared filesystem it exists only in the storage, and Snakemake retrieves only a job's
    declared inputs. A job runs it as ``job_stage_command()``: this module's own code
    through ``python -c``, so a node's image needs Snakemake and its storage plugin, not
    cfw.
``python -m cfw.core.staging put LOCAL=QUERY... -- ARGS``
    Upload local files the storage lacks (or has older): a workflow's input files.
``python -m cfw.core.staging get QUERY=LOCAL... -- ARGS``
    Download storage objects to local paths: a run's requested targets.
"""

from __future__ import annotations

import base64
import inspect
import os
import shlex
import sys
from functools import cache
from pathlib import Path


def _provider(storage_args: list[str]):
    from snakemake.cli import parse_args
    from snakemake.logging import logger
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    _, args = parse_args(storage_args)
    name = args.default_storage_provider
    plugin = StoragePluginRegistry().get_plugin(name)
    settings = plugin.get_settings(args).get_settings(None)
    return plugin.storage_provider(
        logger=logger,
        local_prefix=args.local_storage_prefix / name,
        settings=settings,
        is_default=True,
    )


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        left, sep, right = item.partition("=")
        if not sep:
            raise SystemExit(f"expected A=B, got {item!r}")
        pairs.append((left, right))
    return pairs


def stage(provider, queries: list[str]) -> None:
    for query in queries:
        obj = provider.object(query, retrieve=True, keep_local=False)
        obj.local_path().parent.mkdir(parents=True, exist_ok=True)
        obj.retrieve_object()
        print(f"cfw: staged {query} -> {obj.local_path()}", file=sys.stderr)


def put(provider, pairs: list[tuple[str, str]]) -> None:
    for local, query in pairs:
        obj = provider.object(query, retrieve=False, keep_local=True)
        if obj.exists() and obj.mtime() >= os.stat(local).st_mtime:
            continue
        obj.set_local_path(Path(local))
        obj.store_object()
        print(f"cfw: uploaded {local} -> {query}", file=sys.stderr)


def get(provider, pairs: list[tuple[str, str]]) -> None:
    for query, local in pairs:
        obj = provider.object(query, retrieve=True, keep_local=True)
        if not obj.exists():
            print(f"cfw: {query} is not in the storage; not downloaded", file=sys.stderr)
            continue
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        obj.set_local_path(Path(local))
        obj.retrieve_object()
        print(f"cfw: downloaded {query} -> {local}", file=sys.stderr)


@cache
def job_stage_script() -> str:
    """``python -c`` code that runs ``stage`` with this module's functions, on one line.

    Built from the functions' source, so the job runs the same code as ``main``; base64
    keeps it one shell word whatever the remote shell or command-line parser."""
    source = "\n".join(
        [
            "import os, sys",
            "from pathlib import Path",
            inspect.getsource(_provider),
            inspect.getsource(stage),
            "_split = sys.argv.index('--')",
            "stage(_provider(sys.argv[_split + 1 :]), sys.argv[1:_split])",
        ]
    )
    encoded = base64.b64encode(source.encode()).decode()
    return f"import base64; exec(base64.b64decode('{encoded}'))"


def job_stage_command(queries: list[str], storage_args: str) -> str:
    """The shell command that stages QUERIES in a job; STORAGE_ARGS already shell-quoted."""
    quoted = " ".join(map(shlex.quote, queries))
    return f"python -c {shlex.quote(job_stage_script())} {quoted} -- {storage_args}"


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    items, storage_args = argv[:split], argv[split + 1 :]
    mode = items[0] if items and items[0] in ("put", "get") else "stage"
    if mode != "stage":
        items = items[1:]
    provider = _provider(storage_args)
    if mode == "put":
        put(provider, _pairs(items))
    elif mode == "get":
        get(provider, _pairs(items))
    else:
        stage(provider, items)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
