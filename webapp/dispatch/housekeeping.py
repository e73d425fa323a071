"""What keeps the queues moving, run by every worker process in a thread of its own (``Housekeeper``).

Every second: promote due scheduled jobs (retries, crash retries) under a 10-second lock, end the pauses of
apps whose receivers did not answer (``end_pauses``), give parked deliveries the places the organisations' gate
has free (orgs.py), count this process's slots there, and queue the minute tick; between passes it wakes when
an app's pause ends, so the app's next delivery goes in on time. Every few seconds: RQ's
registry maintenance (abandoned jobs re-run or failed, jobs stuck in an intermediate list after their worker
died, rate-limit slots leaked by dead workers), the outbox sweep, and the two passes over the messages it keeps
(rows of delivered messages deleted, messages Redis lost queued again: recovery.py). Every minute: the orphan
sweep. Each takes a short Redis lock, so with many worker processes one does it, and a killed process holds nothing for
longer than the lock's few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.rate_limit import RateLimitRegistry
from rq.registry import ScheduledJobRegistry, clean_registries
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock
from rq.utils import current_timestamp
from rq.utils import now as rq_now
from rq.worker_registration import clean_worker_registry
from sqlalchemy.exc import SQLAlchemyError

from ..core import keys
from ..core.extensions import db
from ..core.outbox import sweep_outbox
from .fanout import release_held
from .queues import make_worker, org_gate
from .recovery import drain_done, recover_lost
from .schedule import enqueue_metric_alert_tick

logger = logging.getLogger(__name__)

SCHEDULER_LOCK_SECONDS = 10
# A job in a queue's intermediate list (popped) without a started entry this long was popped by a worker that died.
STUCK_SECONDS = 15
SLOTS_TTL = 10  # a process's slots count toward the organisations' gate this long after its last second
MAINTENANCE_LOCK_SECONDS = 30  # held only while maintaining; a process killed meanwhile delays the next pass
# Take the paused apps whose pause has ended (score <= ARGV[1]), at most ARGV[2]; each is taken by one process.
# KEYS: paused apps
TAKE_ENDED_PAUSES = """
local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ended > 0 then
    redis.call('ZREM', KEYS[1], unpack(ended))
end
return ended
"""
PAUSES_PER_SECOND = 1000  # pauses ended per pass at most; the rest next second
PASS_SECONDS = 1.0  # the housekeeper's passes: due jobs, pauses, the gate, the tick, maintenance when due
PAUSE_WAKE_MIN = 0.02  # it wakes between passes for a pause that ends, at most this often


def end_pauses(connection) -> list[int]:
    """Let each app whose pause has ended (see ``keys.PAUSE_MEMBER``) have its next delivery; return their ids.

    The pause member leaves the app's allowed set through RQ's own release script, which queues the app's oldest
    waiting delivery if the app's cap has room. A process killed between the two steps leaves the member behind:
    RQ's maintenance frees it as a place held by no job (``clean_registries``).
    """
    ended = connection.register_script(TAKE_ENDED_PAUSES)(keys=[keys.PAUSED_APPS],
                                                          args=[time.time(), PAUSES_PER_SECOND])
    app_ids = [int(app_id) for app_id in ended]
    for app_id in app_ids:
        RateLimitRegistry(keys.app_rate_limit(app_id), connection).release_and_enqueue(keys.PAUSE_MEMBER)
    return app_ids


class ShortLockScheduler(RQScheduler):
    """RQ's scheduler, run in a thread of the worker process instead of a forked child.

    RQ's own takes its per-queue lock for 61 s from a child process that outlives a killed worker; this
    one refreshes a 10-second lock every second, so another process takes over within 10 s of a death.
    """

    def acquire_locks(self, auto_start: bool = False) -> set[str]:
        owned = set()
        for name in self._queue_names:
            outcome = acquire_or_refresh_lock(self.connection, self.get_locking_key(name), self.name,
                                              SCHEDULER_LOCK_SECONDS)
            if outcome in ("acquired", "refreshed"):
                owned.add(name)
        self._scheduled_job_registries = []
        self._acquired_locks = owned
        self.lock_acquisition_time = datetime.now()
        return owned

    def enqueue_scheduled_jobs(self) -> None:
        """Queue the due jobs of each owned queue, taking each out of the scheduled registry first.

        RQ's own reads the due ids, then queues them and removes them. A fan-out runner takes held deliveries
        out of the same registry; ``release_held`` queues only the ones this call removed, so a delivery due
        just as a runner takes it is never run twice.
        """
        if not self._scheduled_job_registries and self._acquired_locks:
            self.prepare_registries()
        for registry in self._scheduled_job_registries:
            due = registry.get_jobs_to_schedule(current_timestamp())
            if due:
                release_held(self.connection, registry.name, due)


# Put back a job that was left between places: marked queued but in neither its queue nor that queue's
# intermediate list (popped by a worker that died), or marked scheduled but not in its scheduled registry
# (its worker died between RQ marking it and registering it). A scheduled one becomes due now.
# KEYS: job key; ARGV: job id, queue key prefix, scheduled registry key prefix, now (unix seconds)
REQUEUE_ORPHAN_SCRIPT = """
local fields = redis.call('HMGET', KEYS[1], 'status', 'origin', 'hookline_parked_key', 'hookline_parked_member')
if not fields[2] then return 0 end
if fields[3] and fields[4] and redis.call('ZSCORE', fields[3], fields[4]) then
    return 0  -- parked by the organisations' gate (orgs.py): its place is the parked set
end
if fields[1] == 'queued' then
    local queue_key = ARGV[2] .. fields[2]
    if redis.call('LPOS', queue_key, ARGV[1]) or redis.call('LPOS', queue_key .. ':intermediate', ARGV[1]) then
        return 0
    end
    redis.call('RPUSH', queue_key, ARGV[1])
    return 1
end
if fields[1] == 'scheduled' then
    local registry_key = ARGV[3] .. fields[2]
    if redis.call('ZSCORE', registry_key, ARGV[1]) then return 0 end
    redis.call('ZADD', registry_key, ARGV[4], ARGV[1])
    return 1
end
return 0
"""


def requeue_orphaned_jobs(connection, batch: int = 1000) -> list[str]:
    """Find jobs left between places by a worker that died (see the script) and put them back; return their ids."""
    queued_ids = set()
    for name in keys.ALL_QUEUES:
        queue = Queue(name, connection=connection)
        queued_ids.update(connection.lrange(queue.key, 0, -1))
        queued_ids.update(connection.lrange(queue.intermediate_queue_key, 0, -1))
    requeue = connection.register_script(REQUEUE_ORPHAN_SCRIPT)
    prefix = Queue.redis_queue_namespace_prefix
    requeued = []
    job_keys = [key for key in connection.scan_iter(match="rq:job:*", count=batch) if key.count(b":") == 2]
    scheduled_prefix = ScheduledJobRegistry.key_template.format("")
    for start in range(0, len(job_keys), batch):
        chunk = job_keys[start:start + batch]
        pipe = connection.pipeline(transaction=False)
        for key in chunk:
            pipe.hget(key, "status")
        for key, status in zip(chunk, pipe.execute()):
            job_id = key.split(b":", 2)[2]
            suspect = (status == b"queued" and job_id not in queued_ids) or status == b"scheduled"
            if suspect and requeue(keys=[key], args=[job_id, prefix, scheduled_prefix, int(time.time())]):
                requeued.append(job_id.decode())
    if requeued:
        logger.warning("housekeeping.orphans_requeued jobs=%s ids=%s", len(requeued), ",".join(requeued[:10]))
    return requeued


class PromptIntermediateQueue(IntermediateQueue):
    """RQ's intermediate list, where a job popped by a worker that then died counts as stuck after STUCK_SECONDS.

    A worker moves a job from its queue into this list and, a few milliseconds later, into the started registry.
    RQ leaves a job seen here without a started entry for a minute before it fails it through its retries;
    Hookline's workers are threads of long-lived processes, so STUCK_SECONDS of it already means a dead one.
    """

    def should_be_cleaned_up(self, job_id: str) -> bool:
        first_seen = self.get_first_seen(job_id)
        return first_seen is not None and rq_now() - first_seen > timedelta(seconds=STUCK_SECONDS)


class Housekeeper:
    """One worker process's housekeeping loop (see the module docstring)."""

    def __init__(self, app: Flask, name: str, stopping: threading.Event, maintenance_every: float = 5.0,
                 orphans_every: float = 60.0, slots: int = 0):
        self.app = app
        self.connection = app.extensions["redis"]
        self.stopping = stopping
        self.scheduler = ShortLockScheduler(keys.ALL_QUEUES, connection=self.connection, name=f"{name}.scheduler")
        # Never registered or run: RQ's intermediate-list cleanup takes a worker to fail jobs through. Its short
        # TTL keeps the socket timeout RQ sets on the shared pool short (RQ sets it to TTL - 15 + 10 s).
        self.maintenance_worker = make_worker(app, keys.ALL_QUEUES, name=f"{name}.maintenance", worker_ttl=30,
                                              prepare_for_work=False)
        self.name = name
        self.gate = org_gate(app)
        self.slots = slots
        self.maintenance_every = maintenance_every
        self.orphans_every = orphans_every
        self._last_maintenance = 0.0
        self._last_orphans = time.monotonic()
        self._failing = False

    def run(self) -> None:
        next_pass = 0.0
        while not self.stopping.is_set():
            if time.monotonic() >= next_pass:
                self.run_once()
                next_pass = time.monotonic() + PASS_SECONDS
            else:  # woken for a pause that ends before the next pass
                self._end_pauses()
            self.stopping.wait(self._wait(next_pass))

    def _wait(self, next_pass: float) -> float:
        """Seconds until the next pass, or until the first app's pause ends if sooner: an app whose receiver did not
        answer gets its next attempt WEBHOOK_UNANSWERED_PAUSE after the last one, not up to a pass later."""
        wait = max(0.0, next_pass - time.monotonic())
        try:
            first = self.connection.zrange(keys.PAUSED_APPS, 0, 0, withscores=True)
        except RedisError:
            return wait
        if first:
            wait = min(wait, max(PAUSE_WAKE_MIN, first[0][1] - time.time()))
        return wait

    def _end_pauses(self) -> None:
        try:
            end_pauses(self.connection)
        except RedisError as exc:  # the next pass tries again, and says so if Redis stays away
            logger.debug("housekeeping.end_pauses_failed reason=%s", exc.__class__.__name__)

    def run_once(self) -> None:
        """Do what is due now; a Redis or database fault is logged in one line and tried again next second."""
        try:
            with self.app.app_context():
                self.promote_due_jobs()
                end_pauses(self.connection)
                self.gate.promote_parked()
                if self.slots:
                    self.gate.register_slots(self.name, self.slots, SLOTS_TTL)
                enqueue_metric_alert_tick()
                now = time.monotonic()
                if now - self._last_maintenance >= self.maintenance_every:
                    self._last_maintenance = now
                    self.maintain()
                if now - self._last_orphans >= self.orphans_every:
                    self._last_orphans = now
                    if self.connection.set(keys.ORPHAN_SWEEP_LOCK, 1, nx=True, ex=int(self.orphans_every) - 1):
                        requeue_orphaned_jobs(self.connection)
            if self._failing:
                logger.info("housekeeping.recovered")
                self._failing = False
        except (RedisError, SQLAlchemyError, OSError) as exc:
            if not self._failing:
                logger.warning("housekeeping.paused reason=%s: %s", exc.__class__.__name__, str(exc).splitlines()[0][:200])
            self._failing = True
            with self.app.app_context():
                db.session.remove()
        except Exception:  # noqa: BLE001 - a bug must not stop retries, recovery and the tick for good
            logger.exception("housekeeping.failed: tried again in a second")

    def promote_due_jobs(self) -> None:
        """Move scheduled jobs whose time has come to their queues (RQ's scheduler, under a short lock)."""
        if self.scheduler.acquire_locks():
            self.scheduler.enqueue_scheduled_jobs()

    def maintain(self) -> None:
        """RQ's registry maintenance for every queue, then the outbox's passes; one process at a time."""
        if acquire_or_refresh_lock(self.connection, keys.MAINTENANCE_LOCK, self.name, MAINTENANCE_LOCK_SECONDS) == "taken":
            return
        try:
            for name in keys.ALL_QUEUES:
                queue = Queue(name, connection=self.connection)
                clean_registries(queue)  # abandoned jobs: re-run (their Retry) or failed; leaked rate-limit slots
                clean_worker_registry(queue)
                PromptIntermediateQueue(queue.key, self.connection).cleanup(self.maintenance_worker, queue)
            sweep_outbox()
            drain_done(self.connection)
            recover_lost(self.connection)
        finally:
            release_lock(self.connection, keys.MAINTENANCE_LOCK, self.name)
