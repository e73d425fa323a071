"""get_from_cache: payloads read organisations and projects through Redis, never stale after a change."""

from tests.alert_world import raise_and_capture
from webapp import keys
from webapp.cache import get_from_cache
from webapp.extensions import db
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
