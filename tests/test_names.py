"""Names people type never carry control characters: they reach email subjects, where a line break is a header."""

import pytest
from sqlalchemy import func, select

from webapp.core.extensions import db
from webapp.dispatch.notifications import notify_disable
from webapp.models import Organization, Project, SentryApp, User

# A line break in each of its forms, NUL, a C1 control character, a tab, DEL, and Unicode's line separator.
CONTROL = ["\r\n", "\n", "\r", "\x00", "\x85", "\t", "\x7f", "\u2028"]


def refused_with_a_message(response, character: str) -> bool:
    """A 400 saying why: next to the field (the form's own check), or, for what no form can show back (NUL,
    DEL), the request-edge check's page naming the field."""
    text = response.get_data(as_text=True)
    if character in ("\x00", "\x7f"):
        return response.status_code == 400 and "is not allowed here. Nothing was saved." in text
    return response.status_code == 400 and "must not contain line breaks, tabs or other control characters" in text


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("character", CONTROL)
def test_an_app_name_with_a_control_character_is_refused_in_the_dashboard(app, owner, character):
    response = owner.post("/orgs/acme/apps/new", {"name": f"Pager{character}Bcc: eve@evil.example",
                                                  "webhook_url": "https://93.184.216.34/hook", "issue": "y"})
    assert refused_with_a_message(response, character)
    assert count(app, SentryApp) == 0


@pytest.mark.parametrize("character", ["\r\n", "\x00", "\x9b"])
def test_project_and_organisation_names_with_control_characters_are_refused(app, owner, character):
    response = owner.post("/orgs/acme/projects", {"name": f"Web{character}app"})
    assert refused_with_a_message(response, character)
    assert count(app, Project) == 0
    response = owner.post("/orgs/acme/settings", {"name": f"Acme{character}Bcc: x", "slug": "acme"})
    assert refused_with_a_message(response, character)
    with app.app_context():
        assert db.session.scalar(select(Organization.name)) == "Acme"


def test_people_with_control_characters_in_their_name_or_email_are_refused(app, runner):
    result = runner.invoke(args=["create-user", "--email", "ann@example.com", "--password", "s3cret-pass",
                                 "--org", "acme", "--name", "Ann\r\nBcc: eve@evil.example"])
    assert result.exit_code != 0 and "must not contain line breaks" in result.output
    result = runner.invoke(args=["create-user", "--email", "ann\x00@example.com", "--password", "s3cret-pass",
                                 "--org", "acme"])
    assert result.exit_code != 0 and "is not an email address" in result.output
    assert count(app, User) == 0


def test_a_name_saved_before_the_rule_still_gets_its_email_out_on_one_line(app, pager, run_worker, smtp):
    with app.app_context():
        sentry_app = db.session.get(SentryApp, pager)
        sentry_app.name = "Pager\r\nBcc: eve@evil.example"
        db.session.commit()
        notify_disable(sentry_app, "Every request failed.")
        db.session.commit()
    run_worker()
    [mail] = smtp.messages
    assert mail["Subject"] == "Action required: Fix your Pager Bcc: eve@evil.example integration"
    assert mail["Bcc"] is None
    assert sorted(smtp.envelopes[0][1]) == ["manager@example.com", "owner@example.com"]
