"""Under a backlog, a delivery job also runs its app's waiting deliveries: RQ's bookkeeping is paid per batch.

RQ spends about ten Redis round trips and 3 ms of CPU around every job it runs, more than a delivery to a fast
receiver costs itself. An app with more deliveries than its concurrency cap has the rest waiting in RQ's
rate-limit set (oldest first). The job holding one of the app's slots, once its own delivery succeeded, runs
the oldest waiting ones in turn over the same keep-alive connection before it gives the slot back:

1. ``claim`` takes up to CLAIM_CHUNK of them (no more than a fair share among the app's slots, so an app's
   last deliveries still go out in parallel) in one Lua call. Each leaves the waiting set, is marked started
   and enters its queue's started registry with an expiry, as a job run by a worker is. A worker killed from
   here on leaves them there: RQ's abandoned-job clean-up re-runs them (their crash retries), like any job.
2. Each runs as RQ would run it (``Job.perform``: same function, args and webhook-id as on its own).
3. ``finish`` marks the run ones finished in one pipeline (status, RQ's result, finished registry, expiry).
4. The batch stops at the first delivery that did not succeed (a failing app is not hammered: its retries
   are scheduled as usual), after BATCH_SECONDS, or when the worker is stopping. ``give_back`` returns the
   claimed ones it did not run to the waiting set with their old places, before the slot is released.

The app's cap still holds: a batch runs one delivery at a time inside the slot of the job that holds it.
With no backlog nothing changes: a job runs alone, as before. Objects a delivery loads (the app, an alert's
event and rule) are kept for the next ones; every REFRESH_SECONDS a kept app is checked against the process's
shared read of app versions (``app_versions.py``) and anything else is read afresh.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import time
import uuid
from base64 import b64encode
from datetime import datetime

from redis.exceptions import NoScriptError, RedisError
from rq.defaults import DEFAULT_RESULT_TTL, RQ_KEY_PREFIX
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.rate_limit import RELEASE_AND_ENQUEUE_SCRIPT, RateLimitRegistry
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.timeouts import JobTimeoutException
from rq.utils import current_timestamp, utcformat, utcparse
from rq.utils import now as rq_now
from rq.worker import Worker
from sqlalchemy import event

from ..core.extensions import db
from ..core.redis_store import WriteBatch, holding_writes
from ..core.outages import TransientFailure, close_session, is_database_outage
from .app_versions import app_versions
from .deadlines import SharedTimerDeathPenalty

logger = logging.getLogger(__name__)

# The jobs that each make one delivery to the app named by their rate limit; a batch runs only these.
BATCHED_FUNCS = frozenset({
    "webapp.dispatch.tasks.deliver_webhook",
    "webapp.dispatch.tasks.send_alert_event",
    "webapp.dispatch.tasks.send_incident_alert_notification",
})
# Outcomes after which the batch goes on: the receiver answered, or nothing was sent (the app was deleted, or
# is disabled and keeps the message). A failure stops it: the app's retries are scheduled as usual.
GO_ON = frozenset({"success", "missing", "missed"})
# Waiting jobs taken per claim at most: a Lua call and a finish pipeline per chunk. 32 rather than 16: a worker at
# 32 slots spent 5-8 % less CPU per delivery (measured at 48); a chunk's successes reach the request log at its end.
CLAIM_CHUNK = 32
# No delivery of a batch starts later than this after its job began. The job's time limit is WEBHOOK_TIMEOUT + 10 s,
# so its last delivery ends 3 s before it, room for the finish and the hub's turns. Each batch stops at a random
# 60-100 % of it: batches that began together end, and their slots turn over (a job's worth of RQ bookkeeping
# each), at different moments, not in one burst that stalls every delivery. 7 s rather than 5: at 256 slots
# (64 apps, a receiver answering in 100 ms) a process turned over 64 jobs a second, and made 16 % more
# deliveries a second on 18 % less CPU each with the longer batches (alternate runs of 16,000 deliveries).
BATCH_SECONDS = 7.0
BATCH_MARGIN = 3.0  # seconds between a batch's last delivery's deadline and its job's time limit, at least


def batch_seconds(job_timeout: int | float | None, webhook_timeout: float) -> float:
    """How long after its job began a batch may start a delivery: BATCH_SECONDS, less if the job's time limit
    (``job_timeout``) would otherwise leave its last delivery's deadline fewer than BATCH_MARGIN seconds before it."""
    if not job_timeout or job_timeout <= 0:
        return BATCH_SECONDS
    return max(0.0, min(BATCH_SECONDS, job_timeout - webhook_timeout - BATCH_MARGIN))


# A batch reads its app (and whatever its deliveries load) afresh at its first delivery this long after the last
# read: a change made meanwhile (disabled, new URL, rotated secret) reaches the batch within about this long.
REFRESH_SECONDS = 1.0
# The worker process sets this around each job it runs: (its RQ worker's name, an Event set when stopping).
current_slot: contextvars.ContextVar[tuple[str, object] | None] = contextvars.ContextVar("hookline_slot",
                                                                                          default=None)
REGISTRY_MARGIN = 15  # seconds a claimed job's started entry outlives its worst case, as a job's heartbeat does

# Take up to ARGV[1] waiting jobs of one rate limit, oldest first, and no more than a fair share of them among
# the limit's slots (its other batches get theirs, so an app's last deliveries still go out in parallel rather
# than one after another in one slot); mark each started by ARGV[4] at ARGV[3] (and enqueued then, as RQ's
# promotion out of a rate-limit set marks a job) and
# add it to its queue's started registry as <job id>:<ARGV[5]> expiring at ARGV[2]. Entries that are no
# longer waiting (a cancelled or deleted job) are dropped, as RQ's own promotion drops them.
# Returns [job id, waiting score, job hash as a flat field/value list, ...]: no second round trip to load them.
# KEYS: rate_limited_key, rate limit config key   ARGV: count, expiry score, started_at, worker name, execution id,
#                                                       job key prefix, started registry key prefix
CLAIM_SCRIPT = """
local claimed = {}
local taken = 0
local slots = math.max(1, tonumber(redis.call('HGET', KEYS[2], 'concurrency') or '1'))
local wanted = math.min(tonumber(ARGV[1]), math.ceil(redis.call('ZCARD', KEYS[1]) / slots))
while taken < wanted do
    local popped = redis.call('ZPOPMIN', KEYS[1])
    if #popped == 0 then
        break
    end
    local job_key = ARGV[6] .. popped[1]
    local fields = redis.call('HMGET', job_key, 'origin', 'status')
    if fields[1] and fields[2] == 'rate_limited' then
        redis.call('HSET', job_key, 'status', 'started', 'started_at', ARGV[3], 'last_heartbeat', ARGV[3],
                   'worker_name', ARGV[4], 'enqueued_at', ARGV[3])
        redis.call('ZADD', ARGV[7] .. fields[1], ARGV[2], popped[1] .. ':' .. ARGV[5])
        table.insert(claimed, popped[1])
        table.insert(claimed, popped[2])
        table.insert(claimed, redis.call('HGETALL', job_key))
        taken = taken + 1
    end
end
return claimed
"""


# Mark jobs finished as RQ's worker does on success, for any number of jobs in one call. ARGV[1] is the worker's
# name, ARGV[2] the execution id, ARGV[3] a JSON list with 14 strings per job: job key, dependents key,
# dependencies key, results key, finished registry key, started registry key, job id, started_at, ended_at,
# result ttl (> 0), finished registry score, return value (RQ's serialised, base64; '' for None), execution start
# and end (timestamps). One JSON argument rather than 14 per job: redis-py spends microseconds packing each one.
# Writes what RQ's Job, Result and registries write: the job's status fields; a SUCCESSFUL result in the job's
# results stream (MAXLEN ~ 10) expiring with the ttl; the finished registry entry; the job's keys expiring
# with the ttl; the job's execution entry <job id>:<execution id> out of the started registry.
FINISH_SCRIPT = """
local jobs = cjson.decode(ARGV[3])
for _, job in ipairs(jobs) do
    local job_key, results_key, ttl = job[1], job[4], job[10]
    redis.call('HSET', job_key, 'status', 'finished', 'started_at', job[8], 'ended_at', job[9],
               'last_heartbeat', job[9], 'worker_name', ARGV[1])
    local result = {'type', '1', 'worker_name', ARGV[1]}
    if job[12] ~= '' then
        table.insert(result, 'return_value')
        table.insert(result, job[12])
    end
    for _, field in ipairs({'execution_id', ARGV[2], 'execution_started_at', job[13],
                            'execution_ended_at', job[14]}) do
        table.insert(result, field)
    end
    redis.call('XADD', results_key, 'MAXLEN', '~', '10', '*', unpack(result))
    redis.call('EXPIRE', results_key, ttl)
    redis.call('ZADD', job[5], job[11], job[7])
    redis.call('EXPIRE', job_key, ttl)
    redis.call('EXPIRE', job[2], ttl)
    redis.call('EXPIRE', job[3], ttl)
    redis.call('ZREM', job[6], job[7] .. ':' .. ARGV[2])
end
return #jobs
"""


def is_batch_leader(job: Job) -> bool:
    """Return whether this job may run its app's waiting deliveries after its own."""
    return job.func_name in BATCHED_FUNCS and job.has_rate_limit


class Batch:
    """The waiting deliveries one job runs after its own; see the module docstring."""

    def __init__(self, leader: Job, worker_name: str, started: float, *, webhook_timeout: float,
                 stopping=None):
        self.leader = leader
        self.connection = leader.connection
        self.worker_name = worker_name
        self.started = started  # time.monotonic() when the leader began
        self.stopping = stopping  # a threading.Event, or None
        self.runs = SlotRuns(self.connection, worker_name, "batch")
        registry = RateLimitRegistry(leader.rate_limit_key, self.connection)
        self.rate_limited_key, self.config_key = registry.rate_limited_key, registry.config_key
        self.expiry_seconds = BATCH_SECONDS + webhook_timeout + REGISTRY_MARGIN
        self._claim = self.connection.register_script(CLAIM_SCRIPT)
        self.loaded = LoadedObjects()
        # The first chunk's size varies: batches that began together (a backlog arriving at once) then reach
        # their chunk ends, where the worker does a burst of RQ bookkeeping, at different moments.
        self.chunk = random.randint(max(1, CLAIM_CHUNK // 4), CLAIM_CHUNK)
        self.seconds = batch_seconds(leader.timeout, webhook_timeout) * random.uniform(0.6, 1.0)

    def run(self) -> int:
        """Run waiting deliveries until one fails, time is up or none waits; return how many ran."""
        self.loaded.start()
        try:
            while self._has_time():
                claimed = self.claim()
                if not claimed or not self._run_chunk(claimed):
                    break
        except RedisError as exc:
            # Claimed jobs not finished stay started in their registry: RQ's clean-up re-runs them.
            logger.warning("delivery.batch_interrupted leader=%s reason=%s", self.leader.id, exc.__class__.__name__)
        finally:
            self.loaded.stop()
        if self.runs.ran:
            logger.info("delivery.batch leader=%s rate_limit=%s ran=%s", self.leader.id, self.leader.rate_limit_key,
                        self.runs.ran)
        return self.runs.ran

    def has_backlog(self) -> bool:
        """Say whether deliveries of the leader's app wait for a slot (one round trip; no when Redis does not answer:
        the job's own delivery then meets the fault itself)."""
        try:
            return bool(self.connection.zcard(self.rate_limited_key))
        except RedisError:
            return False

    def claim(self) -> list[tuple[Job, float]]:
        """Take the oldest waiting jobs (see CLAIM_SCRIPT); return them with their places in the waiting set."""
        started_at = utcformat(rq_now())
        reply = self._claim(keys=[self.rate_limited_key, self.config_key], args=[
            self.chunk, time.time() + self.expiry_seconds, started_at, self.worker_name, self.runs.execution_id,
            Job.redis_job_namespace_prefix, StartedJobRegistry.key_template.format(""),
        ])
        return [(self.runs.restore(raw_id, flat), float(score))
                for raw_id, score, flat in zip(reply[0::3], reply[1::3], reply[2::3])]

    def _run_chunk(self, claimed: list[tuple[Job, float]]) -> bool:
        """Run the claimed jobs in order; finish the run ones, give back the rest; return whether to go on.

        A prompt success's records (log entry, health, counters) are held back meanwhile and written in the same
        round trip as the chunk's finish, before it: one script call fewer per delivery. Anything else (a
        failure, a slow answer) writes at once, with the ones held before it.
        """
        done: list[Job] = []
        with holding_writes(self.connection) as held:
            try:
                go_on = self._run_claimed(claimed, done)
            finally:  # also when the chunk ends with an error: what ran is finished, what it held is written
                self.runs.finish(done, held=held.take_all())
        self.chunk = CLAIM_CHUNK
        return go_on

    def _run_claimed(self, claimed: list[tuple[Job, float]], done: list[Job]) -> bool:
        go_on = True
        for index, (job, _score) in enumerate(claimed):
            if go_on:  # before the time check: a reload that met a slow database counts against the batch's time
                self.loaded.refresh_if_due()
            if not (go_on and self._has_time()) or job.func_name not in BATCHED_FUNCS:
                self.give_back(claimed[index:])
                go_on = False
                break
            try:
                result = self.runs.perform(job)
            except Exception:  # noqa: BLE001 - failed as an abandoned job is (SlotRuns.perform); RQ retries it
                self.give_back(claimed[index + 1:])
                go_on = False
                break
            done.append(job)
            go_on = result in GO_ON
        return go_on

    def give_back(self, claimed: list[tuple[Job, float]]) -> None:
        """Return claimed jobs not run to the waiting set, in their old places, waiting again."""
        if not claimed:
            return
        with self.connection.pipeline() as pipeline:
            for job, score in claimed:
                pipeline.zrem(self.runs.started_key(job), self.runs.entry(job))
                pipeline.hset(job.key, "status", JobStatus.RATE_LIMITED)
                pipeline.zadd(self.rate_limited_key, {job.id: score})
            pipeline.execute()

    def _has_time(self) -> bool:
        if self.stopping is not None and self.stopping.is_set():
            return False
        return time.monotonic() - self.started < self.seconds


class SlotRuns:
    """Jobs a slot took out of RQ's waiting places itself and runs as RQ's worker would (batches and fan-outs).

    Each was marked started and given an entry ``<job id>:<execution_id>`` in its queue's started registry
    when it was claimed; ``finish`` ends the run ones as RQ's worker does, and a job whose run raised is left
    to RQ's abandoned-job clean-up, which re-runs it under its crash retries.
    """

    def __init__(self, connection, worker_name: str, kind: str):
        self.connection = connection
        self.worker_name = worker_name
        self.kind = kind
        self.execution_id = f"{kind}-{uuid.uuid4().hex[:12]}"
        self.ran = 0
        self._finished_registries: dict[str, FinishedJobRegistry] = {}
        self._release = connection.register_script(RELEASE_AND_ENQUEUE_SCRIPT)
        self._finish_script = connection.register_script(FINISH_SCRIPT)

    def restore(self, raw_id: bytes, flat: list) -> Job:
        """Return the job of a claim script's reply (its id and its hash as a flat field/value list).

        What ``Job.fetch`` does with the hash, except that the five dates are read with ``fromisoformat``:
        RQ's ``strptime`` took a third of a claim's CPU.
        """
        job = Job(raw_id.decode(), connection=self.connection)
        fields = dict(zip(flat[0::2], flat[1::2]))
        dates = {name: fields.pop(name.encode(), None) for name in DATE_FIELDS}
        job.restore(fields)
        for name, value in dates.items():
            setattr(job, name, _parse_date(value) if value else None)
        if job.created_at is None:
            job.created_at = rq_now()  # as Job.restore does for a hash without one
        return job

    def perform(self, job: Job, time_limit: int | None = None):
        """Run the job's function as RQ would (within ``time_limit`` seconds, if given: RQ's time limit for a job
        of its own); on an exception, fail it (see ``fail``) and raise."""
        job.started_at = rq_now()
        try:
            if time_limit:
                with SharedTimerDeathPenalty(time_limit, JobTimeoutException, job_id=job.id):
                    result = job.perform()
            else:
                result = job.perform()
        except Exception as exc:
            self.fail(job, exc)
            raise
        job.ended_at = rq_now()
        return result

    def finish(self, jobs: list[Job], release_slots: bool = False, held: WriteBatch | None = None) -> None:
        """Mark run jobs finished as RQ's worker does: status, result, finished registry, expiry, started entry gone.

        With ``release_slots`` each job also gives back the rate-limit slot it holds of its own (a fan-out's
        jobs do; a batch's run inside their leader's slot), and the oldest waiting job of that limit is queued.

        RQ's own ``_handle_success`` saves the whole job again (its pickled call too) in about ten commands;
        here the fields that changed and RQ's records (see FINISH_SCRIPT) are written by one script call for
        all the jobs, in the same round trip as the slot releases. A job whose result is not kept for a
        positive time (none of Hookline's) takes RQ's own steps.
        """
        if not jobs:
            if held is not None:
                held.client_call()
            return
        now = current_timestamp()
        finished_args: list[list[str]] = []
        releases = []
        with self.connection.pipeline(transaction=False) as pipeline:
            for job in jobs:
                job._status = JobStatus.FINISHED
                result_ttl = job.get_result_ttl(DEFAULT_RESULT_TTL)
                if result_ttl > 0:
                    finished_args.append(self._finished_fields(job, result_ttl, now))
                else:
                    self._finish_as_rq(job, result_ttl, pipeline)
                if release_slots and job.has_rate_limit:
                    # The limit's keys as RateLimitRegistry names them (making one registers four scripts).
                    limit = f"{RQ_KEY_PREFIX}:rl:{job.rate_limit_key}"
                    releases.append(([f"{limit}:allowed", f"{limit}:rate_limited"], [
                        job.rate_limit_concurrency, now, utcformat(rq_now()),
                        Queue.redis_queue_namespace_prefix, Job.redis_job_namespace_prefix, job.id]))
            # The slot's worker counts them as RQ's success path counts a job (``rq info``'s "finished"); their
            # time is in its total_working_time already, within the leader's or runner's own.
            pipeline.hincrby(Worker.redis_worker_namespace_prefix + self.worker_name, "successful_job_count", len(jobs))
            calls = []
            if held is not None:  # the attempts' records first: a job is never finished before its log entry
                calls.append((held.script(), *held.call_args()))
            if finished_args:
                calls.append((self._finish_script, [], [self.worker_name, self.execution_id,
                                                        json.dumps(finished_args)]))
            calls += [(self._release, script_keys, args) for script_keys, args in releases]
            for script, script_keys, args in calls:
                # By its SHA: a script object on a pipeline costs a SCRIPT EXISTS round trip per execute.
                pipeline.evalsha(script.sha, len(script_keys), *script_keys, *args)
            replies = pipeline.execute(raise_on_error=False)
        for (script, script_keys, args), reply in zip(calls, replies[len(replies) - len(calls):]):
            if isinstance(reply, NoScriptError):  # Redis restarted since the script was loaded: load and run it
                script(keys=script_keys, args=args)
            elif isinstance(reply, Exception):
                raise reply
        for reply in replies[:len(replies) - len(calls)]:
            if isinstance(reply, Exception):
                raise reply
        self.ran += len(jobs)

    def _finished_fields(self, job: Job, result_ttl: int, now: int) -> list[str]:
        """The FINISH_SCRIPT fields of one job (see there), as RQ's Result and registries would write them."""
        returned = job._result
        return [
            job.key, job.dependents_key, job.dependencies_key, Result.get_key(job.id),
            FinishedJobRegistry.key_template.format(job.origin), self.started_key(job), job.id,
            utcformat(job.started_at), utcformat(job.ended_at), str(result_ttl), str(now + result_ttl),
            "" if returned is None else b64encode(job.serializer.dumps(returned)).decode(),
            repr(job.started_at.timestamp()), repr(job.ended_at.timestamp()),
        ]

    def _finish_as_rq(self, job: Job, result_ttl: int, pipeline) -> None:
        """RQ's steps for a job whose result is not kept for a positive time (deleted now, or kept forever)."""
        pipeline.hset(job.key, mapping={
            "status": JobStatus.FINISHED.value, "started_at": utcformat(job.started_at),
            "ended_at": utcformat(job.ended_at), "last_heartbeat": utcformat(job.ended_at),
            "worker_name": self.worker_name,
        })
        if result_ttl != 0:
            Result.create(job, Result.Type.SUCCESSFUL, return_value=job._result, ttl=result_ttl,
                          worker_name=self.worker_name, pipeline=pipeline, execution_id=self.execution_id,
                          execution_started_at=job.started_at, execution_ended_at=job.ended_at)
            self._finished_registry(job.origin).add(job, result_ttl, pipeline)
        job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
        pipeline.zrem(self.started_key(job), self.entry(job))

    def _finished_registry(self, origin: str) -> FinishedJobRegistry:
        registry = self._finished_registries.get(origin)
        if registry is None:
            registry = self._finished_registries[origin] = FinishedJobRegistry(origin, connection=self.connection)
        return registry

    def fail(self, job: Job, exc: Exception) -> None:
        """Leave the job to RQ's abandoned-job clean-up (its retries), now rather than at its expiry."""
        reason = exc if isinstance(exc, TransientFailure) else exc.__class__.__name__
        if isinstance(exc, TransientFailure) or is_database_outage(exc):
            logger.warning("job.failed job=%s func=%s reason=%s (in a %s)", job.id, job.func_name, reason,
                           self.kind)
        else:
            logger.exception("job.failed job=%s func=%s (in a %s)", job.id, job.func_name, self.kind)
        with self.connection.pipeline(transaction=False) as pipeline:  # one round trip, as the ZADD alone was
            pipeline.zadd(self.started_key(job), {self.entry(job): 0})
            pipeline.hincrby(Worker.redis_worker_namespace_prefix + self.worker_name, "failed_job_count", 1)
            pipeline.execute()

    def started_key(self, job: Job) -> str:
        return StartedJobRegistry.key_template.format(job.origin)

    def entry(self, job: Job) -> str:
        return f"{job.id}:{self.execution_id}"


DATE_FIELDS = ("created_at", "enqueued_at", "started_at", "ended_at", "last_heartbeat")


def _parse_date(value: bytes) -> datetime:
    """Read a date as RQ writes it (``2026-11-30T23:59:59.123456Z``), aware, in UTC."""
    text = value.decode()
    try:
        return datetime.fromisoformat(text)  # Python 3.11+ reads the trailing Z as UTC
    except ValueError:
        return utcparse(text)  # any other form RQ has written


class LoadedObjects:
    """Keep what the session loads alive between a batch's deliveries, and read it afresh every REFRESH_SECONDS.

    The identity map holds objects weakly, so each job of a batch would load the same app (and event, rule)
    again; held here, the next job finds them without SQL. A change made meanwhile (disabled, new URL,
    rotated secret) reaches the batch at its first delivery REFRESH_SECONDS after the last read: kept apps
    whose version row (``app_versions.py``) is unchanged stay, and any other change, or any kept object
    without a version, makes the batch load everything afresh.
    """

    def __init__(self):
        self.session = None
        self.kept: list = []
        self.read_at = 0.0

    def start(self) -> None:
        if self.session is not None:
            return  # already keeping (the leader's own delivery, run just before its batch)
        self.session = db.session()
        event.listen(self.session, "loaded_as_persistent", self._keep)
        self.read_at = time.monotonic()

    def stop(self) -> None:
        if self.session is not None:
            event.remove(self.session, "loaded_as_persistent", self._keep)
            self.session = None
        self.kept.clear()

    def refresh_if_due(self) -> None:
        if time.monotonic() - self.read_at < REFRESH_SECONDS:
            return
        # Kept apps whose version row still matches are current as of the process's last read of those rows.
        try:
            current_as_of = app_versions(db.engine, REFRESH_SECONDS / 2).current_as_of(self.kept)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the full reload below is always correct
            logger.warning("delivery.app_versions_failed reason=%s", exc.__class__.__name__)
            current_as_of = None
        if current_as_of is not None:
            self.read_at = current_as_of
        else:
            self.stop()
            close_session()  # the next delivery loads from a fresh session (and, on PostgreSQL, a fresh snapshot)
            self.start()

    def _keep(self, _session, instance) -> None:
        self.kept.append(instance)
