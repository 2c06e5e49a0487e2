"""cfw's command line. Thin: each command parses its options and calls the core.

The edge turns cfw's one exception type into one line and an exit code: 0 success, 1 the
work failed, 2 a user mistake, 130 interrupted. Tracebacks only with CFW_DEBUG=1.

Start-up is kept short: the command modules import at module level only what their options
need (each command imports the machinery it calls), and help is Click's plain text rather
than Rich's panels (Typer's Rich help alone costs about 0.3 s). tests/core/test_startup.py
keeps heavy modules out of `import cfw.cli`.
"""

from __future__ import annotations

import os
import signal
import sys

import typer
from typer.core import TyperGroup

from cfw.core.errors import CfwError

# Typer >= 0.20 vendors Click as typer._click; older ones use click itself
try:
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import ClickException


# Typer >= 0.2x coerces every parameter through a pydantic TypeAdapter it builds when the
# command runs: importing pydantic and building the adapters costs about 0.3 s, even for
# `cfw status`. A `str` parameter given a str and a `bool` given a bool (what argv and the
# defaults give) come out of Typer's adapter unchanged, so they are passed through here
# without it; any other value or type still goes through Typer's own coercion. Without
# these internals (another Typer), nothing changes.
try:
    from typer._coercion import RuntimeParam as _RuntimeParam
    from typer._coercion import build_runtime_param as _build_runtime_param
except ImportError:  # pragma: no cover - depends on the installed Typer
    _RuntimeParam = None


if _RuntimeParam is not None:

    class _PassThrough(_RuntimeParam):
        def _coerce_value(self, value, param, ctx):
            if type(value) is self.annotation:
                return value
            return _build_runtime_param(param.type_descriptor)._coerce_value(value, param, ctx)


def _pass_through(params) -> None:
    """Give the plain `str` and `bool` parameters the pass-through above, before Typer
    builds them a pydantic adapter."""
    if _RuntimeParam is None:
        return
    for param in params:
        desc = getattr(param, "type_descriptor", None)
        info = getattr(desc, "parameter_info", None)
        if (
            desc is not None
            and desc.annotation in (str, bool)
            and desc.file_annotation is None
            and getattr(info, "parser", None) is None
            and getattr(info, "click_type", None) is None
            and getattr(param, "_runtime_param", False) is None
        ):
            param._runtime_param = _PassThrough(parameter_info=info, annotation=desc.annotation)


class _Group(TyperGroup):
    """Lists each command with the whole first paragraph of its help, unshortened; parses
    plain options without pydantic (above)."""

    def parse_args(self, ctx, args):
        _pass_through(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _pass_through(command.get_params(ctx))
        return name, command, rest

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                text = cmd.short_help or (cmd.help or "").split("\n\n")[0]
                rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="cfw",
    cls=_Group,
    help="Cloud compute for Snakemake workflows: provision it with Terraform, run the "
    "workflow's jobs on it, tear it down.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from cfw import __version__

        typer.echo(f"cfw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """cfw: up, run, down."""


from cfw.cli import envs as _envs  # noqa: E402,F401  (registers commands)
from cfw.cli import guardcmd as _guardcmd  # noqa: E402,F401
from cfw.cli import prices as _prices  # noqa: E402,F401
from cfw.cli import runcmd as _runcmd  # noqa: E402,F401
from cfw.cli import users as _users  # noqa: E402,F401


def _debug() -> bool:
    return os.environ.get("CFW_DEBUG", "") not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    # SIGTERM behaves like Ctrl-C: cancel jobs, tear down when asked, then stop. SIGINT is
    # handled even when inherited as ignored (a background job of a script, some CI
    # runners): `kill -INT` must still cancel the run and tear down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = _ErrorLine()
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
        if isinstance(exc.__cause__, KeyboardInterrupt):  # Typer's way of saying Ctrl-C
            out.error("interrupted")
    except typer.Abort:
        out.error("aborted")
        code = 130
    except ClickException as exc:  # bad usage: unknown option, missing argument
        if _debug():
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed
            code = 0
        else:
            out.error(_one_line(exc.format_message()) + " — see `cfw --help`")
            code = 2
    except CfwError as exc:
        if _debug():
            raise
        out.error(exc.message + (f" — {exc.hint}" if exc.hint else ""))
        code = exc.exit_code
    except KeyboardInterrupt:
        if _debug():
            raise
        out.error("interrupted")
        code = 130
    except Exception as exc:  # a bug in cfw, not the user's doing
        if _debug():
            raise
        out.error(
            f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "— rerun with CFW_DEBUG=1 for the traceback and report it"
        )
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


class _ErrorLine:
    """Output().error, with rich imported only when there is an error to print."""

    def error(self, text: str) -> None:
        from cfw.cli.output import Output

        Output().error(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())
