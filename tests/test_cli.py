from sqlalchemy import select

from webapp.core.extensions import db
from webapp.models import Membership, Organization, User


def test_init_db_is_safe_to_run_twice(runner):
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_create_user_creates_the_org_and_membership(app, runner):
    result = runner.invoke(args=["create-user", "--email", "Ann@Example.com", "--password", "s3cret-pass", "--org", "acme", "--role", "manager"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ann@example.com"))
        membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
        assert membership.role == "manager"
        assert db.session.get(Organization, membership.organization_id).slug == "acme"
        assert user.check_password("s3cret-pass")


def test_duplicate_email_is_a_clear_error(app, runner):
    runner.invoke(args=["create-user", "--email", "ann@example.com", "--password", "s3cret-pass", "--org", "acme"])
    result = runner.invoke(args=["create-user", "--email", "ann@example.com", "--password", "other-pass", "--org", "beta"])
    assert result.exit_code != 0
    assert "already exists" in result.output
    with app.app_context():
        assert db.session.scalar(select(Organization).where(Organization.slug == "beta")) is None


def test_bad_role_and_bad_org_slug_are_refused(runner):
    result = runner.invoke(args=["create-user", "--email", "a@example.com", "--password", "s3cret-pass", "--org", "acme", "--role", "king"])
    assert result.exit_code != 0 and "king" in result.output
    result = runner.invoke(args=["create-user", "--email", "a@example.com", "--password", "s3cret-pass", "--org", "Not A Slug"])
    assert result.exit_code != 0 and "slug" in result.output


def test_an_email_that_smtp_would_read_differently_is_refused(app, runner):
    for email in ["<svg/onload=alert(12)>@x.test", "ann@x.test, eve@y.test", "ann eve@x.test"]:
        result = runner.invoke(args=["create-user", "--email", email, "--password", "s3cret-pass", "--org", "acme"])
        assert result.exit_code != 0 and "is not an email address Hookline can send to" in result.output
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []
        assert db.session.scalar(select(Organization).where(Organization.slug == "acme")) is None
