"""A failed login and a request for a reset email do the same work, and take as long, whether or not the email
has an account: neither the page, nor the queries, nor the time of the answer tells who has one."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select
from werkzeug.security import check_password_hash

from tests.conftest import Session
from webapp.core.extensions import db
from webapp.models import AuditLogEntry

# The work compared is werkzeug's real password hashing, not the cheap one the other tests use.
pytestmark = pytest.mark.usefixtures("real_password_hashing")

KNOWN, UNKNOWN = "owner@example.com", "nobody@example.com"


@contextmanager
def statements(app):
    """Collect the SQL statements (their text, without values) the app runs meanwhile."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.fixture
def hash_checks(monkeypatch):
    """The password hashes the login checks (the real check runs; this only counts them)."""
    checked: list[str] = []

    def counted(password_hash, password):
        checked.append(password_hash)
        return check_password_hash(password_hash, password)

    monkeypatch.setattr("webapp.accounts.people.check_password_hash", counted)
    return checked


def forget_attempts(app) -> None:
    """Start the throttle's counts afresh (they would refuse the many requests a timing comparison needs)."""
    app.extensions["redis"].flushdb()


def failed_login(session, email):
    response = session.post("/login", {"email": email, "password": "not-the-password"})
    assert response.status_code == 400 and "Wrong email or password." in response.get_data(as_text=True)
    return response


def reset_request(session, email):
    response = session.post("/forgot-password", {"email": email})
    assert response.status_code == 200 and f"If {email} has a Hookline account" in response.get_data(as_text=True)
    return response


def test_a_failed_login_runs_the_same_queries_and_one_hash_check_for_known_and_unknown_emails(
        app, make_user, session, hash_checks):
    make_user(KNOWN)
    session.csrf_token()
    work = {}
    for email in (KNOWN, UNKNOWN):
        hash_checks.clear()
        with statements(app) as seen:
            failed_login(session, email)
        work[email] = (list(seen), len(hash_checks))
    assert work[KNOWN] == work[UNKNOWN]
    assert work[KNOWN][1] == 1
    assert any(statement.startswith("INSERT INTO outbox_job") for statement in work[KNOWN][0])  # the queued record


def test_a_reset_request_runs_the_same_queries_for_known_and_unknown_emails(app, make_user, session):
    make_user(KNOWN)
    session.csrf_token()
    work = {}
    for email in (KNOWN, UNKNOWN):
        with statements(app) as seen:
            reset_request(session, email)
        work[email] = seen
    assert work[KNOWN] == work[UNKNOWN]
    assert not any("password_reset" in statement or 'FROM "user"' in statement for statement in work[KNOWN])


def slower_share(app, session, send, pairs: int) -> tuple[float, float, float]:
    """Time ``pairs`` interleaved requests for each email (which goes first alternates); return the share of
    pairs in which the known email's answer was the slower one, and the two medians in milliseconds."""
    known, unknown = [], []
    for number in range(pairs + 3):  # the first three pairs warm up (templates, connections)
        forget_attempts(app)
        order = (KNOWN, UNKNOWN) if number % 2 else (UNKNOWN, KNOWN)
        took = {}
        for email in order:
            started = time.perf_counter()
            send(session, email)
            took[email] = time.perf_counter() - started
        if number >= 3:
            known.append(took[KNOWN])
            unknown.append(took[UNKNOWN])
    slower = sum(k > u for k, u in zip(known, unknown)) / pairs
    return slower, sorted(known)[pairs // 2] * 1000, sorted(unknown)[pairs // 2] * 1000


def assert_indistinguishable(slower: float, known_ms: float, unknown_ms: float) -> None:
    # Before this was fixed, one reset request told the emails apart 96 % of the time (17.6 against 6.5 ms).
    # With the same work, each pair is a coin toss: 40 pairs land within 20-80 % but for 1 run in 1,000.
    assert 0.2 <= slower <= 0.8, f"known slower in {slower:.0%} of pairs ({known_ms:.1f} against {unknown_ms:.1f} ms)"
    assert abs(known_ms - unknown_ms) <= max(3.0, 0.25 * min(known_ms, unknown_ms)), (known_ms, unknown_ms)


def test_reset_requests_take_as_long_for_known_and_unknown_emails(app, make_user, session):
    make_user(KNOWN)
    assert_indistinguishable(*slower_share(app, session, reset_request, pairs=40))


def test_failed_logins_take_as_long_for_known_and_unknown_emails(app, make_user, session):
    make_user(KNOWN)
    assert_indistinguishable(*slower_share(app, session, failed_login, pairs=40))


def test_the_reset_email_and_the_failed_login_entries_come_from_the_worker_for_known_emails_only(
        app, make_user, smtp, run_worker):
    make_user(KNOWN)
    browser = Session(app.test_client())
    for email in (KNOWN, UNKNOWN):
        reset_request(browser, email)
        failed_login(browser, email)
    assert smtp.envelopes == []  # nothing is sent from the request
    run_worker()
    assert [recipients for _, recipients in smtp.envelopes] == [[KNOWN]]
    with app.app_context():
        entries = db.session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id)).all()
        assert [(entry.event, entry.target_label, entry.data["reason"]) for entry in entries] == [
            ("login.failure", KNOWN, "wrong password")]
