"""Migration 0010: entries stored under the old event names get the new ones, and back on downgrade."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from webapp.core.audit import RENAMED
from webapp.core.extensions import db


def stored_events(app) -> list[str]:
    return [row.event for row in db.session.execute(text("SELECT event FROM audit_log_entry ORDER BY id"))]


def test_old_names_are_renamed_and_restored(app, make_user):
    make_user("owner@example.com", "acme", "owner")
    old = [*RENAMED, "login.success"]  # a name that never changed is left alone
    with app.app_context():
        db.session.remove()
        downgrade(revision="0009")
        for event in old:
            db.session.execute(text("INSERT INTO audit_log_entry (organization_id, event, target_label, data_json, "
                                    "datetime) VALUES (1, :event, 'Pager', '{}', '2026-11-01 12:00:00')"),
                               {"event": event})
        db.session.commit()
        db.session.remove()

        upgrade()
        assert stored_events(app) == [*RENAMED.values(), "login.success"]
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("audit_log_entry")}
        assert "ix_audit_log_entry_org_event_time" in indexes
        db.session.remove()

        downgrade(revision="0009")
        assert stored_events(app) == old
        assert "ix_audit_log_entry_org_event_time" not in {
            index["name"] for index in inspect(db.engine).get_indexes("audit_log_entry")}
        db.session.remove()
        upgrade()
