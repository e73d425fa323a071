"""The demo's Outbox: the emails Hookline sent, as the mail catcher kept them. Registered only with DEMO_MAILBOX."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template
from flask_login import login_required

bp = Blueprint("demo_outbox", __name__, url_prefix="/demo/outbox")

NAME = re.compile(r"^\d+$")


def _folder() -> Path:
    return Path(current_app.config["DEMO_MAILBOX"])


def _read(name: str):
    if not NAME.match(name):
        abort(404)
    path = _folder() / f"{name}.eml"
    if not path.is_file():
        abort(404)
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def _summary(name: str, message) -> dict:
    try:
        date = parsedate_to_datetime(message["Date"]) if message["Date"] else None
    except (TypeError, ValueError):
        date = None
    return {"name": name, "subject": message["Subject"] or "(no subject)", "to": message["To"] or "", "date": date}


@bp.route("")
@login_required
def outbox():
    names = sorted((path.stem for path in _folder().glob("*.eml")), reverse=True)[:100]
    return render_template("demo/outbox.html", messages=[_summary(name, _read(name)) for name in names])


@bp.route("/<name>")
@login_required
def message(name):
    parsed = _read(name)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    return render_template("demo/message.html", message=_summary(name, parsed),
                           text=text.get_content() if text else "", has_html=html is not None)


@bp.route("/<name>/html")
@login_required
def message_html(name):
    html = _read(name).get_body(preferencelist=("html",))
    if html is None:
        abort(404)
    response = Response(html.get_content(), content_type="text/html; charset=utf-8")
    # The email's own page: its inline styles render, its scripts (there are none) could not run.
    response.headers["Content-Security-Policy"] = "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response
