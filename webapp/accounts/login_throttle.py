"""Slow password guessing: count login attempts per email and per client address, refuse past a limit.

The same counters, with keys and limits of their own, slow down requests for password reset emails.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable

from redis.exceptions import RedisError

from ..core import keys
from ..core.redis_store import get_redis

logger = logging.getLogger(__name__)

MAX_ATTEMPTS_PER_EMAIL = 5
MAX_ATTEMPTS_PER_ADDRESS = 20

# Take a successful login back off its address's count, unless the window (the key) has ended meanwhile.
_DECREMENT_IF_PRESENT = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Limits:
    """What is counted: the key of an email's (hashed) and an address's counter, the window and the maximums."""

    email_key: Callable[[str], str]
    address_key: Callable[[str], str]
    window: int
    per_email: int
    per_address: int


LOGIN = Limits(keys.login_attempts_for_email, keys.login_attempts_for_address, keys.LOGIN_WINDOW,
               MAX_ATTEMPTS_PER_EMAIL, MAX_ATTEMPTS_PER_ADDRESS)
PASSWORD_RESET = Limits(keys.reset_requests_for_email, keys.reset_requests_for_address, keys.RESET_WINDOW, 3, 10)


def _email_digest(email: str) -> str:
    # Hashed: the key names of Redis need not list who tried to log in.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _email_key(email: str, limits: Limits = LOGIN) -> str:
    return limits.email_key(_email_digest(email))


def count_attempt(email: str, address: str, limits: Limits = LOGIN) -> int:
    """Count an attempt (a login unless ``limits`` says otherwise); return the seconds until the next one may be
    checked, or 0 to check this one.

    The attempt is counted before the password is checked, so parallel guesses cannot slip past the
    limit while the hash is computed; ``record_success`` takes a good one back. Without Redis, logins
    are let through (with a log line): an outage must not lock everyone out.
    """
    counters = ((_email_key(email, limits), limits.per_email), (limits.address_key(address), limits.per_address))
    try:
        pipe = get_redis().pipeline(transaction=True)
        for key, _ in counters:
            pipe.set(key, 0, ex=limits.window, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
        replies = pipe.execute()
    except RedisError as exc:
        logger.warning("login.throttle_unchecked reason=%s", exc.__class__.__name__)
        return 0
    waits = [max(ttl, 1) for (_, limit), count, ttl in zip(counters, replies[1::3], replies[2::3]) if count > limit]
    if waits:
        logger.warning("login.throttled address=%s", address)
    return max(waits, default=0)


def record_success(email: str, address: str) -> None:
    """Forget the email's attempts, and take this attempt off the address's count."""
    try:
        redis = get_redis()
        redis.delete(_email_key(email))
        redis.eval(_DECREMENT_IF_PRESENT, 1, keys.login_attempts_for_address(address))
    except RedisError as exc:
        logger.warning("login.throttle_not_cleared reason=%s", exc.__class__.__name__)


def is_first_refusal(email: str, wait: int) -> bool:
    """Say whether this is the first refused attempt for ``email`` in the ``wait`` seconds it stays refused."""
    try:
        return bool(get_redis().set(keys.login_refusal_noted(_email_digest(email)), 1, nx=True, ex=max(wait, 1)))
    except RedisError as exc:
        logger.warning("login.refusal_not_noted reason=%s", exc.__class__.__name__)
        return True
