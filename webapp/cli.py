"""``flask --app webapp …`` commands: init-db, create-user, create-project, create-token."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select

from .accounts.people import AccountError, create_user
from .accounts.tokens import create_token
from .apps.projects import ProjectError, create_project
from .core.extensions import db
from .models import ROLES, Organization, find_user_by_email


def init_app(app: Flask) -> None:
    app.cli.add_command(init_db_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(create_project_command)
    app.cli.add_command(create_token_command)


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


@click.command("create-project")
@with_appcontext
@click.option("--org", "org_slug", required=True, help="Organisation slug (must exist).")
@click.option("--name", required=True)
@click.option("--slug", default=None, help="Defaults to the name, slugified.")
def create_project_command(org_slug, name, slug):
    """Create a project and print its DSN (what sentry_sdk.init(dsn=...) takes)."""
    organization = db.session.scalar(select(Organization).where(Organization.slug == org_slug))
    if organization is None:
        raise click.ClickException(f"There is no organisation {org_slug!r}.")
    try:
        project = create_project(organization, name, slug)
    except ProjectError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(project.dsn(current_app.config["BASE_URL"]))


@click.command("create-token")
@with_appcontext
@click.option("--email", required=True)
@click.option("--name", default="CLI token", show_default=True)
def create_token_command(email, name):
    """Create a personal API token for a user and print it (it is shown only this once)."""
    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"There is no user with the email {email}.")
    try:
        _, token = create_token(user, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)
