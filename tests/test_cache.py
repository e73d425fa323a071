"""get_from_cache: payloads and ingestion read organisations, projects and keys through Redis, never stale after a change."""

import json

from tests.alert_world import raise_and_capture
from webapp.apps.project_keys import create_key, delete_key, update_key
from webapp.core import keys
from webapp.core.cache import get_from_cache, get_project_keys
from webapp.core.extensions import db
from webapp.models import Organization, Project


def test_read_through_and_invalidated_on_update_and_delete(app, world):
    redis = app.extensions["redis"]
    with app.app_context():
        key = keys.model_cache("project", world.project_id)
        assert redis.get(key) is None
        assert get_from_cache(Project, world.project_id).slug == "web"
        assert redis.get(key) is not None
        project = db.session.get(Project, world.project_id)
        project.slug = "web-2"
        db.session.commit()
        assert redis.get(key) is None
        assert get_from_cache(Project, world.project_id).slug == "web-2"
        db.session.delete(project)
        db.session.commit()
        assert redis.get(key) is None
        assert get_from_cache(Project, world.project_id) is None


def test_a_rolled_back_change_keeps_the_cache(app, world):
    redis = app.extensions["redis"]
    with app.app_context():
        get_from_cache(Organization, 1)
        organization = db.session.get(Organization, 1)
        organization.slug = "nope"
        db.session.flush()
        db.session.rollback()
        assert redis.get(keys.model_cache("organization", 1)) is not None
        assert get_from_cache(Organization, 1).slug == "acme"


def test_renaming_the_org_slug_shows_in_the_very_next_payload(app, world, sdk, owner, receiver, run_worker):
    raise_and_capture("first")
    run_worker()
    assert receiver.of("issue.created")[0].json["data"]["issue"]["web_url"].startswith("http://hookline.test/orgs/acme/")
    response = owner.post("/orgs/acme/settings", {"name": "Acme Two", "slug": "acme-two"})
    assert response.status_code == 302
    raise_and_capture("second")
    run_worker()
    second = receiver.of("issue.created")[1].json["data"]["issue"]
    assert second["web_url"].startswith("http://hookline.test/orgs/acme-two/issues/")
    assert second["url"].startswith("http://hookline.test/api/0/organizations/acme-two/")
    assert owner.get(second["web_url"].removeprefix("http://hookline.test")).status_code == 200


def test_org_settings_refuse_bad_slugs_and_non_owners(app, world, owner, make_user):
    response = owner.post("/orgs/acme/settings", {"name": "Acme", "slug": "Not OK"})
    assert response.status_code == 400 and "must be lowercase" in response.get_data(as_text=True)
    make_user("other@example.com", "taken", "owner")
    response = owner.post("/orgs/acme/settings", {"name": "Acme", "slug": "taken"})
    assert response.status_code == 400 and "is taken" in response.get_data(as_text=True)
    make_user("manager@example.com", "acme", "manager")
    manager = type(owner)(app.test_client())
    manager.login("manager@example.com")
    assert manager.get("/orgs/acme/settings").status_code == 403
    with app.app_context():
        assert db.session.get(Organization, 1).slug == "acme"


def test_an_entry_cached_by_an_older_release_with_other_columns_is_read_again(app, world):
    redis = app.extensions["redis"]
    key = keys.model_cache("project", world.project_id)
    with app.app_context():
        project = db.session.get(Project, world.project_id)
        project.key_rate_limit = 5
        db.session.commit()
        # What the release before client keys cached: the project's public key, no key_rate_limit.
        redis.set(key, json.dumps({"id": world.project_id, "organization_id": 1, "slug": "web", "name": "Web",
                                   "platform": "python", "public_key": "0" * 32}))
        assert get_from_cache(Project, world.project_id).key_rate_limit == 5
        assert json.loads(redis.get(key))["key_rate_limit"] == 5


def test_a_projects_key_list_is_invalidated_by_every_key_change(app, world):
    redis = app.extensions["redis"]
    entry = keys.project_keys_cache(world.project_id)
    with app.app_context():
        project = db.session.get(Project, world.project_id)
        assert [key.public_key for key in get_project_keys(project.id)] == [project.client_keys[0].public_key]
        assert redis.get(entry) is not None
        create_key(project, "Second", None)
        assert redis.get(entry) is None
        [_, second] = get_project_keys(project.id)
        assert (second.public_key, second.is_active, second.rate_limit) == (project.client_keys[1].public_key, True, None)
        update_key(project.client_keys[1], {"rate_limit": 9}, None)
        assert redis.get(entry) is None and get_project_keys(project.id)[1].rate_limit == 9
        delete_key(project.client_keys[1], None)
        assert redis.get(entry) is None and len(get_project_keys(project.id)) == 1
        db.session.delete(db.session.get(Project, world.project_id))
        db.session.commit()
        assert redis.get(entry) is None
