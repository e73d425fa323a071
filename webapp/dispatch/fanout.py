"""Queue work for the workers: one RQ job per app and delivery, committed with the change that implies it.

A change seen by many apps (an ingested error, an issue resolved) is a *fan-out*. Run as one RQ job each, its
deliveries would each pay RQ's bookkeeping (about ten Redis round trips and 3 ms of CPU) and a fresh load of
their app, more than the delivery itself costs. So a fan-out to FANOUT_MIN_APPS apps or more is queued as:

- its deliveries, one RQ job each as always (same function, args, webhook-id, rate limit and crash retries),
  held in RQ's scheduled registry for FANOUT_HOLD_SECONDS instead of queued;
- a few *runners* (one per FANOUT_PER_RUNNER deliveries), plain jobs on the same queue. A runner takes the
  held deliveries one at a time (``CLAIM_SCRIPT``: out of the scheduled registry, into the app's rate-limit
  slot and the started registry, atomically) and runs each as RQ would, in its own slot, one after another
  over warm connections, with the apps of its share loaded in one query (the rest of its group in one more,
  once it takes a delivery of another share). When a delivery has taken
  RELEASE_AFTER_SECONDS (a slow or hung receiver), the ones the group's runners have not taken are handed at
  once to new runners, RELEASE_CHUNK each, for free slots to take: a hung receiver holds only its own runner,
  and the deliveries beside it go on over other slots at a runner's cost rather than a job's each.

Nothing depends on the runners: a delivery they do not take in time (no free slot, a runner stuck on a
receiver that hangs, a runner's worker killed) becomes due and is queued by the scheduler like any job. A
delivery a runner took and did not finish is in the started registry, and RQ's abandoned-job clean-up re-runs
it. A delivery whose app is at its cap waits in the app's rate-limit set, as any job would. Apps whose last
attempt timed out get a job of their own at once, so a receiver known to hang holds no runner.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.defaults import RQ_KEY_PREFIX
from rq.job import Job
from rq.rate_limit import RateLimitRegistry
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.utils import current_timestamp, utcformat
from rq.utils import now as rq_now
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from ..core import keys
from ..core.extensions import db
from ..core.outages import close_session
from ..core.outbox import enqueue_after_commit, enqueue_specs
from ..core.redis_store import get_redis
from ..models import SentryApp
from .batches import REGISTRY_MARGIN, SlotRuns, current_slot
from .deadlines import watch
from .events import resource_of
from .queues import app_caps, delivery_spec, task_spec
from .signing import new_message_id

logger = logging.getLogger(__name__)

RUNNER_JOB = "webapp.dispatch.fanout.run_fanout"
FANOUT_MIN_APPS = 4  # fewer apps: one job each, as before
FANOUT_PER_RUNNER = 16  # held deliveries per runner job: fewer jobs (less bookkeeping), or more slots at once
FANOUT_GROUP = 64  # held deliveries whose ids one runner carries; a bigger fan-out is split into groups
# A held delivery no runner took becomes due after this (RQ's schedule has whole seconds: 1-2 s later) and is
# queued within the housekeeper's next second.
FANOUT_HOLD_SECONDS = 2.0
# Run deliveries are marked finished (and their app slots given back) this many at a time, in one pipeline.
FINISH_EVERY = 4
CLAIM_LOOKAHEAD = 16  # candidate ids sent per claim (none of them still held: the next ones, in another call)
RUNNER_SECONDS = 5.0  # a runner takes no delivery later than this after it began (the rest become due anyway)
# When a delivery has taken this long (a slow receiver), the deliveries its runner has not taken are queued at
# once, one job each: slow receivers are then served many at a time, by every free slot.
RELEASE_AFTER_SECONDS = 0.025
# ... to new runners, this many deliveries each (one left: queued as a job of its own). A new runner is one RQ job
# for a few deliveries over warm connections, where a job each paid RQ's bookkeeping per delivery: with 20 hung
# apps among 50, the healthy 30 were delivered 12 ms apart (CPU), p99 380 ms; a hung receiver in a chunk holds
# only that chunk's runner, which lets its own rest go the same way.
RELEASE_CHUNK = 8
FANOUT_RELEASE_KEY_SECONDS = 30  # how long a group remembers that its rest was handed on

# Take the first of ARGV[9..] still held in the scheduled registry KEYS[1] (ZREM: the scheduler or another
# runner may take it first) and due by ARGV[8] (a fan-out's hold; a crash retry of a delivery, scheduled later
# under the same id, is left to its time). Its app's slot: free -> hold it (the allowed set, as RQ's own limiter does); taken
# or others waiting -> the delivery waits in the app's rate-limit set like any job, and the next is tried.
# A taken one is marked started by ARGV[3] at ARGV[2] (and enqueued then, as RQ's scheduler marks a job it
# queues) and enters its queue's started registry as <job id>:<ARGV[4]> expiring ARGV[1] + its time limit
# (the runner stops it then): as RQ's own heartbeat, a claim outlives the longest the delivery can run.
# Returns {position in ARGV[9..] (0-based), job id, job hash as a flat list}, or {position of the last one
# looked at, false} when none was taken: the caller drops every id up to the position, taken or not.
# ARGV: now + margin, started_at, worker name, execution id, job key prefix, started registry key prefix,
#       timestamp, latest due score, ids...
CLAIM_SCRIPT = """
local rl_prefix = '""" + RQ_KEY_PREFIX + """:rl:'
local rl_keys = '""" + RateLimitRegistry.rl_keys_key + """'
for i = 9, #ARGV do
    local job_id = ARGV[i]
    local due = redis.call('ZSCORE', KEYS[1], job_id)
    if due and tonumber(due) <= tonumber(ARGV[8]) and redis.call('ZREM', KEYS[1], job_id) == 1 then
        local job_key = ARGV[5] .. job_id
        local fields = redis.call('HMGET', job_key, 'origin', 'status', 'rate_limit_key', 'rate_limit_concurrency',
                                  'timeout')
        if fields[1] and fields[2] == 'scheduled' then
            local run = true
            if fields[3] and fields[4] then
                local limit = rl_prefix .. fields[3]
                redis.call('SADD', rl_keys, fields[3])
                redis.call('HSET', limit, 'concurrency', fields[4])
                if redis.call('ZCARD', limit .. ':allowed') >= tonumber(fields[4])
                        or redis.call('ZCARD', limit .. ':rate_limited') > 0 then
                    redis.call('ZADD', limit .. ':rate_limited', ARGV[7], job_id)
                    redis.call('HSET', job_key, 'status', 'rate_limited')
                    run = false
                else
                    redis.call('ZADD', limit .. ':allowed', ARGV[7], job_id)
                end
            end
            if run then
                redis.call('HSET', job_key, 'status', 'started', 'started_at', ARGV[2], 'last_heartbeat', ARGV[2],
                           'worker_name', ARGV[3], 'enqueued_at', ARGV[2])
                local expiry = tonumber(ARGV[1]) + (tonumber(fields[5]) or """ + str(Queue.DEFAULT_TIMEOUT) + """)
                redis.call('ZADD', ARGV[6] .. fields[1], expiry, job_id .. ':' .. ARGV[4])
                return {i - 9, job_id, redis.call('HGETALL', job_key)}
            end
        end
    end
end
return {#ARGV - 9, false}
"""


# Queue each of ARGV[5..] that this call takes out of the scheduled registry KEYS[1] (ZREM) and that is still
# marked scheduled, as RQ's scheduler would: a rate-limited one waits in its limit's set (registered as RQ
# registers it), and free slots are filled with that limit's waiting jobs, oldest first (RQ's acquire); any
# other goes on its queue (front if it asks), marked queued. Returns the ids taken and queued or waiting.
# ARGV: queue key prefix, job key prefix, enqueued_at, timestamp, ids...
QUEUE_HELD_SCRIPT = """
local rl_prefix = '""" + RQ_KEY_PREFIX + """:rl:'
local rl_keys = '""" + RateLimitRegistry.rl_keys_key + """'
local function push(job_id, origin, at_front)
    if at_front == '1' then
        redis.call('LPUSH', ARGV[1] .. origin, job_id)
    else
        redis.call('RPUSH', ARGV[1] .. origin, job_id)
    end
    redis.call('HSET', ARGV[2] .. job_id, 'status', 'queued', 'enqueued_at', ARGV[3])
end
local taken = {}
for i = 5, #ARGV do
    local job_id = ARGV[i]
    if redis.call('ZREM', KEYS[1], job_id) == 1 then
        local fields = redis.call('HMGET', ARGV[2] .. job_id, 'origin', 'status', 'rate_limit_key',
                                  'rate_limit_concurrency', 'enqueue_at_front')
        if fields[1] and fields[2] == 'scheduled' then
            if fields[3] and fields[4] then
                local limit = rl_prefix .. fields[3]
                redis.call('SADD', rl_keys, fields[3])
                redis.call('HSET', limit, 'concurrency', fields[4])
                redis.call('ZADD', limit .. ':rate_limited', ARGV[4], job_id)
                redis.call('HSET', ARGV[2] .. job_id, 'status', 'rate_limited')
                while redis.call('ZCARD', limit .. ':allowed') < tonumber(fields[4]) do
                    local popped = redis.call('ZPOPMIN', limit .. ':rate_limited')
                    if #popped == 0 then
                        break
                    end
                    local waiting = redis.call('HMGET', ARGV[2] .. popped[1], 'origin', 'status', 'enqueue_at_front')
                    if waiting[1] and waiting[2] == 'rate_limited' then
                        redis.call('ZADD', limit .. ':allowed', ARGV[4], popped[1])
                        push(popped[1], waiting[1], waiting[3])
                    end
                end
            else
                push(job_id, fields[1], fields[5])
            end
            table.insert(taken, job_id)
        end
    end
end
return taken
"""


def enqueue_task_after_commit(func: str, *args) -> str:
    """Add a task (``func`` is its dotted path) to the open transaction; it is queued when that commits."""
    return enqueue_after_commit(task_spec(func, args))


def subscribed_app_ids(organization_id: int, resource: str) -> list[int]:
    """Return the apps of the organisation subscribed to ``resource``, disabled ones included (they keep it)."""
    rows = db.session.execute(
        select(SentryApp.id, SentryApp.resources).where(SentryApp.organization_id == organization_id)
    )
    return [app_id for app_id, resources in rows if resource in resources.split()]


def notify_resource_change(organization_id: int, event_type: str, data: dict, actor: dict | None = None) -> list[str]:
    """Add ``event_type`` with ``data`` for every subscribed app of the organisation to the open transaction.

    The deliveries are queued when the caller commits the change, and never without it; many of them go as a
    fan-out (see the module docstring). Return the deliveries' job ids.
    """
    caps = app_caps(subscribed_app_ids(organization_id, resource_of(event_type)))
    specs = {app_id: delivery_spec((app_id, event_type, data, actor, new_message_id(app_id, event_type), 1, False,
                                    organization_id), cap=cap)
             for app_id, cap in caps.items()}
    full = current_app.config["WEBHOOK_APP_CONCURRENCY"]
    held = [app_id for app_id, cap in caps.items() if cap == full]  # not the apps whose last attempt timed out
    if len(held) < FANOUT_MIN_APPS:
        held = []
    held_ids = set(held)
    job_ids = [enqueue_after_commit(spec) for app_id, spec in specs.items() if app_id not in held_ids]
    if held:
        for start in range(0, len(held), FANOUT_GROUP):
            job_ids += _hold_for_runners([specs[app_id] for app_id in held[start:start + FANOUT_GROUP]])
    return job_ids


def _hold_for_runners(specs) -> list[str]:
    """Add held deliveries and their runners to the open transaction; return the deliveries' job ids."""
    for spec in specs:
        spec.defer_seconds = FANOUT_HOLD_SECONDS
        enqueue_after_commit(spec)
    job_ids = [spec.job_id for spec in specs]
    app_ids = [spec.args[0] for spec in specs]
    runners = math.ceil(len(specs) / FANOUT_PER_RUNNER)
    for index in range(runners):
        start = index * len(specs) // runners  # each begins at a different place: fewer ids taken already
        enqueue_after_commit(task_spec(RUNNER_JOB, (job_ids[start:] + job_ids[:start],
                                                    app_ids[start:] + app_ids[:start])))
    return job_ids


def release_held(connection, queue_name: str, job_ids: list[str]) -> list[str]:
    """Queue those of ``job_ids`` still held in the queue's scheduled registry now; return the ids queued.

    One script (``QUEUE_HELD_SCRIPT``) takes each out of the registry and queues it, so the orphan sweep never
    sees one marked scheduled in no registry, and only the side that removed it (this call, the scheduler or
    a runner) goes on with it: none runs twice.
    """
    queued = connection.register_script(QUEUE_HELD_SCRIPT)(
        keys=[ScheduledJobRegistry.key_template.format(queue_name)],
        args=[Queue.redis_queue_namespace_prefix, Job.redis_job_namespace_prefix, utcformat(rq_now()),
              current_timestamp(), *job_ids])
    return [job_id.decode() for job_id in queued]


def run_fanout(job_ids: list[str], app_ids: list[int]) -> int:
    """Run held deliveries of a fan-out in this slot, one at a time, until none is left to take; return how many."""
    slot = current_slot.get()
    runner_job = get_current_job()
    worker_name, stopping = slot if slot else ((runner_job.worker_name if runner_job else None) or "fanout", None)
    return FanOutRunner(get_redis(), worker_name, stopping).run(job_ids, app_ids)


class FanOutRunner:
    """Take a fan-out's held deliveries one at a time and run each as RQ would; see the module docstring."""

    def __init__(self, connection, worker_name: str, stopping=None):
        self.app = current_app._get_current_object()  # the release thread queues runner jobs in its context
        self.connection = connection
        self.stopping = stopping
        self.runs = SlotRuns(connection, worker_name, "fanout")
        self._claim = connection.register_script(CLAIM_SCRIPT)
        self.started = time.monotonic()
        self.lock = threading.Lock()  # the candidates: taken from by the runner and, when it is slow, released
        self.candidates: list[str] = []

    def run(self, job_ids: list[str], app_ids: list[int]) -> int:
        self.candidates = list(job_ids)
        self.app_of = dict(zip(job_ids, app_ids))
        # The runners of one fan-out group carry the same ids (each from its own start): one of them hands the
        # rest to new runners, the others' releases find it done.
        self.group = hashlib.sha1(",".join(sorted(job_ids)).encode()).hexdigest()
        # The apps of its own share (FANOUT_PER_RUNNER from where it begins) in one query, held here: each of its
        # deliveries then finds its app without SQL. A runner takes whichever delivery is still held, so once it
        # reaches one of another share's, every other app of the group comes in one more query (one query per
        # app was 1.9-2.2 ms of CPU per delivery instead of 1.4-1.6, measured in process with one runner for 50
        # apps); loading the whole group at once cost each of a fan-out's runners the whole group's load at its
        # start, before its first delivery.
        self.apps = self._load(app_ids[:FANOUT_PER_RUNNER])
        self.rest_of_group = set(app_ids[FANOUT_PER_RUNNER:])
        done: list[Job] = []
        # Each attempt's records are written as it ends, not held for the next finish as a batch's are: held, a
        # healthy app's records waited behind the next delivery of the runner, which may be a hung receiver's
        # (the hung fan-out test's lags rose from at most 0.39 s to 0.94-1.08 s).
        try:
            self._run(done)
        finally:  # also when a delivery raised: what ran is finished
            self.runs.finish(done, release_slots=True)
        self.apps = []
        if self.runs.ran:
            logger.info("delivery.fanout runner=%s ran=%s", self.runs.execution_id, self.runs.ran)
        return self.runs.ran

    def _run(self, done: list[Job]) -> None:
        """Take and run held deliveries until none is left or time is up; finish them FINISH_EVERY at a time."""
        while self._has_time():
            with self.lock:
                if not self.candidates:
                    break
                try:
                    position, job = self.claim(self.candidates[:CLAIM_LOOKAHEAD])
                except RedisError as exc:  # those not taken become due and are queued by the scheduler
                    logger.warning("delivery.fanout_interrupted runner=%s reason=%s", self.runs.execution_id,
                                   exc.__class__.__name__)
                    break
                del self.candidates[:position + 1]
            if job is None:
                continue  # none of those was still held: the next ones
            if self.app_of.get(job.id) in self.rest_of_group:
                rest, self.rest_of_group = sorted(self.rest_of_group), set()
                try:
                    self.apps += self._load(rest)
                except SQLAlchemyError:  # the delivery loads its own app, and meets the fault on its error path
                    close_session()
            # A receiver still busy after RELEASE_AFTER_SECONDS is slow: one after another would take too long,
            # so the deliveries left go at once to new runners, a few each, for free slots to take.
            token = watch.call_at(time.monotonic() + RELEASE_AFTER_SECONDS, self._release_soon)
            try:
                self.runs.perform(job, time_limit=job.timeout or Queue.DEFAULT_TIMEOUT)
            except Exception:  # noqa: BLE001 - failed as an abandoned job is (SlotRuns.perform); RQ retries it
                # Its database session may be unusable now (a dropped connection): stop here, as a batch does,
                # and let the rest go one job each at once.
                close_session()
                self.release_rest()
                break
            finally:
                watch.cancel(token)
            done.append(job)
            if len(done) >= FINISH_EVERY:
                finishing, done[:] = done[:], []  # finished once: a finish that fails is not tried again at the end
                self.runs.finish(finishing, release_slots=True)

    @staticmethod
    def _load(app_ids: list[int]) -> list[SentryApp]:
        """Load these apps (and their installations) in one query; held, they stay in the session's identity map."""
        if not app_ids:
            return []
        return list(db.session.scalars(select(SentryApp).options(selectinload(SentryApp.installation))
                                       .where(SentryApp.id.in_(app_ids))))

    def _release_soon(self) -> None:
        # Called by the deadline thread, which must not wait on Redis: a thread of its own does it.
        threading.Thread(target=self.release_rest, name="fanout-release", daemon=True).start()

    def release_rest(self) -> None:
        """Hand the deliveries this runner has not taken (those still held) to new runners, RELEASE_CHUNK each."""
        with self.lock:
            rest, self.candidates = self.candidates, []
        if not rest:
            return
        try:
            if len(rest) == 1:
                released = len(release_held(self.connection, keys.WEBHOOK_QUEUE, rest))
            elif not self.connection.set(keys.fanout_released(self.group), 1, nx=True, ex=FANOUT_RELEASE_KEY_SECONDS):
                return  # another runner of this group handed them on
            else:
                registry = ScheduledJobRegistry.key_template.format(keys.WEBHOOK_QUEUE)
                rest = [job_id for job_id, due in zip(rest, self.connection.zmscore(registry, rest)) if due is not None]
                with self.app.app_context():
                    chunks = [rest[start:start + RELEASE_CHUNK] for start in range(0, len(rest), RELEASE_CHUNK)]
                    enqueue_specs([task_spec(RUNNER_JOB, (chunk, [self.app_of[job_id] for job_id in chunk]))
                                   for chunk in chunks], connection=self.connection)
                released = len(rest)
        except RedisError as exc:  # still held: they become due and are queued by the scheduler
            logger.warning("delivery.fanout_release_failed runner=%s reason=%s", self.runs.execution_id,
                           exc.__class__.__name__)
            return
        logger.info("delivery.fanout_released runner=%s jobs=%s", self.runs.execution_id, released)

    def claim(self, candidates: list[str]) -> tuple[int, Job | None]:
        """Take the first candidate still held (see CLAIM_SCRIPT); return its position and job, or no job."""
        reply = self._claim(keys=[ScheduledJobRegistry.key_template.format(keys.WEBHOOK_QUEUE)], args=[
            time.time() + REGISTRY_MARGIN, utcformat(rq_now()), self.runs.worker_name, self.runs.execution_id,
            Job.redis_job_namespace_prefix, StartedJobRegistry.key_template.format(""), current_timestamp(),
            time.time() + FANOUT_HOLD_SECONDS + 1, *candidates,
        ])
        position = int(reply[0])
        if len(reply) < 3 or not reply[1]:
            return position, None
        return position, self.runs.restore(reply[1], reply[2])

    def _has_time(self) -> bool:
        if self.stopping is not None and self.stopping.is_set():
            return False
        return time.monotonic() - self.started < RUNNER_SECONDS
