"""A project's client keys through the API, in Sentry's ProjectKey shape (``world`` before ``api``: it makes the owner)."""

import json

import pytest

from tests.alert_world import wait_unless_a_minute_has_time_left
from webapp.core.extensions import db
from webapp.models import ProjectKey

KEYS = "/api/0/projects/acme/web/keys/"


def key_rows(app) -> list[tuple[str, str, bool, int | None]]:
    with app.app_context():
        return [(key.label, key.public_key, key.is_active, key.rate_limit)
                for key in db.session.query(ProjectKey).order_by(ProjectKey.id)]


def store(app, project_id: int, public_key: str):
    return app.test_client().post(f"/api/{project_id}/store/?sentry_key={public_key}",
                                  data=json.dumps({"message": "boom"}))


def test_list_and_get_answer_sentrys_shape(app, world, api):
    [default] = api("GET", KEYS, who="member").json
    public = default["id"]
    dsn = f"http://{public}@hookline.test/{world.project_id}"
    unserved = ("csp", "security", "minidump", "nel", "unreal", "crons", "cdn", "playstation", "integration",
                "otlp_traces", "otlp_logs")
    assert default == {
        "id": public, "name": "Default", "label": "Default", "public": public, "secret": None, "isActive": True,
        "dateCreated": default["dateCreated"], "projectId": world.project_id, "rateLimit": None,
        "dsn": {"public": dsn, "secret": dsn, **{form: "" for form in unserved},
                "store": f"http://hookline.test/api/{world.project_id}/store/",
                "envelope": f"http://hookline.test/api/{world.project_id}/envelope/"},
        "browserSdkVersion": "", "browserSdk": {"choices": []}, "useCase": "user",
        "dynamicSdkLoaderOptions": {"hasReplay": False, "hasPerformance": False, "hasDebug": False,
                                    "hasFeedback": False, "hasLogsAndMetrics": False},
    }
    assert api("GET", f"/api/0/projects/acme/{world.project_id}/keys/", who="member").json == [default]  # by id
    assert default["dateCreated"].endswith("Z")
    assert api("GET", f"{KEYS}{public}/", who="member").json == default


def test_create_update_and_delete_a_key(app, world, api):
    created = api("POST", KEYS, json={"name": "Mobile", "rateLimit": {"window": 60, "count": 2}})
    assert created.status_code == 201, created.json
    key = created.json
    assert (key["name"], key["isActive"], key["rateLimit"]) == ("Mobile", True, {"window": 60, "count": 2})
    assert store(app, world.project_id, key["id"]).status_code == 200
    assert [row[0] for row in key_rows(app)] == ["Default", "Mobile"]
    unnamed = api("POST", KEYS, json={}, who="manager")
    assert unnamed.status_code == 201 and unnamed.json["name"] == "Key 3"

    updated = api("PUT", f"{KEYS}{key['id']}/", json={"name": "Mobile app", "isActive": False, "rateLimit": None})
    assert updated.status_code == 200
    assert (updated.json["name"], updated.json["isActive"], updated.json["rateLimit"]) == ("Mobile app", False, None)
    refused = store(app, world.project_id, key["id"])
    assert refused.status_code == 403 and refused.json["detail"].startswith("This project key is disabled.")
    assert api("PUT", f"{KEYS}{key['id']}/", json={"isActive": True}).json["isActive"] is True
    assert store(app, world.project_id, key["id"]).status_code == 200

    assert api("DELETE", f"{KEYS}{key['id']}/").status_code == 204
    assert api("GET", f"{KEYS}{key['id']}/").status_code == 404
    assert store(app, world.project_id, key["id"]).status_code == 403
    assert [row[0] for row in key_rows(app)] == ["Default", "Key 3"]


def test_a_key_rate_limit_set_through_the_api_takes_effect(app, world, api):
    wait_unless_a_minute_has_time_left()
    [default] = api("GET", KEYS).json
    assert api("PUT", f"{KEYS}{default['id']}/", json={"rateLimit": {"window": 60, "count": 1}}).status_code == 200
    assert store(app, world.project_id, default["id"]).status_code == 200
    refused = store(app, world.project_id, default["id"])
    assert refused.status_code == 429 and "may send 1 events a minute" in refused.json["detail"]


@pytest.mark.parametrize(("body", "detail"), [
    ({"name": ""}, "name: Give the key a label of 1 to 64 characters."),
    ({"name": "x" * 65}, "name: Give the key a label of 1 to 64 characters."),
    ({"name": 7}, "name: expected a string."),
    ({"name": "nul\u0000byte"}, "name: a NUL character (U+0000) is not allowed here"),  # the request-edge check
    ({"isActive": "no"}, "isActive: expected true or false."),
    ({"rateLimit": 100}, "rateLimit: expected an object."),
    ({"rateLimit": {"window": 3600, "count": 100}}, "rateLimit: window must be 60"),
    ({"rateLimit": {"count": 100}}, "rateLimit: window must be 60"),
    ({"rateLimit": {"window": 60, "count": 0}}, "rateLimit: count must be a whole number from 1 to 1000000."),
    ({"rateLimit": {"window": 60, "count": 1_000_001}}, "rateLimit: count must be a whole number from 1 to 1000000."),
    ({"rateLimit": {"window": 60, "count": "5"}}, "rateLimit: count must be a whole number"),
    ({"rateLimit": {"window": 60, "count": True}}, "rateLimit: count must be a whole number"),
    ({"name": "Fine", "rateLimit": {"window": 60, "count": 2.5}}, "rateLimit: count must be a whole number"),
])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(app, world, api, body, detail):
    before = key_rows(app)
    [default] = api("GET", KEYS).json
    for method, path in [("POST", KEYS), ("PUT", f"{KEYS}{default['id']}/")]:
        if method == "POST" and set(body) == {"isActive"}:
            continue  # create takes no isActive
        response = api(method, path, json=body)
        assert response.status_code == 400 and response.json["detail"].startswith(detail), (method, response.json)
    assert key_rows(app) == before


def test_members_read_others_get_404_and_unknown_keys_404(app, world, api):
    [default] = api("GET", KEYS, who="member").json
    one = f"{KEYS}{default['id']}/"
    assert api("POST", KEYS, who="member", json={"name": "Mine"}).status_code == 403
    assert api("PUT", one, who="member", json={"isActive": False}).status_code == 403
    assert api("DELETE", one, who="member").status_code == 403
    for method in ("GET", "PUT", "DELETE"):
        response = api(method, one, who="eve", json={"isActive": False})
        assert response.status_code == 404 and response.json == {"detail": "The requested resource does not exist."}
        assert api(method, f"{KEYS}{'f' * 32}/", json={"isActive": False}).status_code == 404
    assert api("GET", KEYS, who="eve").status_code == 404
    assert api("GET", "/api/0/projects/acme/nope/keys/").status_code == 404
    assert key_rows(app) == [("Default", default["id"], True, None)]
