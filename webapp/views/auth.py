"""Log in and out."""

import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..accounts import authenticate
from ..audit import record_login
from ..extensions import db
from ..forms import EmptyForm, LoginForm
from ..login_throttle import count_attempt, is_first_refusal, record_success

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login would be a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("apps.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("apps.index"))
    form = LoginForm()
    if form.validate_on_submit():
        address = request.remote_addr or ""
        wait = count_attempt(form.email.data, address)
        if wait:
            if is_first_refusal(form.email.data, wait):
                record_login(form.email.data, address, failure="throttled")
            return _too_many_attempts(form, wait)
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            record_success(form.email.data, address)
            record_login(user.email, address)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        record_login(form.email.data, address, failure="wrong password")
        flash("Wrong email or password.", "error")
    return render_template("login.html", form=form), 200 if request.method == "GET" else 400


def _too_many_attempts(form: LoginForm, wait: int):
    minutes = math.ceil(wait / 60)
    flash(f"Too many attempts, try again in {minutes} minute{'' if minutes == 1 else 's'}.", "error")
    return render_template("login.html", form=form), 429, {"Retry-After": str(wait)}


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    if EmptyForm().validate_on_submit():
        if current_user.is_authenticated:
            current_user.end_sessions()  # every session of this person ends, not just this browser's
            db.session.commit()
        logout_user()
        flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.before_app_request
def end_idle_session():
    """End a session unused for SESSION_IDLE_MINUTES: the next page asks to log in again."""
    if not current_user.is_authenticated or "_user_id" not in session:  # API tokens carry no session
        return None
    now = int(time.time())
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    seen = session.get("seen", now)
    if now - seen > idle:
        logout_user()
        session.pop("seen", None)
        flash(f"You were logged out after {idle // 60} minutes without activity. Log in again.", "info")
        if request.path.startswith("/api/"):
            return None  # the API answers 401 for a session read without a user
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    if now - seen >= 60 or "seen" not in session:  # refresh at most once a minute: fewer cookie rewrites
        session["seen"] = now
    return None
