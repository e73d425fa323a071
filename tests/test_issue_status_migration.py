"""Migration 0013: issues resolved before it are resolved "now", and the releases of stored events are known, in
the order each was first seen, so "in the next release" works on an existing database."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from webapp.apps.projects import create_project
from webapp.core.extensions import db
from webapp.models import Organization


def test_existing_releases_and_resolutions_are_kept(app, make_user):
    make_user("owner@example.com", "acme", "owner")
    with app.app_context():
        project_id = create_project(db.session.query(Organization).one(), "Web").id
        db.session.remove()
        downgrade(revision="0012")
        db.session.execute(text(
            "INSERT INTO sentry_group (project_id, short_id, fingerprint_hash, title, culprit, level, platform, "
            "metadata_json, status, first_seen, last_seen, times_seen) VALUES "
            "(:project, 1, 'a', 'A', '', 'error', 'python', '{}', 'resolved', :t, :t, 3), "
            "(:project, 2, 'b', 'B', '', 'error', 'python', '{}', 'unresolved', :t, :t, 1)"),
            {"project": project_id, "t": "2026-11-01 12:00:00"})
        for number, (release, received) in enumerate([('"web@2"', "2026-11-03"), ('"web@1"', "2026-11-01"),
                                                      ('"web@2"', "2026-11-02"), ("null", "2026-11-04"),
                                                      ("7", "2026-11-05")]):
            db.session.execute(text(
                "INSERT INTO event (event_id, project_id, group_id, level, title, received, data_json) VALUES "
                f"(:id, :project, 1, 'error', 'A', :received, '{{\"release\": {release}}}')"),
                {"id": f"{number:032x}", "project": project_id, "received": f"{received} 12:00:00"})
        db.session.commit()
        db.session.remove()

        upgrade()
        releases = db.session.execute(text("SELECT version FROM release ORDER BY id")).scalars().all()
        assert releases == ["web@1", "web@2"]  # first seen order; no release and a number are no release
        assert db.session.execute(text("SELECT resolution_type FROM sentry_group ORDER BY id")).scalars().all() == [
            "now", None]
        db.session.remove()
        downgrade(revision="0012")
        db.session.remove()
        upgrade()
