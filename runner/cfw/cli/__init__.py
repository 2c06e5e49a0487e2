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


class _Group(TyperGroup):
    """Lists each command with the whole first paragraph of its help, unshortened."""

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
