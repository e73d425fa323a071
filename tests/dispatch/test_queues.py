"""How long Redis keeps a finished job: deliveries and tasks JOB_RESULT_TTL (a few seconds), what is read later longer."""

from rq.job import Job

from tests.lifecycle import pager  # noqa: F401 - a fixture
from webapp.apps.internal_apps import enqueue_test_alert
from webapp.core.config import SETTINGS
from webapp.core.extensions import db
from webapp.dispatch.delivery import enqueue_delivery_jobs
from webapp.dispatch.queues import mail_spec, task_spec
from webapp.dispatch.signing import new_message_id
from webapp.models import SentryApp


def test_deliveries_and_tasks_are_kept_the_shipped_few_seconds_and_test_alerts_and_mail_longer(app, pager):
    shipped = SETTINGS["JOB_RESULT_TTL"][1]
    assert shipped <= 10  # Redis holds rate x this of them: 45 MB at 1,000 deliveries/s (benchmark case 13)
    app.config["JOB_RESULT_TTL"] = shipped  # the tests' settings raise it
    connection = app.extensions["redis"]
    with app.app_context():
        [delivery] = enqueue_delivery_jobs([(pager, "issue.created", {"issue": {"id": "1"}}, None, new_message_id())])
        alert = task_spec("webapp.dispatch.tasks.send_alert_event", (1, 1, pager, []))
        test_alert = enqueue_test_alert(db.session.get(SentryApp, pager), None)
        mail = mail_spec(("Subject", ["owner@example.com"], "text", "<p>html</p>"))

    assert Job.fetch(delivery, connection=connection).result_ttl == shipped
    assert alert.result_ttl == shipped
    # The test-alert page reads its outcome for an hour; an owner's email is kept a week.
    assert Job.fetch(test_alert, connection=connection).result_ttl == 3600
    assert mail.result_ttl == 7 * 24 * 3600
