"""Hookline and a bare endpoint in one gunicorn server, so ingestion is compared with doing nothing."""

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from webapp import create_app


def bare(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


application = DispatcherMiddleware(create_app(), {"/bare": bare})
