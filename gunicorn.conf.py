"""gunicorn's settings for Hookline's web tier: read by the systemd unit, the Procfile and the demo.

Threads, not one request per process: gunicorn's default (sync) worker serves one request at a time, so a few
slow requests (a client on a slow link, a big envelope, a page over a large log) hold the whole process and
every request behind them waits. A gthread worker serves ``WEB_THREADS`` requests at once; a slow one holds
one thread. No request waits for a webhook receiver (a test alert answers at once and is polled), so threads
are only ever held by this server's own work.

Sizing: ``--workers`` (WEB_CONCURRENCY) processes x WEB_THREADS threads requests at once; each thread may hold
one database connection, so PostgreSQL needs room for workers x threads connections from the web tier.
"""

import os

worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# A request still running after this long is a bug, not a slow client: its worker is restarted.
timeout = 30
graceful_timeout = 20
keepalive = 5
