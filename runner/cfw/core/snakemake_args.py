"""The Snakemake arguments of `cfw run`: checked before anything runs or is created, and
plugin settings that Snakemake itself keeps in environment variables (storage keys and
the like) moved off the command line.

Snakemake reports a bad option with its whole usage text, a missing config file with a
traceback, and cfw would then add that the run failed: here each of those is one line
naming the problem and the fix, before `--up` creates anything.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cfw.core.checks import shorten
from cfw.core.errors import UserError

REDACTED = "<redacted>"

# options cfw sets unless the user gave them
JOBS = ("-j", "--jobs")
STORAGE = ("--default-storage-provider", "--default-storage-prefix")
IMAGE = ("--container-image",)
CORES = ("--cores", "-c")
# options `cfw run` refuses, with what to do instead
FORBIDDEN = {
    "--executor": "cfw run always uses cfw's executor; choose the environment with --env",
    "-e": "cfw run always uses cfw's executor; choose the environment with --env",
    "--cfw-env": "use `cfw run --env NAME`",
    "--cfw-budget": "use `cfw run --budget USD`",
}


# Snakemake 7's cloud options (gone in Snakemake 8), and cfw's way to do the same;
# the options that start with one of these names too (--az-batch-account-url, ...)
SNAKEMAKE7 = {
    "--kubernetes": "`cfw up gke` (a new GKE cluster) or an environments/kubernetes.yaml "
    "for a cluster you have, then `cfw run --env gke` (or --env kubernetes)",
    "--tibanna": "`cfw up tibanna` and `cfw run --env tibanna`",
    "--google-lifesciences": "Google Batch replaces the Life Sciences API: "
    "`cfw up google-batch` and `cfw run --env google-batch`",
    "--az-batch": "`cfw up azure-batch` and `cfw run --env azure-batch`",
    "--tes": "put `kind: tes` and `url: URL` in environments/tes.yaml, then `cfw run --env tes`",
    "--default-remote-provider": "cfw stages files through the environment's storage by "
    "itself (Snakemake 8 calls it --default-storage-provider); drop the option",
    "--default-remote-prefix": "cfw stages files through the environment's storage by "
    "itself (Snakemake 8 calls it --default-storage-prefix); drop the option",
}


@dataclass
class SnakemakeArgs:
    args: list[str]  # what Snakemake gets: secret settings moved to ``env``
    env: dict[str, str] = field(default_factory=dict)  # SNAKEMAKE_STORAGE_*=secret
    moved: list[str] = field(default_factory=list)  # the options moved, for the user

    def shown(self) -> str:
        """The arguments as cfw prints them."""
        return " ".join(redact(self.args))


def has_flag(args: Sequence[str], names: Sequence[str]) -> bool:
    return any(
        a in names or any(a.startswith(f"{n}=") for n in names if n.startswith("--")) for a in args
    )


def flag_value(args: Sequence[str], names: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def refuse_forbidden(args: Sequence[str]) -> None:
    """Options that `cfw run` sets itself, and Snakemake 7's cloud options: one line saying
    what to do instead."""
    for arg in args:
        key = arg.split("=", 1)[0]
        if key in FORBIDDEN:
            raise UserError(f"cfw run does not take {key}", FORBIDDEN[key])
        old = next((o for o in SNAKEMAKE7 if key == o or key.startswith(f"{o}-")), None)
        if old is not None:
            raise UserError(f"{key} is Snakemake 7's", f"with cfw: {SNAKEMAKE7[old]}")


def replace_storage(argv: list[str], provider: str, prefix: str) -> list[str]:
    """ARGV with its default storage provider and prefix replaced."""
    out = list(argv)
    for flag, value in zip(STORAGE, (provider, prefix), strict=True):
        i = out.index(flag)
        out[i + 1] = value
    return out


class _Stop(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    from snakemake.cli import get_argument_parser

    parser = get_argument_parser()

    def error(message: str):  # argparse would print the usage and exit
        raise _Stop(message)

    parser.error = error  # type: ignore[method-assign]
    return parser


def _secret_options() -> dict[str, str]:
    """``--storage-PLUGIN-SETTING`` → its environment variable, for every installed storage
    plugin's settings that Snakemake reads from the environment (``env_var`` settings: the
    ones it never passes on a job's command line either)."""
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    options = {}
    registry = StoragePluginRegistry()
    for name in registry.get_registered_plugins():
        plugin = registry.get_plugin(name)
        for info in plugin.get_settings_info():
            if info.get("env_var"):
                options[info["cliarg"]] = info["env_var"]
    return options


def check(project: Path, given: Sequence[str]) -> SnakemakeArgs:
    """Parse GIVEN as Snakemake would; raise UserError for what Snakemake would reject."""
    args = list(given)
    if not args and not _snakefile_needed(project, None, None):
        return SnakemakeArgs(args)
    try:
        parsed, unknown = _parser().parse_known_args(args)
    except _Stop as exc:
        raise UserError(f"snakemake cannot use these arguments: {exc}", _SEE_HELP) from None
    except Exception as exc:  # a setting's own parser (Snakemake's CliException, say)
        message = str(exc).strip().rstrip(".") or type(exc).__name__
        raise UserError(f"snakemake cannot use these arguments: {message}", _SEE_HELP) from None
    if unknown:
        raise UserError(f"snakemake has no option {shorten(unknown[0])}", _SEE_HELP)
    _check_counts(args)
    directory = getattr(parsed, "directory", None)
    missing = _snakefile_needed(project, getattr(parsed, "snakefile", None), directory)
    if missing:
        raise UserError(missing[0], missing[1])
    if directory is None:
        for configfile in getattr(parsed, "configfile", None) or []:
            if not (project / configfile).is_file():
                raise UserError(
                    f"the config file {str(configfile)!r} does not exist in {project}",
                    "check the path given to --configfile",
                )
    return _move_secrets(args)


def _check_counts(args: Sequence[str]) -> None:
    """--jobs 0 would run nothing (and wait forever on a remote executor)."""
    for names, what in ((JOBS, "jobs"), (CORES, "cores")):
        value = flag_value(args, names)
        if value is None or value in ("all", "unlimited"):
            continue
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= 1_000_000:
            raise UserError(
                f"{names[-1]} {shorten(value)}: the number of {what} must be a whole number "
                "from 1 to 1000000",
                f"for example {names[-1]} 10" + (" (or all)" if what == "cores" else ""),
            )


_SEE_HELP = "see `snakemake --help` for its options; cfw's own are in `cfw run --help`"


def _snakefile_needed(project: Path, snakefile, directory) -> tuple[str, str] | None:
    from snakemake.common import SNAKEFILE_CHOICES

    if directory is not None:
        return None  # Snakemake looks for it there
    if snakefile is not None:
        if "://" in str(snakefile) or (project / snakefile).is_file():
            return None
        return (
            f"the Snakefile {str(snakefile)!r} does not exist in {project}",
            "check the path given to --snakefile",
        )
    if any((project / choice).is_file() for choice in SNAKEFILE_CHOICES):
        return None
    return (
        f"no Snakefile in {project} (looked for {', '.join(map(str, SNAKEFILE_CHOICES))})",
        "run cfw in the workflow's directory, or give the Snakefile with --snakefile PATH",
    )


def _move_secrets(args: list[str]) -> SnakemakeArgs:
    """``--storage-s3-secret-key VALUE`` becomes SNAKEMAKE_STORAGE_S3_SECRET_KEY=VALUE in the
    environment, where Snakemake reads it, so that the value is in no process's argv and
    in no log; tagged values (``--storage-s3-secret-key TAG::VALUE ...``) too, as the JSON
    list ``["TAG::VALUE", ...]`` Snakemake reads from that variable."""
    if not any(a.startswith("--storage-") for a in args):
        return SnakemakeArgs(args)
    options = _secret_options()
    out = SnakemakeArgs([])
    _lists: set[str] = set()  # the variables that hold a JSON list
    i = 0
    while i < len(args):
        arg = args[i]
        option, eq, inline = arg.partition("=")
        if option in options:
            values = [inline] if eq else []
            j = i + 1
            if not eq:  # the values up to the next option, as argparse's nargs="+"
                while j < len(args) and not args[j].startswith("-"):
                    values.append(args[j])
                    j += 1
            if values:
                # one untagged value as it is; tagged (TAG::VALUE) or several values as a
                # JSON list, which Snakemake's parser (ConfigArgParse) reads back into
                # the option's values, each with its tag
                env = options[option]
                earlier = json.loads(out.env[env]) if env in out.env and env in _lists else []
                if earlier or len(values) > 1 or "::" in values[0]:
                    out.env[env] = json.dumps([*earlier, *values])
                    _lists.add(env)
                else:
                    out.env[env] = values[0]
                if option not in out.moved:
                    out.moved.append(option)
                i = j
                continue
            out.args.append(arg)
            i = j
            continue
        out.args.append(arg)
        i += 1
    return out


def redact(args: Sequence[str]) -> list[str]:
    """ARGS with the values of secret plugin settings replaced, for printing."""
    if not any(a.startswith("--storage-") for a in args):
        return list(args)
    options = _secret_options()
    shown: list[str] = []
    hide = False
    for arg in args:
        option, eq, _ = arg.partition("=")
        if option in options:
            shown.append(f"{option}={REDACTED}" if eq else arg)
            hide = not eq
        elif hide and not arg.startswith("-"):
            shown.append(REDACTED)
        else:
            hide = False
            shown.append(arg)
    return shown
