"""Read and check Hookline's settings; the only module that reads ``os.environ``."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting has a value Hookline cannot run with; the message names the setting."""


def _text(value: str) -> str:
    return value


PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: static/, instance/, scripts/

MIN_SECRET_KEY_BYTES = 32


def _secret_key(value: str) -> str:
    if len(value.encode()) < MIN_SECRET_KEY_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_KEY_BYTES} bytes long (it has {len(value.encode())}); "
                         "make one with: python -c 'import secrets; print(secrets.token_hex(32))'")
    return value


MIN_METRICS_TOKEN_CHARACTERS = 32


def _metrics_token(value: str) -> str | None:
    # /metrics shows queue depths and failure counts; a short bearer token could be guessed. Empty: unset.
    if not value:
        return None
    if len(value) < MIN_METRICS_TOKEN_CHARACTERS:
        raise ValueError(f"must be at least {MIN_METRICS_TOKEN_CHARACTERS} characters long (it has {len(value)}); "
                         "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return value


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a number greater than 0")
    return number


def _pause_seconds(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 60:
        raise ValueError("must be a number of seconds from 0 to 60")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a whole number greater than 0")
    return number


MAX_WORKER_CONCURRENCY = 1024  # slots of one process; more processes beyond that


def _concurrency(value: str) -> int:
    number = _positive_int(value)
    if number > MAX_WORKER_CONCURRENCY:
        raise ValueError(f"must be at most {MAX_WORKER_CONCURRENCY} (run more worker processes for more)")
    return number


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number, 0 or more")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise ValueError("must be a port number between 1 and 65535")
    return number


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def _redis_url(value: str) -> str:
    if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


def _sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port``: the Sentinels that know which Redis is the master now."""
    sentinels = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be a comma-separated list of host:port (not {item!r})")
        sentinels.append((host.strip("[]"), int(port)))
    return tuple(sentinels)


def _database_url(value: str) -> str:
    if "://" not in value:
        raise ValueError("must be an SQLAlchemy URL such as sqlite:///hookline.db")
    return value


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value.rstrip("/")


def _networks(value: str) -> tuple:
    return tuple(ipaddress.ip_network(item.strip()) for item in value.split(",") if item.strip())


def _schedule(value: str) -> tuple[float, ...]:
    delays = tuple(float(item) for item in value.split(",") if item.strip())
    if not delays or any(delay <= 0 for delay in delays):
        raise ValueError("must be a comma-separated list of positive seconds")
    return delays


# name -> (parser, default). A default of None means "unset unless given".
SETTINGS: dict[str, tuple[Callable[[str], Any], Any]] = {
    # Signs sessions and CSRF tokens; unset, a random key kept in instance/secret_key is used.
    "SECRET_KEY": (_secret_key, None),
    "DATABASE_URL": (_database_url, None),
    "REDIS_URL": (_redis_url, "redis://127.0.0.1:6379/0"),
    # Redis behind Sentinel: these Sentinels name the master of REDIS_SENTINEL_MASTER, and every connection
    # follows it when it fails over. REDIS_URL then gives only the database, user, password and TLS (rediss://).
    "REDIS_SENTINELS": (_sentinels, ()),
    "REDIS_SENTINEL_MASTER": (_text, "mymaster"),
    "REDIS_SENTINEL_PASSWORD": (_text, None),
    "BASE_URL": (_base_url, "http://127.0.0.1:5000"),
    "WEBHOOK_TIMEOUT": (_positive_float, 1.0),
    "WEBHOOK_MAX_RESPONSE_BYTES": (_positive_int, 64 * 1024),
    "WEBHOOK_ALLOW_PRIVATE": (_flag, False),
    "WEBHOOK_ALLOWED_NETWORKS": (_networks, ()),
    "WEBHOOK_RETRY_SCHEDULE": (_schedule, (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)),
    # Retry-After from a receiver is honoured up to this many seconds.
    "WEBHOOK_RETRY_AFTER_CAP": (_positive_float, 3600.0),
    # Broken detection (SPEC section 7).
    "BROKEN_RANGE_DAYS": (_positive_int, 7),
    "BROKEN_TIMEOUT_THRESHOLD": (_positive_int, 1000),
    "BROKEN_WARNING_DAY": (_positive_int, 3),
    # The delivery engine: deliveries in flight per worker process, and attempts of one app in flight
    # (or queued) across all workers; the rest of that app's deliveries wait their turn.
    # 64: a first burst of deliveries to receivers not yet known to hang (ten apps at their cap of 4, and a
    # fan-out's runners) must leave slots for the healthy ones; a slot is a thread and a libcurl handle.
    "WORKER_CONCURRENCY": (_concurrency, 64),
    "WEBHOOK_APP_CONCURRENCY": (_positive_int, 4),
    # Batches (an app's backlog run inside one of its slots) run on one thread per worker process, their
    # transfers on one libcurl multi handle (dispatch/hub.py): no GIL contention between slots. 0: each on its slot.
    "WEBHOOK_BATCH_HUB": (_flag, True),
    # Attempts of one organisation in flight across all workers while others need slots (dispatch/orgs.py);
    # unset: a quarter of WORKER_CONCURRENCY.
    "WEBHOOK_ORG_CONCURRENCY": (_positive_int, None),
    # An app whose answer took this long (successful or not) is held to one attempt in flight, as one that
    # timed out is; unset: half of WEBHOOK_TIMEOUT.
    "WEBHOOK_SLOW_SECONDS": (_positive_float, None),
    # An app whose latest attempt got no answer (refused, hung, reset, or not valid HTTP) makes its next attempt
    # this long after that one ended, whatever is waiting: a broken or hostile receiver costs at most one attempt
    # per (attempt + pause), not one per delivery queued. 0 turns the pause off.
    "WEBHOOK_UNANSWERED_PAUSE": (_pause_seconds, 1.0),
    # A finished delivery or task job (its RQ record, pickled arguments and result: about 7 KB of Redis) is kept
    # this many seconds, so Redis holds rate x this of them; rq info and rq-dashboard show it as finished meanwhile.
    # Nothing in Hookline reads them (the request log is a delivery's record); mail, test alerts and the minute
    # tick keep theirs longer. The tests raise it: they read results after a run, however slow the machine.
    "JOB_RESULT_TTL": (_positive_int, 5),
    # Mail: its own slots in each worker, and a socket timeout for SMTP (a silent server cannot hold a slot).
    "MAIL_CONCURRENCY": (_positive_int, 2),
    "MAIL_TIMEOUT": (_positive_float, 10.0),
    "MAIL_SERVER": (_text, "localhost"),
    "MAIL_PORT": (_port, 25),
    "MAIL_DEFAULT_SENDER": (_text, "hookline@localhost"),
    "MAIL_USERNAME": (_text, None),
    "MAIL_PASSWORD": (_text, None),
    "MAIL_USE_TLS": (_flag, False),
    "MAIL_USE_SSL": (_flag, False),
    # Largest request body the ingestion endpoints read (decompressed bodies may be 4x this).
    "INGEST_MAX_BYTES": (_positive_int, 1024 * 1024),
    # Events a minute one project's key may send; beyond that, 429 with Retry-After.
    "INGEST_RATE_LIMIT": (_positive_int, 1000),
    # Largest request body the dashboard and the API read (Flask's MAX_CONTENT_LENGTH); larger gets 413.
    "REQUEST_MAX_BYTES": (_positive_int, 2 * 1024 * 1024),
    # Reverse proxies in front of Hookline that each append the client's address to X-Forwarded-For. The
    # login throttle counts attempts per client address; behind a proxy, without this, every client has
    # the proxy's address. Never set it higher than the proxies there are: the header could be forged.
    "TRUSTED_PROXIES": (_count, 0),
    # Operations: /metrics answers only with this bearer token (404 while unset); /readyz fails when the
    # oldest job waiting in a queue is older than this many seconds.
    # A dashboard session ends after this many minutes without a request.
    "SESSION_IDLE_MINUTES": (_positive_int, 120),
    "METRICS_TOKEN": (_metrics_token, None),
    "READY_MAX_QUEUE_AGE": (_positive_float, 300.0),
    # The demo's mail catcher keeps emails in this folder; when set, the dashboard shows them under Outbox.
    "DEMO_MAILBOX": (_text, None),
}
# Settings whose values an error message must not repeat.
SECRET_SETTINGS = frozenset({"SECRET_KEY", "MAIL_PASSWORD", "METRICS_TOKEN"})


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Return the settings: defaults, then the environment, then ``overrides`` (already typed or strings).

    Raise ConfigError naming the first setting whose value cannot be used.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    settings: dict[str, Any] = {}
    for name, (parse, default) in SETTINGS.items():
        raw = overrides.pop(name, environ.get(name))
        if raw is None:
            settings[name] = default
            continue
        if not isinstance(raw, str):
            settings[name] = raw
            continue
        try:
            settings[name] = parse(raw)
        except ValueError as exc:
            shown = name if name in SECRET_SETTINGS else f"{name}={raw!r}"
            raise ConfigError(f"{shown} is not valid: {exc}") from None
    settings.update(overrides)
    if settings["WEBHOOK_ORG_CONCURRENCY"] is None:
        settings["WEBHOOK_ORG_CONCURRENCY"] = max(1, settings["WORKER_CONCURRENCY"] // 4)
    if settings["WEBHOOK_SLOW_SECONDS"] is None:
        settings["WEBHOOK_SLOW_SECONDS"] = settings["WEBHOOK_TIMEOUT"] / 2
    return settings


def instance_secret_key(instance: Path) -> str:
    """Return the random key kept in ``instance/secret_key``, creating it if missing.

    Processes starting at once on a fresh instance all read the same, complete key:
    1. Each writes a key of its own to a private temporary file.
    2. Each tries to hard-link that file as ``secret_key``; a link is all or nothing, and only the
       first succeeds (the others get FileExistsError and keep the winner's key).
    3. Each reads ``secret_key``.
    """
    path = instance / "secret_key"
    if not path.exists():
        temporary = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(8)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    key = path.read_text().strip()
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(f"SECRET_KEY: the key in {path} is shorter than {MIN_SECRET_KEY_BYTES} bytes; "
                          "delete the file to have a new one made, or set SECRET_KEY")
    return key
