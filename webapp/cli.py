"""``flask --app webapp …`` commands: init-db, create-user."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_migrate import upgrade

from .accounts import AccountError, create_user
from .models import ROLES


def init_app(app: Flask) -> None:
    app.cli.add_command(init_db_command)
    app.cli.add_command(create_user_command)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create the schema, or upgrade it to the newest migration (safe to run again)."""
    upgrade()
    click.echo("Database is up to date.")


@click.command("create-user")
@with_appcontext
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--org", "org_slug", required=True, help="Organisation slug; created if missing.")
@click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True)
@click.option("--name", default="", help="Display name (defaults to the part of the email before @).")
def create_user_command(email, password, org_slug, role, name):
    """Create a user who is a member of an organisation."""
    try:
        user = create_user(email, password, org_slug, role, name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.email} ({role} of {org_slug}).")
