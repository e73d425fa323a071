"""RQ queues and the worker class that runs Hookline's jobs inside the Flask app context."""

from __future__ import annotations

from flask import Flask
from rq import Queue, SimpleWorker, Worker

from .. import keys
from ..redis_store import get_redis


def get_queue(name: str = keys.WEBHOOK_QUEUE) -> Queue:
    return Queue(name, connection=get_redis())


class AppContextMixin:
    """Run every job in a fresh app context, so each job gets its own database session."""

    flask_app: Flask

    def perform_job(self, job, queue):
        with self.flask_app.app_context():
            return super().perform_job(job, queue)


class HooklineWorker(AppContextMixin, Worker):
    """Forks a work horse per job: isolation at the cost of speed."""


class HooklineSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: several times faster than forking (see the README)."""


def make_worker(app: Flask, queue_names=keys.ALL_QUEUES, *, fork: bool = False, name: str | None = None) -> Worker:
    """Return a worker bound to ``app`` that listens on ``queue_names`` in order."""
    worker_class = HooklineWorker if fork else HooklineSimpleWorker
    connection = app.extensions["redis"]
    queues = [Queue(queue_name, connection=connection) for queue_name in queue_names]
    worker = worker_class(queues, connection=connection, name=name)
    worker.flask_app = app
    return worker
