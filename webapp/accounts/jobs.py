"""Account work a request hands to a worker, so that the request does the same for every email.

Whether an email has an account must not show in how a failed login or a request for a reset email is
answered: not in the page, not in its time, not in its queries. So the request queues one of these jobs
with the email (the same outbox row, commit and Redis round trip whoever it names) and answers; the job
looks the person up in a worker. Jobs run on the mail queue: its slots are short jobs, apart from deliveries.
"""

from __future__ import annotations

from datetime import datetime

from ..core import keys
from ..core.audit import record_login
from ..core.extensions import db
from ..core.outbox import enqueue_after_commit
from ..dispatch.queues import task_spec
from ..models import utcnow
from .passwords import send_reset_link

RECORD_FAILED_LOGIN_JOB = "webapp.accounts.jobs.record_failed_login"
SEND_RESET_EMAIL_JOB = "webapp.accounts.jobs.send_reset_email"


def queue_failed_login(email: str, address: str, reason: str) -> str:
    """Queue the audit entries of a failed login (none for an unknown email, decided by the job); commit."""
    job_id = enqueue_after_commit(task_spec(RECORD_FAILED_LOGIN_JOB, (email, address, reason, utcnow().isoformat()),
                                            queue=keys.MAIL_QUEUE))
    db.session.commit()
    return job_id


def queue_reset_email(email: str) -> str:
    """Queue the reset email for ``email`` (sent only if it has an account, decided by the job); commit."""
    job_id = enqueue_after_commit(task_spec(SEND_RESET_EMAIL_JOB, (email,), queue=keys.MAIL_QUEUE))
    db.session.commit()
    return job_id


def record_failed_login(email: str, address: str, reason: str, at: str) -> None:
    record_login(email, address, failure=reason, at=datetime.fromisoformat(at))


def send_reset_email(email: str) -> None:
    send_reset_link(email)
