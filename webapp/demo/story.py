"""The demo's story (``python -m webapp.demo --story``): a receiver that hangs is warned about, then disabled.

Broken detection counts UTC days: in production the owners are warned on day 3 of a failing streak, and an app
is disabled after 7 failing days or at 1000 timeouts in one day (config.py). The demo runs the same rules with
demo-only values (``DEMO_BROKEN_DETECTION``), so they act in minutes:

1. An app, "Broken receiver (demo)", sends to the demo receiver's ``/broken``, which never answers.
2. Every ``interval`` seconds (15) the story sends an error event to the demo project, as an application with
   sentry-sdk would; each is delivered to both apps, and each delivery to the broken one times out and is
   retried about 5 s later: two timeouts an event.
3. The first timeout makes today a failing day, the first of a streak: the warning email. The 24th timeout of
   the day disables the app (about 12 events, 3 minutes): the disable notice. Both land in the Outbox.
"""

from __future__ import annotations

import queue
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import requests

STORY_APP = "Broken receiver (demo)"
STORY_INTERVAL = 15.0
# Warn on the first failing day; disable at 24 timeouts in a day: two an event, one event every 15 s, so about
# three minutes. Set in the demo's environment only (unless already set there); production keeps config.py's.
DEMO_BROKEN_DETECTION = {"BROKEN_WARNING_DAY": "1", "BROKEN_TIMEOUT_THRESHOLD": "24"}
# How often the terminal's story asks the database whether the app is disabled yet.
STATUS_CHECK_SECONDS = 1.0


def seed_story_app(organization, receiver_port: int) -> int:
    """Register the story's app afresh and return its id (a story run again starts over).

    1. Delete an earlier story app with what Redis keeps about it, and its warning marks: a new app may get
       the same id, and a mark left from today would stop the new warning.
    2. Register the app at the demo receiver's ``/broken``, subscribed to errors.
    """
    from sqlalchemy import select

    from ..apps.internal_apps import delete_internal_app, register_internal_app
    from ..core import clock, keys
    from ..core.extensions import db
    from ..core.redis_store import get_redis
    from ..models import SentryApp

    earlier = db.session.scalar(
        select(SentryApp).where(SentryApp.organization_id == organization.id, SentryApp.name == STORY_APP))
    if earlier is not None:
        app_id = earlier.id
        delete_internal_app(earlier, None)
        today = clock.today()
        get_redis().delete(*(keys.broken_warning(app_id, (today - timedelta(days=days)).isoformat())
                             for days in range(keys.HEALTH_DAYS + 1)))
    url = f"http://127.0.0.1:{receiver_port}/broken"
    return register_internal_app(organization, STORY_APP, url, ["error"]).id


class Story:
    """Send the story's events on time and tell the terminal what happens, until Hookline disables the app."""

    def __init__(self, flask_app, app_id: int, dsn: str, interval: float):
        dsn_parts = urlsplit(dsn)
        self.store_url = f"{dsn_parts.scheme}://{dsn_parts.hostname}:{dsn_parts.port}/api{dsn_parts.path}/store/"
        self.public_key = dsn_parts.username
        self.flask_app = flask_app
        self.app_id = app_id
        self.interval = interval
        self.subjects: queue.SimpleQueue[str] = queue.SimpleQueue()  # from the mail catcher's thread
        self.started = self.next_event = self.next_status_check = 0.0
        self.events = 0
        self.over = False

    def begin(self, now: float) -> None:
        """Start the story's clock; the first event goes out at once."""
        self.started = self.next_event = self.next_status_check = now

    def mail_kept(self, subject: str) -> None:
        """Note an email that reached the Outbox (called by the mail catcher, in its thread)."""
        self.subjects.put(subject)

    def advance(self, now: float) -> None:
        """Print the story's emails as they arrive; send the next event when due; end once the app is disabled."""
        while not self.subjects.empty():
            subject = self.subjects.get()
            if STORY_APP in subject:
                self.say(now, f"in the Outbox: {subject}")
        if self.over:
            return
        if now >= self.next_status_check:
            self.next_status_check = now + STATUS_CHECK_SECONDS
            if self.app_is_disabled():
                self.over = True
                self.say(now, f"Hookline disabled '{STORY_APP}' after {self.events} events; the story sends no more "
                              "(its page says why; 'Re-enable' there replays what it missed).")
                return
        if now >= self.next_event:
            self.next_event = now + self.interval
            self.send_event(now)

    def send_event(self, now: float) -> None:
        """Send one error event to the demo project through the ingestion endpoint, with the project's key."""
        self.events += 1
        event = {"event_id": uuid.uuid4().hex, "level": "error", "platform": "python", "logger": "demo.story",
                 "message": "Payment provider unreachable (an event of the demo's story)",
                 "tags": {"story_event": str(self.events)}}
        try:
            response = requests.post(self.store_url, params={"sentry_key": self.public_key}, json=event, timeout=5)
        except requests.RequestException as exc:
            self.say(now, f"could not send event {self.events}: {exc}")
            return
        if response.status_code != 200:
            self.say(now, f"event {self.events} was refused with {response.status_code}: {response.text[:200]}")

    def app_is_disabled(self) -> bool:
        from ..core.extensions import db
        from ..models import SentryApp

        with self.flask_app.app_context():
            sentry_app = db.session.get(SentryApp, self.app_id)
            return sentry_app is None or not sentry_app.is_enabled

    def say(self, now: float, text: str) -> None:
        minutes, seconds = divmod(int(now - self.started), 60)
        print(f"story {minutes}:{seconds:02d}  {text}", flush=True)
