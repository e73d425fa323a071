"""Jobs written in the same transaction as the change that implies them (the outbox; see ``webapp/core/outbox.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.extensions import db
from .accounts import utcnow


class OutboxJob(db.Model):
    __tablename__ = "outbox_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The RQ job id the row becomes; chosen when the row is written, so a second flush re-queues the same job.
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    spec_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # A message's row (a delivery, or a task that sends one) stays after its job is queued, until the message is
    # delivered or given up (``outbox.drain_done``): if Redis loses the job meanwhile, ``outbox.recover_lost``
    # queues it again from here, under the same job id and webhook-id. Other jobs' rows go once they are queued.
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)  # when its job last went to Redis
