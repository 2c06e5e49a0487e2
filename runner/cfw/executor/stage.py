"""Stage storage objects into a job's local storage copies before its Snakemake runs.

Used for checkpoints: a job whose input function reads a checkpoint's output (say,
``glob_wildcards`` over a checkpoint directory) needs that output locally, but without a
shared filesystem it exists only in the storage, and Snakemake retrieves only a job's
declared inputs. The executor puts this command in front of such jobs.

    python -m cfw.executor.stage QUERY... -- SNAKEMAKE STORAGE ARGS (--default-storage-*,
        --storage-*, --local-storage-prefix)

It runs in the job's environment (a cloud node's image has cfw installed) and uses the
same storage plugin and settings the job's Snakemake uses.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: python -m cfw.executor.stage QUERY... -- STORAGE ARGS", file=sys.stderr)
        return 2
    split = argv.index("--")
    queries, storage_args = argv[:split], argv[split + 1 :]

    from snakemake.cli import parse_args
    from snakemake.logging import logger
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    _, args = parse_args(storage_args)
    name = args.default_storage_provider
    registry = StoragePluginRegistry()
    plugin = registry.get_plugin(name)
    settings = plugin.get_settings(args).get_settings(None)
    provider = plugin.storage_provider(
        logger=logger,
        local_prefix=args.local_storage_prefix / name,
        settings=settings,
        is_default=True,
    )
    for query in queries:
        obj = provider.object(query, retrieve=True, keep_local=False)
        obj.local_path().parent.mkdir(parents=True, exist_ok=True)
        obj.retrieve_object()
        print(f"cfw: staged {query} -> {obj.local_path()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
