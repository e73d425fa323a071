"""RQ queues, the job specs of Hookline's jobs, and the worker class that runs them inside the Flask app context."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import JobStatus
from rq.job_lifecycle import call_exception_handlers
from rq.rate_limit import release_slot
from rq.utils import now as rq_now
from rq.worker import WorkerStatus
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..core import keys
from ..core.extensions import db
from ..core.outages import TransientFailure, close_session, is_database_outage
from ..core.outbox import JobSpec
from ..core.redis_store import get_redis
from .batches import GO_ON, Batch, current_slot, is_batch_leader
from .deadlines import SharedTimerDeathPenalty
from .http import CONNECTIONS_PER_THREAD
from .hub import transfer_hub
from .orgs import OrgGate

logger = logging.getLogger(__name__)

DELIVER_JOB = "webapp.dispatch.tasks.deliver_webhook"
# RQ re-runs a job whose worker died mid-attempt (its abandoned-job handling) or that raised unexpectedly
# (database down); a delivery re-run sends the same webhook-id, so the receiver can de-duplicate.
CRASH_RETRY = [3, [10, 60, 300]]
# An SMTP outage is retried for about a day before the job lands in RQ's failed registry (kept 30 days).
MAIL_RETRY = [10, [30, 60, 300, 900, 1800, 3600, 3600, 7200, 14400, 28800]]


HEARTBEAT_EVERY = 5.0  # seconds between a worker's own heartbeats
# Seconds an idle slot waits for a job before it asks again. A stopping process wakes its waiting slots at once
# (engine.py); at 2 s, 256 idle slots spent 3 % of a core asking. Under the pool's socket timeout (25 s).
DEQUEUE_SLICE = 10


def get_queue(name: str = keys.WEBHOOK_QUEUE) -> Queue:
    return Queue(name, connection=get_redis())


def app_caps(app_ids) -> dict[int, int]:
    """Return each app's cap on attempts in flight: WEBHOOK_APP_CONCURRENCY, or 1 while its last attempt timed out
    or was slow (WEBHOOK_SLOW_SECONDS).

    A receiver that hangs or crawls holds a slot for seconds per attempt; one at a time is enough to find out
    when it answers promptly again. One round trip for any number of apps.
    """
    app_ids = list(dict.fromkeys(app_ids))
    if not app_ids:
        return {}
    full = current_app.config["WEBHOOK_APP_CONCURRENCY"]
    try:
        values = get_redis().hmget(keys.LAST_DELIVERY, [str(app_id) for app_id in app_ids])
    except RedisError:  # the change still commits (the outbox); its jobs take the full cap
        return {app_id: full for app_id in app_ids}
    return {app_id: 1 if value and _held_to_one(json.loads(value)) else full for app_id, value in zip(app_ids, values)}


def _held_to_one(last_delivery: dict) -> bool:
    """An app whose last attempt got no answer, or a slow one, gets one attempt in flight at a time."""
    return last_delivery.get("response_code") == 0 or bool(last_delivery.get("slow"))


def delivery_spec(args: tuple, queue: str = keys.WEBHOOK_QUEUE, cap: int | None = None) -> JobSpec:
    """Return the job of one delivery attempt: ``deliver_webhook(*args)``, capped per app (``args[0]``)."""
    app_id = args[0]
    cap = cap or app_caps([app_id])[app_id]
    return JobSpec(DELIVER_JOB, list(args), queue, timeout=job_timeout(),
                   result_ttl=current_app.config["JOB_RESULT_TTL"], retry=CRASH_RETRY,
                   rate_limit=[keys.app_rate_limit(app_id), cap], message_id=args[4] if len(args) > 4 else None)


def retry_job_id(message_id: str, attempt: int, resend: bool) -> str:
    """Return the job id of the retry that follows attempt ``attempt`` of a message (or of its resend).

    A re-run of an attempt schedules the same job; a resend's attempts have ids of their own, so they never take
    the place of the original's retries still waiting. The request log reads a retry's due time by this id.
    """
    return f"{message_id}-{'resend-' if resend else ''}attempt-{attempt + 1}"


def task_spec(func: str, args: tuple, queue: str = keys.WEBHOOK_QUEUE, timeout: int | None = None,
              app_cap: tuple[int, int] | None = None, message_id: str | None = None) -> JobSpec:
    """Return the job of a task (``func`` is its dotted path); one that delivers to an app names it and its cap,
    and the webhook-id of the message it sends."""
    return JobSpec(func, list(args), queue, timeout=timeout or job_timeout() + 30,
                   result_ttl=current_app.config["JOB_RESULT_TTL"], retry=CRASH_RETRY,
                   rate_limit=[keys.app_rate_limit(app_cap[0]), app_cap[1]] if app_cap else None,
                   message_id=message_id)


def mail_spec(args: tuple) -> JobSpec:
    config = current_app.config
    # Connect, EHLO, STARTTLS, DATA: each bounded by MAIL_TIMEOUT, so the job's own limit is a few of them.
    return JobSpec("webapp.dispatch.tasks.send_mail", list(args), keys.MAIL_QUEUE,
                   timeout=int(config["MAIL_TIMEOUT"] * 4) + 5, result_ttl=7 * 24 * 3600, retry=MAIL_RETRY)


def job_timeout() -> int:
    """Seconds a delivery job may run: the HTTP deadline plus room for its Redis and SQL work."""
    return int(current_app.config["WEBHOOK_TIMEOUT"]) + 10


class _AnyEvent:
    """Set when any of its events (None for none) is set: what a batch watches to stop early."""

    def __init__(self, *events: threading.Event | None):
        self.events = [event for event in events if event is not None]

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


class HooklineWorker(SimpleWorker):
    """An RQ worker on one queue that runs each job in a fresh app context, in the calling thread.

    Several of these run in one process (``webapp.dispatch.engine``), each in its own thread, so one
    process keeps many deliveries in flight. Each listens on exactly one queue, so RQ dequeues with
    ``BLMOVE`` into the queue's intermediate list: a job popped by a worker that dies is recovered.
    """

    flask_app: Flask
    # A thread cannot use SIGALRM; RQ's timer-based death penalty works in any thread (one timer thread in all).
    death_penalty_class = SharedTimerDeathPenalty
    # Reconnect quickly after a Redis restart (RQ's default backs off to a minute).
    max_connection_wait_time = 2
    # The engine's housekeeper runs RQ's maintenance every few seconds for the whole process.
    run_maintenance = True

    # Set by the worker process: once it is set, an idle worker stops when its wait ends (the process ends the
    # waits at once; within DEQUEUE_SLICE seconds on a Redis that refuses CLIENT UNBLOCK).
    stopping: threading.Event | None = None

    def execute_job(self, job, queue):
        # The organisations' gate (orgs.py): a delivery of an organisation without room is parked, and this
        # slot takes its next job at once; one let in gives its place back when it ends, however it ends.
        gate = org_gate(self.flask_app)
        admission = gate.admission(job)
        self._waiting_behind = None  # the job's app's deliveries waiting behind it, if the gate said
        try:
            if admission is not None:
                let_in, self._waiting_behind = gate.enter(job, queue, admission)
                if not let_in:
                    return
        except RedisError as exc:  # Redis is away: the job runs without a token and meets the fault itself
            logger.warning("org_gate.enter_failed job=%s reason=%s", job.id, exc.__class__.__name__)
            admission = None
        self._gate_admission = admission
        try:
            super().execute_job(job, queue)
        finally:
            self._leave_gate()

    def _leave_gate(self) -> None:
        """Give the running job's place at the organisations' gate back (once), if it holds one."""
        admission, self._gate_admission = getattr(self, "_gate_admission", None), None
        if admission is not None:
            try:
                org_gate(self.flask_app).leave(admission)
            except RedisError as exc:  # the token expires by itself; the housekeeper hands out its place
                logger.warning("org_gate.leave_failed member=%s reason=%s", admission.member, exc.__class__.__name__)

    def perform_job(self, job, queue, *args, **kwargs):
        with self.flask_app.app_context():
            if is_batch_leader(job):
                # RQ calls job.perform() inside the job's time limit and before it releases the job's rate-limit
                # slot: the app's waiting deliveries run there, within the slot (see batches.py).
                job.perform = functools.partial(self._perform_with_backlog, job, job.perform)
            slot = current_slot.set((self.name, self.stopping))
            try:
                performed = super().perform_job(job, queue, *args, **kwargs)
            finally:
                current_slot.reset(slot)
                close_session()
        if getattr(self, "_database_down", False):
            self._wait_for_database()
        return performed

    def _perform_with_backlog(self, job, perform):
        started = time.monotonic()
        config = self.flask_app.config
        cancel = threading.Event()
        batch = Batch(job, self.name, started, webhook_timeout=config["WEBHOOK_TIMEOUT"],
                      stopping=_AnyEvent(self.stopping, cancel))
        if not config["WEBHOOK_BATCH_HUB"]:
            result = perform()
            if result in GO_ON:
                batch.run()
            return result
        # The batch runs on the process's transfer hub (hub.py), this slot waiting for it: one thread runs every
        # slot's deliveries, so they do not contend for the GIL. The slot sleeps until the job's time limit (RQ's
        # timer, started just before ``perform``). With deliveries of its app waiting, the job's own delivery
        # runs there too (at 256 slots, slots sending their own took the GIL from the hub after each of its
        # Redis round trips); a job alone sends its own from this slot, beside the other slots', as it always
        # did: on the hub, its blocking SQL and Redis calls would wait behind every batch's.
        hub = transfer_hub(config["WORKER_CONCURRENCY"] * CONNECTIONS_PER_THREAD)
        time_limit_at = started + job.timeout if job.timeout and job.timeout > 0 else None
        waiting = getattr(self, "_waiting_behind", None)  # from the gate's answer; else a round trip to know
        if waiting > 0 if waiting is not None else batch.has_backlog():
            return hub.run(functools.partial(self._lead_apart, perform, batch), cancel, time_limit_at)
        result = perform()
        # Deliveries of its app that came meanwhile make a batch; with none (one round trip to know), the handing
        # over to the hub and the claim that would find nothing are skipped: this job's slot release queues the
        # next one to come, as for any job.
        if result in GO_ON and batch.has_backlog():
            hub.run(functools.partial(self._lead_apart, lambda: result, batch), cancel, time_limit_at)
        return result

    def _lead_apart(self, perform, batch: Batch):
        """Run the job's own delivery (``perform``, or what it returned when the slot sent it already), then (if it
        went through) its batch; in an app context (and database session) of their own, closed when they end.
        Return the job's result.

        On the hub they may outlive their slot's wait (RQ's time limit raised into the slot cancels the batch, and
        the slot closes its own session at once): sharing the slot's session, they would have it closed under them.
        """
        with self.flask_app.app_context():
            batch.loaded.start()  # what the job's own delivery loads (its app) is kept for the batch's
            try:
                result = perform()
                if result in GO_ON:
                    batch.run()
                return result
            finally:
                batch.loaded.stop()
                close_session()

    def handle_job_success(self, job, queue, started_job_registry, execution):
        # RQ's own path WATCHes the job's dependents key and reads it, two round trips a job, so that jobs that
        # depend on this one are queued. Hookline's jobs have no dependents (JobSpec has no such field) and do not
        # repeat: the same steps in one pipeline, then the rate-limit slot released, as RQ does.
        if job.repeats_left:
            return super().handle_job_success(job, queue, started_job_registry, execution)
        admission = getattr(self, "_gate_admission", None)
        with self.connection.pipeline() as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            result_ttl = job.get_result_ttl(self.default_result_ttl)
            if result_ttl != 0:
                job._handle_success(result_ttl, pipeline=pipeline, worker_name=self.name, execution_id=execution.id,
                                    execution_started_at=execution.created_at, execution_ended_at=job.ended_at)
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            job._status = JobStatus.FINISHED
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            # The organisation's place is given back in the same round trip (a round trip fewer per job).
            if admission is not None:
                org_gate(self.flask_app).leave(admission, pipeline=pipeline)
            replies = pipeline.execute(raise_on_error=False)
        if admission is not None and not isinstance(replies.pop(), Exception):
            self._gate_admission = None  # given back; else (a script Redis lost on a restart) alone, just below
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        # The organisation's place first, then the app's slot: the app's next delivery, which the slot's release
        # queues, finds the place free instead of being parked behind this job's token.
        self._leave_gate()
        release_slot(job)

    def handle_exception(self, job, *exc_info):
        # An outage is not a bug: one line, not a traceback on every attempt (RQ retries the job).
        exc = exc_info[1]
        if isinstance(exc, TransientFailure) or is_database_outage(exc):
            self.log.warning("job.failed job=%s func=%s reason=%s", job.id, job.func_name,
                             exc if isinstance(exc, TransientFailure) else exc.__class__.__name__)
            call_exception_handlers(self._exc_handlers, job, *exc_info)
            return
        super().handle_exception(job, *exc_info)

    def _finalize_failure(self, job, queue, execution, exc_info):
        # A job that failed because the database went away did nothing wrong: its retry is not used up (a
        # long outage would otherwise exhaust every job's retries), and this slot waits for the database.
        if is_database_outage(exc_info[1]):
            self._database_down = True
            if job.retries_left is not None:
                job.retries_left += 1
        return super()._finalize_failure(job, queue, execution, exc_info)

    def _wait_for_database(self) -> None:
        delay = 0.5
        while not self._stop_requested and not (self.stopping and self.stopping.is_set()):
            with self.flask_app.app_context():
                try:
                    db.session.execute(text("SELECT 1"))
                    self._database_down = False
                    return
                except SQLAlchemyError:
                    pass
                finally:
                    close_session()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        # Block in short slices, so a worker asked to stop while idle stops at once instead of after its
        # next job (RQ's loop waits for a job however long it takes).
        if timeout is None or max_idle_time is not None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self._stop_requested and not (self.stopping and self.stopping.is_set()):
            result = super().dequeue_job_and_maintain_ttl(DEQUEUE_SLICE, max_idle_time=DEQUEUE_SLICE)
            if result is not None:
                return result
        return None

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        # RQ beats up to five times per job, a round trip each; the worker key lives WORKER_TTL (30 s), so a
        # beat every few seconds is plenty. Beats queued on a pipeline cost nothing and always go through.
        if pipeline is None and self.stopping is not None and self.stopping.is_set():
            raise StopRequested()  # RQ beats between jobs and while it waits for Redis to come back: stop there
        now = time.monotonic()
        if pipeline is None and now - getattr(self, "_last_beat", 0.0) < HEARTBEAT_EVERY:
            return
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        self._last_beat = now
        # RQ's beat is three commands (last_heartbeat, the worker key's and its executions' expiry), each a round
        # trip of its own without a pipeline: 256 idle slots spent 8 % of a core beating and waiting on Redis.
        with self.connection.pipeline(transaction=False) as beat:
            super().heartbeat(timeout, beat)
            beat.execute()

    def set_state(self, state: str, pipeline=None):
        # RQ writes idle to Redis on a round trip of its own before every job. Here a state goes in any pipeline
        # RQ gives (busy in the one that starts a job), idle in the one that ends it (``cleanup_execution``), and
        # on its own only when Redis does not say it already: ``rq info`` is right, and a job costs no round trip.
        if pipeline is not None or state != getattr(self, "_written_state", None):
            super().set_state(state, pipeline)
            self._written_state = state
        self._state = state

    def cleanup_execution(self, job, pipeline, execution=None):
        # Called in the pipeline that records a job's end, however it ended: the slot is idle from then on.
        super().cleanup_execution(job, pipeline, execution)
        self.set_state(WorkerStatus.IDLE, pipeline)

    def check_for_suspension(self, burst: bool):
        # ``rq suspend`` is honoured within HEARTBEAT_EVERY seconds, not on every job (a round trip each).
        now = time.monotonic()
        if now - getattr(self, "_last_suspension_check", 0.0) >= HEARTBEAT_EVERY:
            self._last_suspension_check = now
            super().check_for_suspension(burst)

    def handle_execution_ended(self, job, queue, heartbeat_ttl: int):
        # RQ refreshes the job's heartbeat here for success callbacks, which Hookline's jobs do not have; the
        # job leaves the started registry in the very next pipeline.
        job.ended_at = rq_now()

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        # A job is stopped at its timeout, so a worker silent for 15 s beyond it is dead: its job is abandoned.
        return int(job.timeout or 60) + 15

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return self.run_maintenance and super().should_run_maintenance_tasks

    def _install_signal_handlers(self):
        if threading.current_thread() is threading.main_thread():
            super()._install_signal_handlers()


def org_gate(app: Flask) -> OrgGate:
    """Return the app's organisations' gate (one per process: it keeps the apps' organisations it has read)."""
    gate = app.extensions.get("hookline_org_gate")
    if gate is None:
        gate = app.extensions["hookline_org_gate"] = OrgGate(app, app.extensions["redis"])
    return gate


def make_worker(app: Flask, queue_names=keys.ALL_QUEUES, *, name: str | None = None, **kwargs) -> HooklineWorker:
    """Return a worker bound to ``app`` that listens on ``queue_names`` in order (tests and benchmarks)."""
    connection = app.extensions["redis"]
    queues = [Queue(queue_name, connection=connection) for queue_name in queue_names]
    worker = HooklineWorker(queues, connection=connection, name=name, **kwargs)
    worker.flask_app = app
    # No pubsub thread for RQ's commands to a worker (as the engine's slots): RQ's thread waits for messages in
    # 60 s slices, and stopping it sometimes waited a whole slice (a burst worker taking a minute to end).
    worker.subscribe = lambda: None
    return worker
