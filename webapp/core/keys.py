"""Every Redis key Hookline writes, built in one place (RQ's own keys are RQ's business)."""

# Request log ring buffer (SPEC section 6). A list of JSON entries, newest first, trimmed to
# REQUEST_LOG_SIZE and expiring REQUEST_LOG_TTL after the last write.
#   hookline:webhook-requests:<app id>:<event type>          every attempt
#   hookline:webhook-requests:<app id>:<event type>:errors   attempts with code 0 or >= 300
REQUEST_LOG_SIZE = 100
REQUEST_LOG_TTL = 30 * 24 * 3600


def request_log(app_id: int, event_type: str) -> str:
    return f"hookline:webhook-requests:{app_id}:{event_type}"


def request_log_errors(app_id: int, event_type: str) -> str:
    return f"hookline:webhook-requests:{app_id}:{event_type}:errors"


# What the inspector shows and a resend sends: one JSON record per attempt (headers, the whole body, the
# response), written with its entry and trimmed the same way. A success's record is in the first list, an
# error's in the second, so each is kept once and exactly as long as a list above still shows its row (a
# success among the newest 100 attempts is among the newest 100 successes; an error's row lives longest in
# the errors list). Same size and expiry as the log.
#   hookline:webhook-requests:<app id>:<event type>:details          successes
#   hookline:webhook-requests:<app id>:<event type>:errors:details   errors
def request_details(app_id: int, event_type: str) -> str:
    return f"hookline:webhook-requests:{app_id}:{event_type}:details"


def request_details_errors(app_id: int, event_type: str) -> str:
    return f"hookline:webhook-requests:{app_id}:{event_type}:errors:details"


# Daily health (IntegrationRequestBuffer, SPEC section 7): a hash per app x organisation x UTC day with
# success_count, error_count, timeout_count, fatal_count; expires HEALTH_DAYS after its day's last write.
#   hookline:integration-health:<app id>:<organization id>:<YYYY-MM-DD>
HEALTH_DAYS = 30


def integration_health(app_id: int, organization_id: int, day: str) -> str:
    return f"hookline:integration-health:{app_id}:{organization_id}:{day}"


# Health history for the dashboard's charts: the same four counts per app x UTC day, written in the same
# pipeline as the hash above, but not cleared when the app is disabled or re-enabled (broken detection
# restarts, the chart remembers); expires HEALTH_DAYS after its day's last write, deleted with the app.
#   hookline:health-history:<app id>:<YYYY-MM-DD>
def health_history(app_id: int, day: str) -> str:
    return f"hookline:health-history:{app_id}:{day}"


# Newest delivery per app (for the apps list): hash field <app id> -> JSON {"date", "response_code"}.
#   hookline:last-delivery   (no expiry; a field is removed with its app)
LAST_DELIVERY = "hookline:last-delivery"

# Deliveries an app missed while disabled, kept to replay on re-enable: a list of pickled deliveries,
# newest first, trimmed to MISSED_KEEP and expiring MISSED_TTL after the last one; plus their total count.
#   hookline:missed:<app id>          hookline:missed-count:<app id>
MISSED_KEEP = 1000
MISSED_TTL = 30 * 24 * 3600


def missed_deliveries(app_id: int) -> str:
    return f"hookline:missed:{app_id}"


def missed_count(app_id: int) -> str:
    return f"hookline:missed-count:{app_id}"


# Warning email sent for the failing streak that began on <YYYY-MM-DD> (SET NX; expires with the health data).
#   hookline:broken-warning:<app id>:<streak start day>
def broken_warning(app_id: int, streak_start: str) -> str:
    return f"hookline:broken-warning:{app_id}:{streak_start}"


# Model cache (get_from_cache): JSON of a few columns of one row, deleted after a commit changes it.
#   hookline:cache:<table>:<primary key>
MODEL_CACHE_TTL = 3600


def model_cache(table: str, pk: int) -> str:
    return f"hookline:cache:{table}:{pk}"


# The client keys of a project, as ingestion checks them on every request: a JSON list of a few columns of
# each key, deleted after a commit creates, changes or deletes one of them (or the project); same TTL.
#   hookline:cache:project-keys:<project id>
def project_keys_cache(project_id: int) -> str:
    return f"hookline:cache:project-keys:{project_id}"


# Issue alert throttle: present while a rule may not fire again for an issue (SET NX EX frequency).
#   hookline:rule-fired:<rule id>:<group id>
def rule_fired(rule_id: int, group_id: int) -> str:
    return f"hookline:rule-fired:{rule_id}:{group_id}"


# Metric alert evaluation lock: one evaluator per rule at a time.
#   hookline:metric-rule-lock:<rule id>
def metric_rule_lock(rule_id: int) -> str:
    return f"hookline:metric-rule-lock:{rule_id}"


# Periodic metric-alert tick: set by the worker process that queued the tick of <unix minute>.
#   hookline:metric-alert-tick:<minute unix seconds>   (expires after 3 minutes)
def metric_alert_tick(due: int) -> str:
    return f"hookline:metric-alert-tick:{due}"


# Pending test alert of an app: the RQ job id of the test alert queued and not yet sent, so a second
# press returns it instead of queueing another (SET NX; deleted when it is sent, expires after 2 minutes).
#   hookline:test-alert-pending:<app id>
TEST_ALERT_PENDING_TTL = 120


def test_alert_pending(app_id: int) -> str:
    return f"hookline:test-alert-pending:{app_id}"


# Held (a few seconds at most) while one press of the app's test-alert button checks and queues.
#   hookline:test-alert-lock:<app id>
def test_alert_lock(app_id: int) -> str:
    return f"hookline:test-alert-lock:{app_id}"


# Per-app cap on attempts queued or in flight, across all workers: RQ's RateLimit key (RQ stores it as
# rq:rl:<key>, with the jobs let through and those waiting for a slot).
def app_rate_limit(app_id: int) -> str:
    return f"hookline-app-{app_id}"


# RQ's hash of that rate limit's settings; Hookline sets its ``concurrency`` after every attempt (the cap
# follows the app's latest answer).   rq:rl:hookline-app-<app id>
def app_rate_limit_config(app_id: int) -> str:
    return f"rq:rl:{app_rate_limit(app_id)}"


# RQ's sets of that rate limit: the app's jobs let in (queued or running), and those waiting their turn.
#   rq:rl:hookline-app-<app id>:allowed      rq:rl:hookline-app-<app id>:rate_limited
def app_rate_limit_allowed(app_id: int) -> str:
    return f"{app_rate_limit_config(app_id)}:allowed"


def app_rate_limit_waiting(app_id: int) -> str:
    return f"{app_rate_limit_config(app_id)}:rate_limited"


# An app whose latest attempt got no answer is paused (WEBHOOK_UNANSWERED_PAUSE): this member in its allowed set
# holds its one place until the pause ends, and the app is in PAUSED_APPS with the pause's end as its score; the
# housekeeper takes the member out then and lets the app's next delivery in.
#   hookline:paused-apps   (sorted set: app id -> end of its pause, Unix seconds)
PAUSE_MEMBER = "hookline-pause"
PAUSED_APPS = "hookline:paused-apps"


# The organisations' gate (dispatch/orgs.py), all sorted sets whose members expire at their score.
#   hookline:org-gate:<org id>:inflight   tokens of attempts in flight: "<app id or fanout>/<job id>"
#   hookline:org-gate:<org id>:parked     jobs waiting for a place, by when they were parked (same members)
#   hookline:org-gate:inflight            every organisation's tokens: "<org id>:<member>"
#   hookline:org-gate:parked-orgs         (a set) organisations with parked jobs, for the housekeeper's sweep
#   hookline:worker-slots                 live worker processes' delivery slots: "<process>|<slots>"
ORG_GATE_INFLIGHT = "hookline:org-gate:inflight"
ORG_GATES_PARKED = "hookline:org-gate:parked-orgs"
WORKER_SLOTS = "hookline:worker-slots"


def org_inflight(organization_id: int) -> str:
    return f"hookline:org-gate:{organization_id}:inflight"


def org_parked(organization_id: int) -> str:
    return f"hookline:org-gate:{organization_id}:parked"


# Held while a worker creates a new issue, so the other events of its first burst wait and find it rather
# than race for the next short id (eventstore._get_or_create_group); 10 s at most.
#   hookline:lock:group:<project id>:<fingerprint hash>
def group_creation_lock(project_id: int, fingerprint_hash: str) -> str:
    return f"hookline:lock:group:{project_id}:{fingerprint_hash}"


# Set (NX, 30 s) by the first runner of a fan-out group that hands the deliveries it has not taken to new
# runners (dispatch/fanout.py), so the group's other runners do not hand them on again.
#   hookline:fanout-released:<sha1 of the group's job ids>
def fanout_released(group: str) -> str:
    return f"hookline:fanout-released:{group}"


# Housekeeping locks: one worker process at a time maintains RQ's registries and sweeps the outbox (owner
# token, 30 s), and sweeps the orphaned jobs (SET NX EX, once a minute).
#   hookline:lock:maintenance   hookline:lock:orphan-sweep
MAINTENANCE_LOCK = "hookline:lock:maintenance"
# The messages delivered or given up (webhook-id -> when), written with the attempt's log entry: the outbox
# rows kept for them are deleted in batches (outbox.drain_done, which reads on from the cursor) and a message
# found here is never queued again. Members older than OUTBOX_DONE_KEEP seconds are trimmed.
#   hookline:outbox:done   hookline:outbox:done-cursor   hookline:outbox:recover-cursor (last row id checked)
OUTBOX_DONE = "hookline:outbox:done"
OUTBOX_DONE_CURSOR = "hookline:outbox:done-cursor"
OUTBOX_RECOVER_CURSOR = "hookline:outbox:recover-cursor"
OUTBOX_DONE_KEEP = 60
ORPHAN_SWEEP_LOCK = "hookline:lock:orphan-sweep"


def group_users(group_id: int) -> str:
    """A HyperLogLog of the users an issue's events came from (its ``userCount``)."""
    return f"hookline:group-users:{group_id}"


# Counters of deliveries and ingested events for /metrics (one hash; see webapp/core/metrics.py).
METRICS = "hookline:metrics"

# An accepted event's JSON, waiting for the worker that stores it. Kept as long as a failed job is, so an
# operator who requeues a failed ingest job still finds its event.
QUEUED_EVENT_TTL = 30 * 24 * 3600


def queued_event(project_id: int, event_id: str) -> str:
    return f"hookline:queued-event:{project_id}:{event_id}"


# Ingestion quota: events a project key sent in the minute starting at <unix seconds> (INCR; expires after
# 2 minutes).   hookline:ingest-quota:key:<project key id>:<minute>
def ingest_quota(key_id: int, minute: int) -> str:
    return f"hookline:ingest-quota:key:{key_id}:{minute}"


# What ingestion did with a project's events in the UTC hour starting at <unix seconds>: a hash of counts,
# fields accepted, rate_limited, refused, dropped, and each of them per key as key:<key id>:<outcome>
# (HINCRBY; expires INGEST_OUTCOMES_TTL after the hour's last write, so the last 24 hours can always be read).
#   hookline:ingest-outcomes:<project id>:<hour>
INGEST_OUTCOMES_TTL = 25 * 3600


def ingest_outcomes(project_id: int, hour: int) -> str:
    return f"hookline:ingest-outcomes:{project_id}:{hour}"


# Login attempts in the current window, per email and per client address (INCR; the window starts at the
# first attempt: the key is created with an expiry of LOGIN_WINDOW seconds that later attempts do not extend).
# A successful login deletes its email's key and takes itself back off its address's count.
#   hookline:login-attempts:email:<sha256 of the lowercased email>
#   hookline:login-attempts:address:<client address>
LOGIN_WINDOW = 15 * 60


def login_attempts_for_email(email_digest: str) -> str:
    return f"hookline:login-attempts:email:{email_digest}"


def login_attempts_for_address(address: str) -> str:
    return f"hookline:login-attempts:address:{address}"


# Password reset requests in the current window, per email and per client address (INCR; same shape as the
# login attempts above, with an expiry of RESET_WINDOW seconds set by the first request).
#   hookline:reset-requests:email:<sha256 of the lowercased email>
#   hookline:reset-requests:address:<client address>
RESET_WINDOW = 60 * 60


def reset_requests_for_email(email_digest: str) -> str:
    return f"hookline:reset-requests:email:{email_digest}"


def reset_requests_for_address(address: str) -> str:
    return f"hookline:reset-requests:address:{address}"


# Set by the first refused (throttled) login of an email while it is refused, so the audit log gets one
# "throttled" entry per refusal, not one per guess; it expires when logins are let through again.
#   hookline:login-refusal-noted:<sha256 of the lowercased email>


def login_refusal_noted(email_digest: str) -> str:
    return f"hookline:login-refusal-noted:{email_digest}"


# Queue names (RQ stores them as rq:queue:<name>). Each has slots of its own in every worker process,
# so retries never take the slots of first attempts, and mail and the minute tick never wait behind deliveries.
WEBHOOK_QUEUE = "hookline-webhooks"   # first attempts, test alerts, event post-processing
RETRY_QUEUE = "hookline-retries"      # scheduled retries of deliveries
MAIL_QUEUE = "hookline-mail"
PERIODIC_QUEUE = "hookline-periodic"  # the metric-alert tick, once a minute
ALL_QUEUES = (WEBHOOK_QUEUE, RETRY_QUEUE, MAIL_QUEUE, PERIODIC_QUEUE)
