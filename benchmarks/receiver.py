"""The benchmark's webhook receiver (WSGI, served by gunicorn): answers 200; notes receipt times for latency runs."""

import os
import time

import redis

_redis = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    message_id = environ.get("HTTP_WEBHOOK_ID", "")
    if message_id.startswith("msg_lat_"):
        _redis.hset("bench:received", message_id, repr(time.time()))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
    return [b'{"ok": true}'[:11]]
