"""Every form of the dashboard, each field in turn given what an attacker would type: never a 5xx; a refused
character is a 400 that names the field, and nothing is saved."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import Session
from tests.mail import link_in_last_mail
from tests.views.hostile_forms import crawl_forms, database_rows, endpoint_of, fill_every_page

# Routes that take a POST without a form of their own on any page: the forms for them are built by htmx
# attributes (hx-post on a button) and carry no field but the CSRF token.
HTMX_BUTTONS = {"apps.reveal_secret", "apps.send_test"}

# What an attacker types, beyond NUL: lone surrogates (sent as the raw bytes \xed\xa0\x80, which are not UTF-8),
# characters outside Latin-1, numbers beyond any id, digits that are not ASCII, line breaks, nothing at all.
HOSTILE = ["\x00", "a\x00b", "\ud800", "x\udfffy", "☕", "http://☕.example/", "99999999999999999999", "-1", "²",
           "", " ", "\r\n", "a\rb", "\x1b[31m", "\u2028", "%00", "0", "1" * 400]
# The values every field gets in turn (the rest are left to the random run below, to keep the walk short).
WALKED = ["\ud800", "☕", "99999999999999999999", "-1", "²", "", "\r\n"]


@pytest.fixture
def every_form(app, owner, receiver, smtp, run_worker):
    """The forms on every page the owner, a person invited and a person resetting a password can reach."""
    fill_every_page(app, receiver)
    assert owner.post("/orgs/acme/members/invite", {"email": "new@example.com", "role": "member"}).status_code == 303
    assert Session(app.test_client()).post("/forgot-password", {"email": "owner@example.com"}).status_code < 400
    run_worker()
    invited, resetting = Session(app.test_client()), Session(app.test_client())
    return (crawl_forms(app, owner)
            + crawl_forms(app, invited, "/login")
            + crawl_forms(app, invited, link_in_last_mail(smtp, "new@example.com", "accept-invite"))
            + crawl_forms(app, resetting, link_in_last_mail(smtp, "owner@example.com", "reset-password")))


def test_the_walk_reaches_every_route_that_takes_a_post(app, every_form):
    forms = every_form
    posted = {endpoint_of(app, form.action, "post") for form in forms if form.method == "post"}
    expected = {rule.endpoint for rule in app.url_map.iter_rules()
                if "POST" in rule.methods and not rule.rule.startswith("/api/")}
    assert expected - posted - HTMX_BUTTONS == set()


def test_a_nul_in_any_field_is_a_400_naming_it_and_nothing_is_saved(app, every_form):
    forms = every_form
    tried = 0
    for form in forms:
        for name in form.names:
            before = database_rows(app)
            response = form.send(name, "a\x00b")
            page = response.get_data(as_text=True)
            assert response.status_code == 400, (form.action, name, response.status_code, page[:300])
            assert f"the field {name!r}" in page.replace("&#39;", "'").lower() or form.method == "get"
            assert "NUL character (U+0000) is not allowed here. Nothing was saved." in page, (form.action, name)
            assert database_rows(app) == before, f"{form.action} saved something with a NUL in {name}"
            tried += 1
    assert tried > 60  # every field of every form: a walk that found few forms proves nothing


def test_every_hostile_value_in_every_field_is_answered_without_a_server_error(app, every_form):
    # Forms that end or rename what the others act on (deleting, removing, renaming the organisation) go last.
    last = ("/delete", "/remove", "/revoke", "/role", "/orgs/acme/settings")
    for form in sorted(every_form, key=lambda form: any(form.action.endswith(end) for end in last)):
        for name in form.names:
            for value in WALKED:
                response = form.send(name, value)
                assert response.status_code < 500, (form.action, name, value, response.get_data(as_text=True)[:500])


@hypothesis_settings(max_examples=200, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_hostile_value_in_any_field_is_a_server_error(app, every_form, data):
    forms = every_form
    form = data.draw(st.sampled_from([form for form in forms if form.names]))
    name = data.draw(st.sampled_from(form.names))
    value = data.draw(st.sampled_from(HOSTILE) | st.text(st.characters(codec=None, exclude_categories=()),
                                                         max_size=12))
    response = form.send(name, value)
    assert response.status_code < 500, (form.action, name, value, response.get_data(as_text=True)[:500])
