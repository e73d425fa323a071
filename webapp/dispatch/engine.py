"""One worker process: many RQ workers in threads (the slots), each on one queue, plus the housekeeper.

Deliveries wait on the network, so one process keeps ``WORKER_CONCURRENCY`` of them in flight. Each
slot is an RQ ``SimpleWorker`` of its own (registered, heartbeating, with RQ's started registry and
retries) running in a thread, on a single queue so RQ dequeues recoverably. Slots per queue:

- ``hookline-webhooks``: WORKER_CONCURRENCY (first attempts, test alerts, events);
- ``hookline-retries``: a quarter as many again (at least one), so retries never take the slots of first
  attempts, and first attempts never take theirs;
- ``hookline-mail``: MAIL_CONCURRENCY; ``hookline-periodic``: one (the minute tick).

A slot whose RQ worker stops on a fault (Redis gone, the database gone) starts a fresh one after a
short back-off, so the process rides out outages; it exits only when asked to (SIGTERM or SIGINT:
busy slots finish their job first).
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import signal
import socket
import threading
import time
import uuid
import weakref

from flask import Flask
from redis.exceptions import RedisError, ResponseError
from rq.worker import WorkerStatus

from ..core import keys
from .housekeeping import Housekeeper
from .http import FILES_PER_SLOT
from .queues import HooklineWorker, make_worker
from .schedule import TICK_SECONDS

logger = logging.getLogger(__name__)

# RQ's worker TTL (its socket timeout on the shared pool follows from it: TTL - 15 + 10 s, above DEQUEUE_SLICE).
WORKER_TTL = 30
MAX_RESTART_DELAY = 5.0
WAKE_EVERY = 0.5  # seconds between wake-ups of the waiting slots while a stopping process waits for its slots
# Redis connections a process uses beside one per slot: the housekeeper and RQ's scheduler lock, a fan-out's
# release threads, the start-up checks.
REDIS_SPARE_CONNECTIONS = 16
# Open files a process needs beside its slots' deliveries and its Redis and database connections.
SPARE_FILES = 64


def slot_plan(config) -> list[str]:
    """Return the queue of each slot of one worker process."""
    first_attempts = config["WORKER_CONCURRENCY"]
    retries = max(1, first_attempts // 4)
    return ([keys.PERIODIC_QUEUE] + [keys.MAIL_QUEUE] * config["MAIL_CONCURRENCY"]
            + [keys.RETRY_QUEUE] * retries + [keys.WEBHOOK_QUEUE] * first_attempts)


def redis_connections_needed(config) -> int:
    """Return the Redis connections one worker process may hold at once: one per slot, and the spare ones."""
    return len(slot_plan(config)) + REDIS_SPARE_CONNECTIONS


def open_files_needed(config) -> int:
    """Return the open files one worker process may need: deliveries, Redis, the database pool, the rest."""
    database = config["WORKER_CONCURRENCY"] + config["MAIL_CONCURRENCY"] + 10  # pool_size + max_overflow
    return len(slot_plan(config)) * FILES_PER_SLOT + redis_connections_needed(config) + database + SPARE_FILES


def capacity_problem(config, redis) -> str | None:
    """Make room for WORKER_CONCURRENCY (the open-file limit raised up to its hard limit); say why not, or None.

    1. Open files: raise the soft limit to what the slots need, if the hard limit allows it.
    2. Redis: the server must have room for this process's connections (``maxclients`` less those connected).
    """
    concurrency = config["WORKER_CONCURRENCY"]
    files = open_files_needed(config)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < files:
        if hard != resource.RLIM_INFINITY and hard < files:
            return (f"WORKER_CONCURRENCY={concurrency} needs about {files} open files per worker process, and this "
                    f"process may open only {hard} (ulimit -n, LimitNOFILE= in a systemd unit): lower "
                    f"WORKER_CONCURRENCY or raise the limit")
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, hard))
    needed = redis_connections_needed(config)
    try:
        clients = redis.info("clients")
    except Exception:  # noqa: BLE001 - INFO may be renamed or refused (managed Redis): nothing to check against
        return None
    maxclients, connected = int(clients.get("maxclients") or 0), int(clients.get("connected_clients") or 0)
    if maxclients and needed > maxclients - connected + 1:  # +1: the connection asking is one of them
        return (f"WORKER_CONCURRENCY={concurrency} needs {needed} Redis connections per worker process, and the "
                f"Redis server has room for {max(0, maxclients - connected)} more (maxclients {maxclients}, "
                f"{connected} connected): lower WORKER_CONCURRENCY or raise Redis's maxclients")
    return None


class WorkerProcess:
    """Run the slots and the housekeeper until stopped (or, with ``burst``, until the queues are empty)."""

    def __init__(self, app: Flask, *, burst: bool = False, verbose: bool = False, name: str | None = None):
        self.app = app
        self.burst = burst
        self.logging_level = "INFO" if verbose else "WARNING"
        self.name = name or f"{socket.gethostname()}.{os.getpid()}"
        self.plan = slot_plan(app.config)
        self.stopping = threading.Event()
        self._stop_requested_at = 0.0
        self.workers: dict[int, HooklineWorker] = {}
        self.delivery_slots = self.plan.count(keys.WEBHOOK_QUEUE)  # what the organisations' gate shares out
        self.housekeeper = Housekeeper(app, self.name, self.stopping, slots=self.delivery_slots)
        # Making the housekeeper's RQ worker raised the pool's socket timeout past the slots' 15 s BLMOVE, but
        # only for connections opened from now on: drop older ones (worker.py's start-up ping), or the slot that
        # blocks on one times out every 5 s, logs a Redis error and stops listening for a second or two.
        pool = self.housekeeper.connection.connection_pool
        pool.disconnect(inuse_connections=False)
        pool.reset()
        # redis-py caps a client at 100 connections unless told otherwise; each slot holds one while it waits
        # for a job, so the pool is sized to the plan (the server's room for it is checked at start-up).
        pool.max_connections = max(pool.max_connections, redis_connections_needed(app.config))
        # Each connection's Redis client id, learnt as it connects: a stop wakes the slots waiting for a job.
        self._client_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        pool.connection_kwargs["redis_connect_func"] = functools.partial(
            self._note_client_id, pool.connection_kwargs.get("redis_connect_func"))

    def run(self) -> int:
        """Work until stopped; return the exit status (0: stopped on request)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.housekeeper.run_once()  # due retries and the tick at once, not a second later
        threads = [threading.Thread(target=self._run_slot, args=(index, queue), name=f"slot-{index}-{queue}",
                                    daemon=True) for index, queue in enumerate(self.plan)]
        if not self.burst:
            threads.append(threading.Thread(target=self.housekeeper.run, name="housekeeper", daemon=True))
        for thread in threads:
            thread.start()
        logger.info("worker.started name=%s slots=%s", self.name, _describe(self.plan))
        while not self.stopping.is_set() and any(thread.is_alive() for thread in threads):
            self.stopping.wait(0.5)
        self._finish_busy_slots(threads)
        try:
            self.housekeeper.gate.unregister_slots(self.name, self.delivery_slots)
        except RedisError:
            pass  # its entry expires within seconds
        if threading.current_thread() is threading.main_thread():
            # Stopped: a late duplicate of the stop signal (Ctrl-C beside a supervisor's SIGTERM) must not kill
            # the exiting interpreter with a signal status. SIG_IGN survives the interpreter's own clean-up.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        logger.info("worker.stopped name=%s", self.name)
        return 0

    def stop(self) -> None:
        self.stopping.set()
        for worker in list(self.workers.values()):
            worker._stop_requested = True  # RQ's flag: leave the loop after the current job

    def _on_signal(self, signum, frame) -> None:
        if self.stopping.is_set():
            # Ctrl-C reaches every process of the terminal and a supervisor may signal too: a signal within a
            # second of the first is the same request. A later one means "now".
            if time.monotonic() - self._stop_requested_at < 1.0:
                return
            logger.warning("worker.cold_stop: a second signal; jobs in flight are re-run by another worker")
            os._exit(1)
        self._stop_requested_at = time.monotonic()
        logger.info("worker.stopping signal=%s: finishing the jobs in flight", signal.Signals(signum).name)
        self.stop()

    def _run_slot(self, index: int, queue_name: str) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                # Made inside the try: RQ's worker talks to Redis as it is made (CLIENT SETNAME), and a slot
                # restarting while Redis is still down must back off and try again, not end its thread.
                worker = make_worker(self.app, [queue_name], name=f"{self.name}.{index}.{uuid.uuid4().hex[:6]}",
                                     worker_ttl=WORKER_TTL)
                worker.run_maintenance = False  # the housekeeper does it for the process
                worker.subscribe = lambda: None  # no pubsub thread per slot
                worker.stopping = self.stopping  # an idle slot stops when its wait ends (a stop ends it at once)
                self.workers[index] = worker
                if self.stopping.is_set():
                    return
                worker.work(burst=self.burst, logging_level=self.logging_level, with_scheduler=False)
            except Exception as exc:  # noqa: BLE001 - RQ raises outside its loop (birth, teardown) on a Redis fault
                logger.warning("worker.slot_error slot=%s reason=%s: %s", index, exc.__class__.__name__,
                               str(exc).splitlines()[0][:200] if str(exc) else "")
            # This worker runs no job any more (a fault ended it mid-job: its job is RQ's abandoned job now);
            # left here in state busy, it would hold a stopping process for the whole job timeout.
            self.workers.pop(index, None)
            if self.burst or self.stopping.is_set():
                return
            delay = 0.5 if time.monotonic() - started > 30 else min(delay * 2, MAX_RESTART_DELAY)
            logger.warning("worker.slot_restart slot=%s queue=%s in=%.1fs", index, queue_name, delay)
            self.stopping.wait(delay)

    def _finish_busy_slots(self, threads) -> None:
        """Let every slot finish its job and stop (idle ones woken at once), bounded by the longest job."""
        self.stop()
        deadline = time.monotonic() + longest_job_seconds(self.app.config) + 5
        while time.monotonic() < deadline:
            alive = [thread for thread in threads if thread.is_alive()]
            if not alive:
                break
            # Again every WAKE_EVERY: a slot that was between its stop check and its next wait is woken too.
            self._wake_waiting_slots()
            alive[0].join(timeout=min(WAKE_EVERY, max(0.0, deadline - time.monotonic())))

    def _note_client_id(self, connect, connection) -> None:
        """Set up a new connection as redis-py does (``connect``, if the pool had its own) and note its client id."""
        if connect is not None:
            connect(connection)
        else:
            connection.on_connect()
        connection.send_command("CLIENT", "ID")
        try:
            self._client_ids[connection] = int(connection.read_response())
        except ResponseError:  # a Redis whose ACL refuses CLIENT: its waits end with their slices
            pass

    def _wake_waiting_slots(self) -> None:
        """End the job waits (``BLMOVE``) of this process's connections now, as if their time were up: each idle slot
        then sees the stop at once instead of at the end of its DEQUEUE_SLICE. A connection not waiting ignores it."""
        # Connected ones only: a connection closed since (a Redis restart, a failover) has a new id once it reconnects,
        # and its old one may be another client's now.
        client_ids = [client_id for connection, client_id in list(self._client_ids.items()) if connection.is_connected]
        if not client_ids:
            return
        try:
            with self.housekeeper.connection.pipeline(transaction=False) as pipeline:
                for client_id in client_ids:
                    pipeline.client_unblock(client_id)
                pipeline.execute(raise_on_error=False)  # a Redis that refuses CLIENT: the slices end the waits
        except RedisError:
            pass
        for worker in list(self.workers.values()):
            if worker.get_state() == WorkerStatus.BUSY:
                logger.warning("worker.stop_timeout worker=%s: its job is re-run by another worker", worker.name)


def longest_job_seconds(config) -> int:
    """Return the longest time limit of any job a slot runs (tasks, mail, the minute tick)."""
    return max(int(config["WEBHOOK_TIMEOUT"]) + 40, int(config["MAIL_TIMEOUT"] * 4) + 5, TICK_SECONDS)


def _describe(plan: list[str]) -> str:
    return ", ".join(f"{plan.count(queue)} on {queue}" for queue in dict.fromkeys(plan))
