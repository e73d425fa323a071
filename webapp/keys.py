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


# Queue names (RQ stores them as rq:queue:<name>).
WEBHOOK_QUEUE = "hookline-webhooks"
MAIL_QUEUE = "hookline-mail"
ALL_QUEUES = (WEBHOOK_QUEUE, MAIL_QUEUE)
