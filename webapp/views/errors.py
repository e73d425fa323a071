"""Error pages: the dashboard's own page with its navigation for people, ``{"detail": …}`` under /api/."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from ..core.extensions import db

logger = logging.getLogger(__name__)

# What a person reads for the common errors; others show werkzeug's name and description.
PAGES = {
    403: ("You can't do that here", "Your role in this organisation does not allow it. Ask an owner if you need it."),
    404: ("Page not found", "There is nothing at this address, or it belongs to an organisation you are not in."),
    405: ("That doesn't work here", "This address does not take that kind of request."),
    500: ("Something went wrong", "Hookline could not finish this request. It has been logged; try again in a moment."),
}


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(InternalServerError, render_server_error)


def render_http_error(error: HTTPException):
    """Answer an HTTP error with JSON under /api/, else with the error page (keeping headers such as Allow)."""
    if error.code is None or error.response is not None:
        return error
    if request.path.startswith("/api/0/") and request.url_rule is None and error.code in (404, 405):
        # No endpoint for this path and method: say so. A path Hookline serves with other methods stays a 405
        # with Allow (as Sentry answers); an unknown path is a 404.
        response = jsonify(detail=_not_implemented(request.method, request.path))
        if error.code == 404:
            error = NotFound()
    elif request.path.startswith("/api/"):
        detail = "The requested resource does not exist." if error.code == 404 else error.description
        response = jsonify(detail=detail)
    else:
        title, default_message = PAGES.get(error.code, (error.name, error.description))
        custom = error.description != type(error).description  # abort(403, description="…") says why
        message = error.description if custom or error.code not in PAGES else default_message
        # No navigation entry is "current" on an error page, whichever view raised it.
        response = make_response(render_template("error.html", code=error.code, title=title, message=message,
                                                 nav_section=None))
    response.status_code = error.code
    for header, value in error.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response


def _not_implemented(method: str, path: str) -> str:
    hint = "" if path.endswith("/") else " (Hookline's API paths end with a slash, as Sentry's do)"
    return f"{method} {path} is not implemented by Hookline{hint}."


def render_server_error(error: InternalServerError):
    """The 500 page; if even that cannot be drawn (the database is down, say), a line of plain text."""
    db.session.rollback()  # the failed request may have left its transaction unusable
    try:
        return render_http_error(error)
    except Exception:
        logger.exception("error.page_failed: the 500 page itself failed; answering in plain text")
        return "Hookline could not finish this request.", 500, {"Content-Type": "text/plain; charset=utf-8"}
