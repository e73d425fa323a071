"""Finding issues and their events through the API, as a script would (Sentry's list endpoints)."""

import json
import re

import pytest

from tests.test_ingest import AUTH
from webapp.core.extensions import db
from webapp.models import Group


@pytest.fixture
def issues(app, world):
    """Ten issues in project web: "checkout failed 0..4" (error) and "cache miss 0..4" (warning)."""
    key = world.dsn.split("//")[1].split("@")[0]
    client = app.test_client()
    for n in range(5):
        for message, level in ((f"checkout failed {n}", "error"), (f"cache miss {n}", "warning")):
            event = {"event_id": f"{len(message) + n:02x}{n:030x}", "message": message, "level": level,
                     "user": {"id": str(n)}}
            assert client.post(f"/api/{world.project_id}/store/", data=json.dumps(event),
                               headers={"X-Sentry-Auth": AUTH.format(key=key)}).status_code == 200
    from webapp.dispatch.queues import make_worker

    make_worker(app).work(burst=True)
    return world.groups()


def get(api, path, who="owner", **params):
    return api.client.get(path, query_string=params, headers={"Authorization": f"Bearer {api.tokens[who]}"})


def test_list_searches_filters_and_pages_like_sentry(app, issues, api):
    page = get(api, "/api/0/organizations/acme/issues/")  # default: is:unresolved
    assert page.status_code == 200 and len(page.json) == 10
    assert {issue["status"] for issue in page.json} == {"unresolved"}
    assert [issue["title"] for issue in get(api, "/api/0/organizations/acme/issues/",
                                            query="is:unresolved level:warning miss 3").json] == ["cache miss 3"]
    checkout = get(api, "/api/0/organizations/acme/issues/", query="checkout", sort="new").json
    assert [issue["title"] for issue in checkout] == [f"checkout failed {n}" for n in (4, 3, 2, 1, 0)]
    assert checkout[0]["userCount"] == 1 and checkout[0]["numComments"] == 0

    with app.app_context():
        group = db.session.query(Group).filter_by(title="cache miss 0").one()
        group.status = "resolved"
        db.session.commit()
    assert len(get(api, "/api/0/organizations/acme/issues/").json) == 9
    assert [i["title"] for i in get(api, "/api/0/organizations/acme/issues/", query="is:resolved").json] == [
        "cache miss 0"]
    assert len(get(api, "/api/0/projects/acme/web/issues/", query="").json) == 10
    assert len(get(api, "/api/0/organizations/acme/issues/", statsPeriod="24h", query="").json) == 10
    assert get(api, "/api/0/organizations/acme/issues/", who="eve").status_code == 404  # another organisation


def test_paging_follows_the_link_header(app, issues, api, monkeypatch):
    import webapp.views.api as api_module

    monkeypatch.setattr(api_module, "PAGE_SIZE", 4)
    seen, path, params = [], "/api/0/organizations/acme/issues/", {"query": ""}
    for _ in range(5):
        page = get(api, path, **params)
        seen += [issue["id"] for issue in page.json]
        link = re.search(r'<([^>]+)>; rel="next"; results="(true|false)"; cursor="([^"]+)"', page.headers["Link"])
        if link.group(2) == "false":
            break
        params = {"query": "", "cursor": link.group(3)}
    assert len(seen) == len(set(seen)) == 10


@pytest.mark.parametrize("params,detail", [
    ({"query": "is:sleeping"}, "is:sleeping is not a status"),
    ({"query": "level:loud"}, "level:loud is not a level"),
    ({"statsPeriod": "yesterday"}, "statsPeriod: expected"),
    ({"sort": "random"}, "sort: expected one of"),
    ({"cursor": "abc"}, "cursor: expected"),
    ({"project": "web"}, "project: expected project ids"),
])
def test_bad_parameters_are_400_with_the_reason(api, params, detail):
    response = get(api, "/api/0/organizations/acme/issues/", **params)
    assert response.status_code == 400 and detail in response.json["detail"]


def test_an_issues_events_newest_first(app, world, api):
    key = world.dsn.split("//")[1].split("@")[0]
    for n in range(3):
        event = {"event_id": f"{n:032x}", "message": "same issue", "tags": {"n": str(n)}}
        app.test_client().post(f"/api/{world.project_id}/store/", data=json.dumps(event),
                               headers={"X-Sentry-Auth": AUTH.format(key=key)})
    from webapp.dispatch.queues import make_worker
    make_worker(app).work(burst=True)
    [group] = world.groups()
    events = get(api, f"/api/0/organizations/acme/issues/{group.id}/events/").json
    assert [event["eventID"] for event in events] == [f"{n:032x}" for n in (2, 1, 0)]
    # the client's tag, and those Sentry derives (here the level)
    assert events[0]["tags"] == [{"key": "level", "value": "error"}, {"key": "n", "value": "2"}]
    assert events[0]["groupID"] == str(group.id)
    full = get(api, f"/api/0/organizations/acme/issues/{group.id}/events/", full="true").json
    assert full[0]["eventID"] == f"{2:032x}" and full[0]["groupID"] == str(group.id) and "entries" in full[0]
    assert full[0]["previousEventID"] == f"{1:032x}" and full[0]["nextEventID"] is None
    assert get(api, "/api/0/organizations/acme/issues/999999/events/").status_code == 404


def test_a_cursor_beyond_any_list_is_400_not_500(api):
    response = get(api, "/api/0/organizations/acme/issues/", cursor="0:8251524883076930122078:0")
    assert response.status_code == 400 and "cursor: expected" in response.json["detail"]
