"""The benchmark's webhook receiver (WSGI, served by gunicorn): answers 200; notes receipt times for latency runs.

``?delay_ms=N`` in the URL makes it answer N milliseconds after reading the request (a slow receiver). A
request whose ``webhook-id`` starts with ``msg_lat_`` has its receipt time (before any delay) written to the
Redis hash ``bench:received`` (webhook-id -> unix time).
"""

import os
import time
from urllib.parse import parse_qs

import redis

_redis = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    received = time.time()
    message_id = environ.get("HTTP_WEBHOOK_ID", "")
    if message_id.startswith("msg_lat_"):
        _redis.hset("bench:received", message_id, repr(received))
    delay_ms = parse_qs(environ.get("QUERY_STRING", "")).get("delay_ms")
    if delay_ms:
        time.sleep(float(delay_ms[0]) / 1000)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "12")])
    return [b'{"ok": true}']


def noop_job() -> None:
    """An RQ job that does nothing: the cost case measures RQ's own bookkeeping with it."""
