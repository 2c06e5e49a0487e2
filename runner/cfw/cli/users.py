"""`cfw users add|remove|list ENV [USER]`: who may use a shared environment.

Kind-neutral: it asks the kind (capability ``users``) for its users; for tibanna they are
the members of the unicorn's IAM group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from cfw.backends.registry import get_kind
from cfw.cli import app
from cfw.cli.envs import _complete_env
from cfw.cli.output import Output
from cfw.core.errors import UserError
from cfw.core.state import PHASE_UP, EnvState

users_app = typer.Typer(
    help="Who may use an environment (kinds with users, e.g. tibanna).", no_args_is_help=True
)
app.add_typer(users_app, name="users")

ENV_ARG = typer.Argument(..., help="Environment name.", autocompletion=_complete_env)


def _users(name: str):
    from cfw.core.config import validate

    state = EnvState(Path.cwd(), name)
    meta = state.meta()
    if meta is None or meta.phase != PHASE_UP:
        raise UserError(f"environment {name!r} is not up here", f"bring it up with `cfw up {name}`")
    kind = get_kind(meta.kind)
    if not kind.capabilities.users:
        raise UserError(
            f"environment {name} (kind {kind.name}) has no users to manage",
            "`cfw users` works on kinds with users, such as tibanna",
        )
    config = validate(kind.config_model, dict(meta.config), f"saved config of {name}")
    return kind.users(config, state.outputs(), dict(os.environ))


@users_app.command("list")
def list_users(
    name: str = ENV_ARG,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """List the environment's users."""
    members = _users(name).list()
    if as_json:
        typer.echo(json.dumps(members))
        return
    for user in members:
        typer.echo(user)
    if not members:
        Output().info(f"{name} has no users; add one with `cfw users add {name} USER`")


@users_app.command("add")
def add_user(name: str = ENV_ARG, user: str = typer.Argument(..., help="User name.")) -> None:
    """Give a user access to the environment."""
    _users(name).add(user)
    Output().success(f"{user} may now use {name}")


@users_app.command("remove")
def remove_user(name: str = ENV_ARG, user: str = typer.Argument(..., help="User name.")) -> None:
    """Take a user's access away (a user without access is fine)."""
    if _users(name).remove(user):
        Output().success(f"{user} may no longer use {name}")
    else:
        Output().info(f"{user} was not a user of {name}; nothing to do")
