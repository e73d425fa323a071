"""The webhook event types Hookline sends (``resource.action``), in the order the log filter lists them."""

EVENT_TYPES = (
    "event_alert.triggered",
    "metric_alert.critical",
    "metric_alert.warning",
    "metric_alert.resolved",
    "issue.created",
    "issue.resolved",
    "issue.ignored",
    "issue.unresolved",
    "issue.assigned",
    "error.created",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "installation.created",
    "installation.deleted",
)


def resource_of(event_type: str) -> str:
    """Return the ``Sentry-Hook-Resource`` of an event type: the part before the dot."""
    return event_type.split(".", 1)[0]
