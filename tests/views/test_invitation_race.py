"""Accepting one invitation link many times at once: one request joins, the others get 410, nothing is half-written.

The requests run in threads against the app at the same moment. On PostgreSQL (``DATABASE_URL``) they really
overlap in the database, where the race showed (one 303 and five 500s before the link was claimed first).
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from tests.conftest import Session
from tests.mail import link_in_last_mail
from webapp.core.extensions import db
from webapp.models import AuditLogEntry, Invitation, Membership, User

RACERS = 6


def race(sessions: list[Session], path: str, form: dict) -> list[tuple[int, str]]:
    """POST ``form`` to ``path`` from every session at once; return each answer's status and text."""
    start = threading.Barrier(len(sessions))
    answers: list[tuple[int, str] | None] = [None] * len(sessions)

    def send(number: int, session: Session) -> None:
        start.wait(timeout=30)
        try:
            response = session.post(path, form)
        except Exception as exc:  # the test app re-raises what a server answers with 500: report it as such
            answers[number] = (500, repr(exc))
        else:
            answers[number] = (response.status_code, response.get_data(as_text=True))

    threads = [threading.Thread(target=send, args=(number, session)) for number, session in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "a request did not finish"
    return answers


def invitation_link(owner, smtp, run_worker, email: str) -> str:
    assert owner.post("/orgs/acme/members/invite", {"email": email, "role": "manager"}).status_code == 303
    run_worker()
    return link_in_last_mail(smtp, email, "accept-invite")


def counts(app, email: str) -> dict[str, int]:
    with app.app_context():
        return {
            "accounts": db.session.scalar(select(func.count()).select_from(User).where(User.email == email)),
            "memberships": db.session.scalar(select(func.count()).select_from(Membership).join(User)
                                             .where(User.email == email)),
            "joins": db.session.scalar(select(func.count()).select_from(AuditLogEntry)
                                       .where(AuditLogEntry.event == "member.join")),
            "accepted": db.session.scalar(select(func.count()).select_from(Invitation)
                                          .where(Invitation.accepted_at.is_not(None))),
        }


def test_six_new_accounts_accepting_one_link_at_once_make_one_member_and_five_410s(app, owner, smtp, run_worker):
    link = invitation_link(owner, smtp, run_worker, "new@example.com")
    racers = [Session(app.test_client()) for _ in range(RACERS)]
    for racer in racers:
        racer.csrf_token()
    answers = race(racers, link, {"name": "Nina New", "password": "long-enough-1", "confirmation": "long-enough-1"})

    assert sorted(status for status, _ in answers) == [303] + [410] * (RACERS - 1)
    for status, text in answers:
        if status == 410:
            assert "This invitation cannot be used" in text and "already been used" in text
    assert counts(app, "new@example.com") == {"accounts": 1, "memberships": 1, "joins": 1, "accepted": 1}
    winner = racers[[status for status, _ in answers].index(303)]
    assert "Welcome to Acme: you are a manager." in winner.get("/orgs/acme/apps").get_data(as_text=True)
    assert Session(app.test_client()).login("new@example.com", "long-enough-1").status_code == 302


def test_a_person_pressing_join_several_times_at_once_joins_once(app, owner, make_user, smtp, run_worker):
    make_user("ann@example.com", "other", "owner")
    link = invitation_link(owner, smtp, run_worker, "ann@example.com")
    ann = Session(app.test_client())
    assert ann.login("ann@example.com").status_code == 302
    tabs = []
    for _ in range(4):  # four tabs of one browser: the same session cookie
        tab = Session(app.test_client())
        for cookie in ann.client._cookies.values():
            tab.client.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
        tab._token = ann.csrf_token()
        tabs.append(tab)
    answers = race(tabs, link, {})

    assert sorted(status for status, _ in answers) == [303] + [410] * 3
    assert counts(app, "ann@example.com") == {"accounts": 1, "memberships": 2, "joins": 1, "accepted": 1}
    assert ann.get("/orgs/acme/apps").status_code == 200
