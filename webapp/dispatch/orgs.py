"""Fair across organisations: at most WEBHOOK_ORG_CONCURRENCY attempts of one organisation in flight.

Each app already has a cap on its attempts in flight (RQ's rate limit, ``queues.app_caps``). That bounds one
app, not an organisation with many: eight apps whose receivers are slow take eight times the cap. The gate
bounds the organisation, across every worker process:

- A slot that takes a delivery (or a fan-out runner) first asks the gate (``enter``). There is room below the
  cap; above it only while more than an eighth of a cap's worth (at least one) of all live processes' slots
  are free, so an organisation alone still uses most slots but never the last ones. With room, the job gets a
  *token*: its entry in the organisation's in-flight set, with an expiry (the job's time limit and a margin),
  so a token of a killed worker frees itself. Without room, the job is *parked*: it leaves RQ's intermediate
  list for the organisation's parked set, still marked queued, and the slot takes its next job at once.
- When an attempt ends (``leave``), its token is dropped and parked jobs are given the free places, each
  pushed to the front of its queue with a token already held. The next job given a place is the one whose
  app has the fewest attempts in flight (the oldest among equals): a healthy app of an organisation whose
  other receivers hang is not queued behind them.
- The housekeeper gives free places every second too (``promote_parked``): tokens that expired (a killed
  worker) free places no ``leave`` will report. A parked job stays in its app's rate-limit slot, so the app's
  own cap keeps counting it.

Keys: see ``keys.org_inflight``. Nothing is lost on a fault: a parked job is a queued RQ job whose place is
the parked set; the orphan sweep leaves it there while it is parked and requeues it if the set lost it.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from flask import Flask
from rq.job import Job
from rq.queue import Queue
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..core import keys
from ..core.extensions import db
from ..models import SentryApp

logger = logging.getLogger(__name__)

TOKEN_MARGIN = 15  # seconds a token outlives its job's time limit (as RQ's own heartbeat margin)
FAIREST_AMONG = 64  # parked jobs looked at when choosing the next one (the oldest first)
RUNNER_FUNC = "webapp.dispatch.fanout.run_fanout"  # fanout.RUNNER_JOB (fanout imports this module's importers)
APP_KEY_PREFIX = keys.app_rate_limit(0)[:-1]  # "hookline-app-": the app's rate-limit key names the app

# A place for one more attempt of the organisation: below its cap (ARGV[1]), or, above it, only while more than
# an eighth of a cap's worth (at least one) of the first-attempt slots of all live worker processes (KEYS[5]: members
# "<process>|<slots>" expiring at their score) are free: the gate is work-conserving (an organisation alone
# uses most of the slots), but some always stay free for the others. Tokens of killed workers (expired) are
# dropped first.
ROOM = """
local function room()
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
        return true
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[2])
    local slots = 0
    for _, member in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
        slots = slots + (tonumber(string.match(member, '|(%d+)$')) or 0)
    end
    return slots - redis.call('ZCARD', KEYS[4]) > math.max(1, math.floor(tonumber(ARGV[1]) / 8))
end
local function take(member)
    redis.call('ZADD', KEYS[1], ARGV[3], member)
    redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4] .. ':' .. member)
end
"""

# Give free places of the organisation (in-flight set KEYS[1], parked set KEYS[2]) to parked jobs: each the one
# among the oldest FAIREST_AMONG whose app has the fewest tokens (member "<app>/<job id>"), pushed to the front
# of its queue, marked queued, holding a token that expires at ARGV[3]. A parked job whose hash is gone or is no
# longer queued (deleted, cancelled) is dropped. Once none is parked, the organisation leaves KEYS[3].
PROMOTE = ROOM + """
local function promote()
    local promoted = 0
    while redis.call('ZCARD', KEYS[2]) > 0 and room() do
        local parked = redis.call('ZRANGE', KEYS[2], 0, """ + str(FAIREST_AMONG - 1) + """)
        local busy = {}
        for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            local app = string.match(member, '^([^/]*)/')
            busy[app] = (busy[app] or 0) + 1
        end
        local best, fewest = nil, nil
        for _, member in ipairs(parked) do
            local count = busy[string.match(member, '^([^/]*)/')] or 0
            if fewest == nil or count < fewest then
                best, fewest = member, count
            end
        end
        redis.call('ZREM', KEYS[2], best)
        local job_id = string.match(best, '/(.*)$')
        local job_key = ARGV[6] .. job_id
        local fields = redis.call('HMGET', job_key, 'origin', 'status')
        redis.call('HDEL', job_key, 'hookline_parked_key', 'hookline_parked_member')
        if fields[1] and fields[2] == 'queued' then
            take(best)
            redis.call('LPUSH', ARGV[5] .. fields[1], job_id)
            promoted = promoted + 1
        end
    end
    if redis.call('ZCARD', KEYS[2]) == 0 then
        redis.call('SREM', KEYS[3], ARGV[4])
    end
    return promoted
end
"""

# Let a job in ({1, the app's deliveries waiting in KEYS[9], or -1 for a job of no app}), park it (0), or send it
# back to its app's waiting line (2).
# 1. A delivery whose app has more jobs let in (RQ's allowed set KEYS[8]) than its cap now allows goes back to
#    the app's waiting set KEYS[9], with its place, marked rate_limited, as RQ's own limiter keeps it: the app
#    slowed down or hung since the job was let in (its last answer in KEYS[11] says so, or the cap in KEYS[10]).
#    RQ lets it in again when one of the app's attempts ends. A token it held is given back.
# 2. It runs if it holds a token (given when it was promoted) or there is room and none of its organisation is
#    parked before it; else it leaves the queue's intermediate list KEYS[6] for the parked set.
# KEYS: org in-flight, org parked, parked organisations, all in-flight, worker slots, intermediate list, job key,
#       app allowed, app waiting, app rate-limit config, last deliveries
# ARGV: cap, now, token expiry, organisation id, queue key prefix, job key prefix, member, job id, app id (or ''),
#       the app's full cap
ENTER_SCRIPT = PROMOTE + """
if ARGV[9] ~= '' then
    local cap = tonumber(redis.call('HGET', KEYS[10], 'concurrency') or ARGV[10]) or tonumber(ARGV[10])
    local last = redis.call('HGET', KEYS[11], ARGV[9])
    if last then
        local ok, answer = pcall(cjson.decode, last)
        if ok and type(answer) == 'table' and (answer['response_code'] == 0 or answer['slow']) then
            cap = 1
        end
    end
    local place = redis.call('ZSCORE', KEYS[8], ARGV[8])
    if place and redis.call('ZCARD', KEYS[8]) > cap then
        redis.call('ZREM', KEYS[8], ARGV[8])
        redis.call('ZADD', KEYS[9], place, ARGV[8])
        redis.call('HSET', KEYS[7], 'status', 'rate_limited')
        redis.call('LREM', KEYS[6], 1, ARGV[8])
        if redis.call('ZREM', KEYS[1], ARGV[7]) == 1 then
            redis.call('ZREM', KEYS[4], ARGV[4] .. ':' .. ARGV[7])
            promote()
        end
        return 2
    end
end
local function let_in()
    take(ARGV[7])
    if ARGV[9] ~= '' then
        return {1, redis.call('ZCARD', KEYS[9])}
    end
    return {1, -1}
end
if redis.call('ZSCORE', KEYS[1], ARGV[7]) then
    return let_in()
end
if redis.call('ZCARD', KEYS[2]) > 0 then
    promote()  -- places freed meanwhile (expired tokens, free slots) go to those parked before this one
end
if redis.call('ZCARD', KEYS[2]) == 0 and room() then
    return let_in()
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[7])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[7], 'hookline_parked_key', KEYS[2], 'hookline_parked_member', ARGV[7])
redis.call('LREM', KEYS[6], 1, ARGV[8])
return 0
"""

# Drop a token (member ARGV[7]) and give the free places to parked jobs.  KEYS, ARGV: as ENTER_SCRIPT's.
LEAVE_SCRIPT = PROMOTE + """
redis.call('ZREM', KEYS[1], ARGV[7])
redis.call('ZREM', KEYS[4], ARGV[4] .. ':' .. ARGV[7])
return promote()
"""

PROMOTE_SCRIPT = PROMOTE + "\nreturn promote()\n"


class Admission(NamedTuple):
    organization_id: int
    member: str  # "<app id>/<job id>", or "fanout/<job id>" for a runner
    limit: int  # the job's time limit, seconds
    app_id: int | None  # the app of a delivery (None for a runner)


class OrgGate:
    """The organisations' gate as one worker process uses it (see the module docstring)."""

    def __init__(self, app: Flask, connection):
        self.app = app
        self.connection = connection
        self.cap = app.config["WEBHOOK_ORG_CONCURRENCY"]
        self.app_cap = app.config["WEBHOOK_APP_CONCURRENCY"]
        self._enter = connection.register_script(ENTER_SCRIPT)
        self._leave = connection.register_script(LEAVE_SCRIPT)
        self._promote = connection.register_script(PROMOTE_SCRIPT)
        self._orgs: dict[int, tuple[int | None, float]] = {}  # app id -> (organisation id, read at)

    def admission(self, job: Job) -> Admission | None:
        """Return what the gate needs of a job it bounds (a first attempt, a fan-out runner), or None for any other.

        Retries are not gated: they have slots of their own (engine.slot_plan), each app's cap, and a schedule
        that spaces them out anyway; the gate's reserve is counted in the first attempts' slots.
        """
        if job.origin != keys.WEBHOOK_QUEUE:
            return None
        if job.rate_limit_key and job.rate_limit_key.startswith(APP_KEY_PREFIX):
            app_id = int(job.rate_limit_key[len(APP_KEY_PREFIX):])
            member, delivery = f"{app_id}/{job.id}", True
        elif job.func_name == RUNNER_FUNC and len(job.args) > 1 and job.args[1]:
            app_id = int(job.args[1][0])  # the apps of one fan-out are of one organisation
            member, delivery = f"fanout/{job.id}", False
        else:
            return None
        organization_id = self.organization_of(app_id)
        if organization_id is None:
            return None  # a deleted app: the job finds that out itself
        return Admission(organization_id, member, int(job.timeout or Queue.DEFAULT_TIMEOUT),
                         app_id if delivery else None)

    def organization_of(self, app_id: int) -> int | None:
        """Return the app's organisation, read once a minute at most (an app never changes organisation)."""
        known = self._orgs.get(app_id)
        if known is not None and time.monotonic() - known[1] < 60:
            return known[0]
        with self.app.app_context():
            try:
                organization_id = db.session.scalar(select(SentryApp.organization_id).where(SentryApp.id == app_id))
            except SQLAlchemyError:  # the database is away: the job runs ungated and meets the outage itself
                logger.warning("org_gate.no_database app=%s: the delivery runs without the gate", app_id)
                return None
            finally:
                db.session.remove()
        if len(self._orgs) > 100_000:
            self._orgs.clear()
        self._orgs[app_id] = (organization_id, time.monotonic())
        return organization_id

    def enter(self, job: Job, queue: Queue, admission: Admission) -> tuple[bool, int | None]:
        """Return whether the job may run now (it holds a token; not if it was parked or sent back to wait) and, if
        it may, how many deliveries of its app wait behind it (None when it is not a delivery): the batch it may
        lead then needs no round trip of its own to know."""
        app_id = admission.app_id
        app_keys = ([keys.app_rate_limit_allowed(app_id), keys.app_rate_limit_waiting(app_id),
                     keys.app_rate_limit_config(app_id)] if app_id is not None else ["", "", ""])
        verdict = self._enter(
            keys=self._keys(admission.organization_id) + [queue.intermediate_queue_key, job.key, *app_keys,
                                                          keys.LAST_DELIVERY],
            args=self._args(admission.organization_id, admission.limit) + [
                admission.member, job.id, "" if app_id is None else app_id, self.app_cap])
        if isinstance(verdict, list):
            waiting = int(verdict[1])
            return True, (waiting if waiting >= 0 else None)
        if verdict == 2:
            logger.info("delivery.app_slowed job=%s app=%s: back in the app's line", job.id, app_id)
        return False, None

    def leave(self, admission: Admission, pipeline=None) -> int | None:
        """Drop the job's token; return how many parked jobs were given a place (None when added to ``pipeline``:
        by the script's SHA, so the caller runs it alone if Redis answers that it does not know it)."""
        script_keys = self._keys(admission.organization_id)
        args = self._args(admission.organization_id, admission.limit) + [admission.member]
        if pipeline is not None:
            pipeline.evalsha(self._leave.sha, len(script_keys), *script_keys, *args)
            return None
        return self._leave(keys=script_keys, args=args)

    def promote_parked(self) -> int:
        """Give every organisation's free places to its parked jobs (the housekeeper's second); return how many."""
        promoted = 0
        for raw in self.connection.smembers(keys.ORG_GATES_PARKED):
            organization_id = int(raw)
            promoted += self._promote(keys=self._keys(organization_id),
                                      args=self._args(organization_id, Queue.DEFAULT_TIMEOUT))
        return promoted

    def register_slots(self, process_name: str, slots: int, ttl: float) -> None:
        """Count this process's delivery slots among the live ones for ``ttl`` seconds (the gate's reserve)."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.zremrangebyscore(keys.WORKER_SLOTS, "-inf", time.time())
        pipe.zadd(keys.WORKER_SLOTS, {f"{process_name}|{slots}": time.time() + ttl})
        pipe.execute()

    def unregister_slots(self, process_name: str, slots: int) -> None:
        self.connection.zrem(keys.WORKER_SLOTS, f"{process_name}|{slots}")

    def _keys(self, organization_id: int) -> list[str]:
        return [keys.org_inflight(organization_id), keys.org_parked(organization_id), keys.ORG_GATES_PARKED,
                keys.ORG_GATE_INFLIGHT, keys.WORKER_SLOTS]

    def _args(self, organization_id: int, limit: int) -> list:
        now = time.time()
        return [self.cap, now, now + limit + TOKEN_MARGIN, organization_id, Queue.redis_queue_namespace_prefix,
                Job.redis_job_namespace_prefix]

