"""Log in and out."""

import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user, user_logged_in

from ..accounts.email_address import EmailAddressError, normalize_email
from ..accounts.jobs import queue_failed_login
from ..accounts.login_throttle import count_attempt, is_first_refusal, record_success
from ..accounts.people import authenticate
from ..core.audit import record_login
from ..core.extensions import db
from ..core.forms import EmptyForm, LoginForm

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
        try:
            email = normalize_email(form.email.data)
        except EmailAddressError as exc:  # refused before it is counted or looked up: nothing changes
            flash(str(exc), "error")
            return render_template("login.html", form=form), 400
        address = request.remote_addr or ""
        wait = count_attempt(email, address)
        if wait:
            if is_first_refusal(email, wait):
                queue_failed_login(email, address, "throttled")
            return _too_many_attempts(form, wait)
        user = authenticate(email, form.password.data)
        if user is not None:
            record_success(email, address)
            record_login(user.email, address)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        # Recorded by a job, whether or not the email has an account: the answer takes as long either way.
        queue_failed_login(email, address, "wrong password")
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


@user_logged_in.connect
def _start_idle_clock(app, user, **extra) -> None:
    """Stamp a new session with its login time: the cookie the login answers with already counts idle time."""
    session["seen"] = _now()


def _now() -> int:
    # The wall clock, not webapp.core.clock: tests that move Hookline's clock by days must not end their sessions.
    return int(time.time())


@bp.before_app_request
def end_idle_session():
    """End a session unused for SESSION_IDLE_MINUTES: the next page asks to log in again.

    A session without a time (made before logins were stamped) is ended too: its age cannot be known.
    """
    if not current_user.is_authenticated or "_user_id" not in session:  # API tokens carry no session
        return None
    now = _now()
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    seen = session.get("seen")
    if not isinstance(seen, int) or now - seen > idle:
        logout_user()
        session.pop("seen", None)
        minutes = idle // 60
        flash(f"You were logged out after {minutes} minute{'' if minutes == 1 else 's'} without activity. "
              "Log in again.", "info")
        if request.path.startswith("/api/"):
            return None  # the API answers 401 for a session read without a user
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    if now - seen >= 60:  # refresh at most once a minute: fewer cookie rewrites
        session["seen"] = now
    return None
