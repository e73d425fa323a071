"""The members API: list, invite, read, change a role, remove a member or revoke an invitation."""

from sqlalchemy import select

from tests.conftest import Session
from tests.mail import link_in_last_mail
from webapp.core.extensions import db
from webapp.models import AuditLogEntry, find_user_by_email

MEMBERS = "/api/0/organizations/acme/members/"


def member_id(app, email):
    with app.app_context():
        user = find_user_by_email(email)
        return str(next(m.id for m in user.memberships if m.organization.slug == "acme"))


def audit_events(app):
    """The members' events of the audit log (logins and the API token are recorded too)."""
    with app.app_context():
        return [entry.event for entry in db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id))
                if entry.event.startswith("member.")]


def test_list_shows_members_owners_first_then_pending_invitations(api):
    assert api("POST", MEMBERS, json={"email": "new@example.com", "orgRole": "manager"}).status_code == 201
    response = api("GET", MEMBERS)
    assert response.status_code == 200 and 'rel="next"; results="false"' in response.headers["Link"]
    rows = response.json
    assert [(row["email"], row["role"], row["pending"]) for row in rows] == [
        ("owner@example.com", "owner", False), ("manager@example.com", "manager", False),
        ("member@example.com", "member", False), ("new@example.com", "manager", True)]
    owner = rows[0]
    assert owner["roleName"] == "Owner" and owner["orgRole"] == "owner" and owner["expired"] is False
    assert owner["user"]["email"] == "owner@example.com" and owner["inviteStatus"] == "approved"
    assert owner["dateCreated"].endswith("Z")
    pending = rows[-1]
    assert pending["id"].startswith("invite-") and pending["user"] is None and pending["expired"] is False
    assert pending["inviterName"] == "owner"


def test_managers_read_members_cannot_write_and_members_cannot_read(api):
    assert api("GET", MEMBERS, who="manager").status_code == 200
    assert api("GET", MEMBERS, who="member").status_code == 403
    assert api("GET", MEMBERS, who="eve").status_code == 404
    for who in ("manager", "member"):
        response = api("POST", MEMBERS, who=who, json={"email": "x@example.com", "role": "owner"})
        assert response.status_code == 403 and "owners only" in response.json["detail"]
    assert api("GET", MEMBERS, who=None).status_code == 401


def test_invite_emails_a_link_that_makes_a_member(app, api, smtp, run_worker):
    response = api("POST", MEMBERS, json={"email": "New@Example.com", "role": "member"})
    assert response.status_code == 201
    assert response.json["email"] == "new@example.com" and response.json["pending"] is True
    run_worker()
    link = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    newcomer = Session(app.test_client())
    newcomer.post(link, {"name": "Nina", "password": "long-enough-1", "confirmation": "long-enough-1"})
    rows = api("GET", MEMBERS).json
    assert [row["name"] for row in rows if row["email"] == "new@example.com"] == ["Nina"]
    assert not any(row["pending"] for row in rows)
    assert audit_events(app) == ["member.invite", "member.join"]


def test_bad_invitations_are_400_and_change_nothing(app, api):
    for body, detail in [({"role": "member"}, "email: this field is required."),
                         ({"email": 5}, "email: expected a string."),
                         ({"email": "nope", "role": "member"}, "Enter an email address"),
                         ({"email": "a@example.com", "role": "god"}, "Choose a role"),
                         ({"email": "member@example.com"}, "member@example.com is already a member of Acme.")]:
        response = api("POST", MEMBERS, json=body)
        assert response.status_code == 400 and detail in response.json["detail"], response.json
    assert api("POST", MEMBERS, json=["x"]).status_code == 400
    assert len(api("GET", MEMBERS).json) == 3 and audit_events(app) == []


def test_get_put_and_delete_one_member(app, api):
    target = member_id(app, "member@example.com")
    assert api("GET", f"{MEMBERS}{target}/").json["email"] == "member@example.com"
    response = api("PUT", f"{MEMBERS}{target}/", json={"orgRole": "manager"})
    assert response.status_code == 200 and response.json["role"] == "manager"
    assert api("PUT", f"{MEMBERS}{target}/", json={"role": "chief"}).status_code == 400
    assert api("PUT", f"{MEMBERS}{target}/", json={}).status_code == 400
    assert api("PUT", f"{MEMBERS}{target}/", who="manager", json={"role": "owner"}).status_code == 403

    assert api("DELETE", f"{MEMBERS}{target}/").status_code == 204
    assert api("GET", f"{MEMBERS}{target}/").status_code == 404
    assert api("GET", MEMBERS, who="member").status_code == 404  # no longer in the organisation
    assert audit_events(app) == ["member.edit", "member.remove"]


def test_the_only_owner_cannot_be_demoted_or_removed(app, api):
    me = member_id(app, "owner@example.com")
    response = api("PUT", f"{MEMBERS}{me}/", json={"orgRole": "member"})
    assert response.status_code == 403 and "only owner" in response.json["detail"]
    assert api("DELETE", f"{MEMBERS}{me}/").status_code == 403
    assert api("GET", f"{MEMBERS}{me}/").json["role"] == "owner"
    assert audit_events(app) == []


def test_delete_revokes_a_pending_invitation_and_its_link(app, api, smtp, run_worker):
    invitation = api("POST", MEMBERS, json={"email": "new@example.com"}).json
    assert invitation["role"] == "member"
    assert api("GET", f"{MEMBERS}{invitation['id']}/").json["email"] == "new@example.com"
    response = api("PUT", f"{MEMBERS}{invitation['id']}/", json={"orgRole": "owner"})
    assert response.status_code == 400 and "invite the email again" in response.json["detail"]
    assert api("DELETE", f"{MEMBERS}{invitation['id']}/").status_code == 204
    assert api("GET", f"{MEMBERS}{invitation['id']}/").status_code == 404
    run_worker()
    link = link_in_last_mail(smtp, "new@example.com", "accept-invite")
    assert Session(app.test_client()).get(link).status_code == 410
    assert audit_events(app) == ["member.invite", "member.invite-revoke"]


def test_unknown_and_foreign_member_ids_are_404(app, api):
    with app.app_context():  # eve's membership is in "evil", not acme
        foreign = str(find_user_by_email("eve@example.com").memberships[0].id)
    for member in (foreign, "999999", "invite-999", "invite-x", "12345678901234567890", "abc"):
        assert api("GET", f"{MEMBERS}{member}/").status_code == 404, member
        assert api("DELETE", f"{MEMBERS}{member}/").status_code == 404, member
