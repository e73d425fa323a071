"""The person's password: change it (knowing the current one), or reset a forgotten one by email."""

from __future__ import annotations

import math

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..accounts.email_address import EmailAddressError, normalize_email
from ..accounts.jobs import queue_reset_email
from ..accounts.login_throttle import PASSWORD_RESET, count_attempt, record_success
from ..accounts.passwords import (
    MIN_LENGTH, PasswordError, ResetLinkGone, change_password, reset_for_token, reset_password,
)
from ..accounts.tokens import count_tokens
from ..core.extensions import db
from .helpers import link_gone

bp = Blueprint("passwords", __name__)


def _address() -> str:
    return request.remote_addr or ""


def _keep_tokens() -> bool:
    """The person's choice on the form; without the box ticked (the default) their API tokens end."""
    return request.form.get("keep_tokens") == "1"


def _tokens_note(had: int) -> str:
    """What became of the person's API tokens, for the message after the change ("" if they had none)."""
    if not had:
        return ""
    if _keep_tokens():
        return " Your API token still works." if had == 1 else f" Your {had} API tokens still work."
    ended = "API token no longer works" if had == 1 else f"{had} API tokens no longer work"
    return f" Your {ended}: make new ones under API tokens if you need them."


def _too_many(template: str, wait: int, **context):
    minutes = math.ceil(wait / 60)
    error = f"Too many attempts, try again in {minutes} minute{'' if minutes == 1 else 's'}."
    return render_template(template, error=error, min_length=MIN_LENGTH, **context), 429, {"Retry-After": str(wait)}


@bp.route("/settings/password", methods=["GET", "POST"])
@login_required
def change():
    """Change the password; every other session of the person ends, this browser gets a fresh one."""
    error = None
    if request.method == "POST":
        user = current_user._get_current_object()
        wait = count_attempt(user.email, _address())  # wrong current passwords count as failed logins
        if wait:
            return _too_many("passwords/change.html", wait)
        had_tokens = count_tokens(user)
        try:
            change_password(user, request.form.get("current", ""), request.form.get("password", ""),
                            request.form.get("confirmation", ""), keep_tokens=_keep_tokens())
        except PasswordError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            record_success(user.email, _address())
            logout_user()
            login_user(user)  # the session names the new session token
            flash("Password changed. You are logged out everywhere else." + _tokens_note(had_tokens), "success")
            return redirect(url_for("passwords.change"), 303)
    return render_template("passwords/change.html", error=error, min_length=MIN_LENGTH,
                           tokens=count_tokens(current_user)), 400 if error else 200


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot():
    """Ask for a reset link; the answer is the same whether or not the email has an account."""
    if request.method == "GET":
        return render_template("passwords/forgot.html", sent_to=None, error=None)
    try:
        email = normalize_email(request.form.get("email", ""))
    except EmailAddressError as exc:
        return render_template("passwords/forgot.html", sent_to=None, error=str(exc)), 400
    wait = count_attempt(email, _address(), PASSWORD_RESET)
    if wait:
        return _too_many("passwords/forgot.html", wait, sent_to=None)
    queue_reset_email(email)  # a job looks the email up: this request does the same for every email
    return render_template("passwords/forgot.html", sent_to=email, error=None)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset(token):
    try:
        password_reset = reset_for_token(token)
    except ResetLinkGone as exc:
        return link_gone("This reset link cannot be used", exc, exc.status)
    error = None
    if request.method == "POST":
        had_tokens = count_tokens(password_reset.user)
        try:
            user = reset_password(password_reset, request.form.get("password", ""), request.form.get("confirmation", ""),
                                  keep_tokens=_keep_tokens())
        except PasswordError as exc:
            error = str(exc)
        except ResetLinkGone as exc:
            return link_gone("This reset link cannot be used", exc, exc.status)
        else:
            record_success(user.email, _address())  # failed logins before the reset no longer hold the account back
            flash("Your password is changed and every session of yours has ended." + _tokens_note(had_tokens)
                  + " Log in with the new password.", "success")
            return redirect(url_for("auth.login"), 303)
    return render_template("passwords/reset.html", email=password_reset.user.email, error=error,
                           min_length=MIN_LENGTH, tokens=count_tokens(password_reset.user),
                           no_org_nav=True), 400 if error else 200
