"""The Redis connection shared by the web app, the dispatcher and RQ."""

from __future__ import annotations

import contextlib
import contextvars
import json
import weakref
from collections.abc import Iterator

import redis
from flask import Flask, current_app
from redis.connection import SSLConnection, parse_url
from redis.sentinel import Sentinel

# Every connection: a Redis that does not answer is noticed in seconds, and an idle connection is checked
# before use (a fail-over or a restart may have closed it).
CONNECTION_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 30}


def init_app(app: Flask) -> None:
    app.extensions["redis"] = connect(app.config)


def connect(config) -> redis.Redis:
    """Return the client the web app, the dispatcher and RQ share: REDIS_URL's server, or the master Sentinel names.

    RQ stores pickled job data, so this client must not decode responses; JSON readers decode themselves.
    Behind Sentinel, the client asks the Sentinels for the master whenever it opens a connection, and a
    connection to a server that is no longer the master fails (READONLY) and is replaced: after a fail-over,
    every process follows the new master without a restart.
    """
    if not config["REDIS_SENTINELS"]:
        return redis.Redis.from_url(config["REDIS_URL"], **CONNECTION_OPTIONS)
    # REDIS_URL's host and port are the Sentinels' business; its database, user, password and TLS still apply.
    options = parse_url(config["REDIS_URL"])
    for server_only in ("host", "port", "path"):
        options.pop(server_only, None)
    options["ssl"] = options.pop("connection_class", None) is SSLConnection
    sentinel = Sentinel(list(config["REDIS_SENTINELS"]), **CONNECTION_OPTIONS,
                        sentinel_kwargs={"password": config["REDIS_SENTINEL_PASSWORD"],
                                         "socket_connect_timeout": 2, "socket_timeout": 2})
    return sentinel.master_for(config["REDIS_SENTINEL_MASTER"], redis_class=redis.Redis, **CONNECTION_OPTIONS,
                               **options)


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


# Run the write commands in ARGV[1], a JSON list of [command, index of its key in KEYS, argument...], in order.
# One JSON argument rather than one per value: redis-py spends microseconds per argument packing a command.
_WRITES_SCRIPT = """
local writes = cjson.decode(ARGV[1])
for _, write in ipairs(writes) do
    redis.call(write[1], KEYS[write[2]], unpack(write, 3))
end
return #writes
"""


_writes_scripts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class WriteBatch:
    """Redis writes sent as one script call: one command and one reply, applied together.

    It takes the write commands a pipeline would (``lpush``, ``hincrby``, ...), so code that adds its writes
    to a pipeline adds them here unchanged. A delivery records a dozen writes (log, counters, health); as
    pipelined commands redis-py spends about 25 µs of CPU on each, as one script call a fraction of that.
    """

    def __init__(self, client: redis.Redis):
        self.client = client
        self.keys: dict[str, int] = {}
        self.writes: list[list] = []

    def _add(self, command: str, key: str, *args) -> WriteBatch:
        index = self.keys.setdefault(key, len(self.keys) + 1)
        self.writes.append([command, index, *args])
        return self

    def lpush(self, key: str, *values: str) -> WriteBatch:
        return self._add("LPUSH", key, *values)

    def ltrim(self, key: str, start: int, end: int) -> WriteBatch:
        return self._add("LTRIM", key, start, end)

    def expire(self, key: str, seconds: int) -> WriteBatch:
        return self._add("EXPIRE", key, seconds)

    def hset(self, key: str, field: str, value: str | int) -> WriteBatch:
        return self._add("HSET", key, field, value)

    def zadd(self, key: str, score: float, member: str | int) -> WriteBatch:
        return self._add("ZADD", key, repr(float(score)), member)

    def hincrby(self, key: str, field: str, amount: int = 1) -> WriteBatch:
        return self._add("HINCRBY", key, field, amount)

    def hincrbyfloat(self, key: str, field: str, amount: float = 1.0) -> WriteBatch:
        return self._add("HINCRBYFLOAT", key, field, repr(float(amount)))  # cjson would round it to 14 digits

    def execute(self, defer: bool = False) -> None:
        """Send the writes; inside ``holding_writes`` they join the held ones instead, and with ``defer`` wait there."""
        if not self.writes:
            return
        held = _held_writes.get()
        if held is not None:
            held.take(self)
            if not defer:
                held.flush()  # the held ones first, in order, in the same call
            return
        self.client_call()
        self.keys, self.writes = {}, []

    def client_call(self) -> None:
        keys, args = self.call_args()
        self.script()(keys=keys, args=args, client=self.client)

    def script(self):
        script = _writes_scripts.get(self.client)
        if script is None:  # a SHA-1 of the text, no round trip; kept per client, as it is made per delivery
            script = _writes_scripts[self.client] = self.client.register_script(_WRITES_SCRIPT)
        return script

    def call_args(self) -> tuple[list, list]:
        """The script call's keys and arguments, for a caller that sends it on a pipeline of its own."""
        return list(self.keys), [json.dumps(self.writes, ensure_ascii=False)]


class HeldWrites:
    """Writes held back and sent together with the next ones that are not (see ``holding_writes``).

    Repeated writes fold into one as they are taken, with the same effect as running them in order: values
    pushed on a list join its first push (its trim and expiry, the same each time, are kept once), increments
    of one hash field add up, and a field set again keeps its latest value. A chunk of 16 successes is then
    about 20 commands for Redis rather than 250. Any other write (a ZADD) is kept as it is, and writes to its
    key are not folded past it.
    """

    # HINCRBYFLOAT is not folded: Redis adds in long double and rounds each result, a sum of doubles would differ.
    FOLDED = frozenset({"LPUSH", "HINCRBY", "HSET"})
    # The same arguments again change nothing (nothing reads in between). An LTRIM only as "keep the newest N"
    # (start 0): pushes folded ahead of it then leave the same list.
    ONCE = frozenset({"LTRIM", "EXPIRE"})

    def __init__(self, client: redis.Redis):
        self.batch = WriteBatch(client)
        self._folds: dict[tuple, list] = {}  # (key index, hash field or None) -> the write later ones fold into
        self._once: set[tuple] = set()

    def take(self, writes: WriteBatch) -> None:
        names = {index: key for key, index in writes.keys.items()}
        held = self.batch
        for command, index, *args in writes.writes:
            key = held.keys.setdefault(names[index], len(held.keys) + 1)
            if command in self.ONCE and (command != "LTRIM" or str(args[0]) == "0"):
                signature = (command, key, *args)
                if signature in self._once:
                    continue
                self._once.add(signature)
            elif command in self.FOLDED:
                slot = (key, None if command == "LPUSH" else args[0])
                fold = self._folds.get(slot)
                if fold is not None and fold[0] == command:
                    if command == "LPUSH":
                        fold.extend(args)
                    elif command == "HINCRBY":
                        fold[3] += args[1]
                    else:
                        fold[3] = args[1]
                    continue
                write = [command, key, *args]
                self._folds[slot] = write
                held.writes.append(write)
                continue
            elif command == "HINCRBYFLOAT":  # not folded; touches its own field only
                self._folds.pop((key, args[0]), None)
            else:  # not folded, and nothing before it on this key is folded into after it
                self._folds = {slot: fold for slot, fold in self._folds.items() if slot[0] != key}
                self._once = {signature for signature in self._once if signature[1] != key}
            held.writes.append([command, key, *args])
        writes.keys, writes.writes = {}, []

    def flush(self) -> None:
        batch = self.take_all()  # taken first: a call that fails is not sent again with the next ones
        if batch is not None:
            batch.client_call()

    def take_all(self) -> WriteBatch | None:
        """Hand the held writes to a caller that sends them itself; None when there are none."""
        if not self.batch.writes:
            return None
        batch = self.batch
        self._clear()
        return batch

    def _clear(self) -> None:
        self.batch = WriteBatch(self.batch.client)
        self._folds, self._once = {}, set()


# A batch (dispatch/batches.py) holds its successful attempts' records here and sends them with its chunk's end.
_held_writes: contextvars.ContextVar[HeldWrites | None] = contextvars.ContextVar("hookline_held_writes", default=None)


@contextlib.contextmanager
def holding_writes(client: redis.Redis) -> Iterator[HeldWrites]:
    """Inside: ``WriteBatch.execute(defer=True)`` holds its writes back; any other execute sends them all first.

    Yields the ``HeldWrites``; whoever opened it sends what is still held (``flush`` or ``take_all``).
    """
    token = _held_writes.set(HeldWrites(client))
    try:
        yield _held_writes.get()
    finally:
        _held_writes.reset(token)
