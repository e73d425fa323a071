"""An organisation's members page: owners invite, change roles, remove, revoke; managers read it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..accounts.invitations import get_pending_invitation, invite, pending_invitations, revoke
from ..accounts.members import (
    ROLE_NAMES, ROLE_WITH_ARTICLE, MemberError, change_role, get_membership, list_members, remove_member,
)
from ..models import ROLES, Organization
from .helpers import confirm_step, confirmed, get_org_or_404, require_manager

bp = Blueprint("members", __name__, url_prefix="/orgs/<org_slug>/members")


def _owner_org_or_404(org_slug: str) -> Organization:
    organization, role = get_org_or_404(org_slug)
    if role != "owner":
        abort(403, description="Only owners can invite, change or remove members.")
    return organization


def _page(organization: Organization, role: str, error: str | None = None, invite_error: str | None = None):
    """The members page; an error (nothing was changed) answers 400."""
    members = list_members(organization.id)
    owners = [membership.id for membership in members if membership.role == "owner"]
    return render_template("orgs/members.html", organization=organization, role=role, roles=ROLES,
                           role_names=ROLE_NAMES, members=members,
                           only_owner=owners[0] if len(owners) == 1 else None,
                           invitations=pending_invitations(organization.id), error=error,
                           invite_error=invite_error), 400 if error or invite_error else 200


def _back(organization: Organization):
    return redirect(url_for("members.list_view", org_slug=organization.slug), 303)


@bp.route("")
@login_required
def list_view(org_slug):
    organization, role = get_org_or_404(org_slug)
    require_manager(role)
    return _page(organization, role)


@bp.route("/invite", methods=["POST"])
@login_required
def invite_view(org_slug):
    organization = _owner_org_or_404(org_slug)
    try:
        invitation = invite(organization, request.form.get("email", ""), request.form.get("role", ""), current_user)
    except MemberError as exc:
        return _page(organization, "owner", invite_error=str(exc))
    flash(f"Invitation sent to {invitation.email}; the link works for 7 days.", "success")
    return _back(organization)


@bp.route("/<int:membership_id>/role", methods=["POST"])
@login_required
def role_view(org_slug, membership_id):
    organization = _owner_org_or_404(org_slug)
    membership = get_membership(organization.id, membership_id) or abort(404)
    email = membership.user.email
    try:
        changed = change_role(membership, request.form.get("role", ""), current_user.id)
    except MemberError as exc:
        return _page(organization, "owner", error=str(exc))
    if changed:
        flash(f"{email} is now {ROLE_WITH_ARTICLE[membership.role]}.", "success")
    return _back(organization)


@bp.route("/<int:membership_id>/remove", methods=["POST"])
@login_required
def remove_view(org_slug, membership_id):
    organization = _owner_org_or_404(org_slug)
    membership = get_membership(organization.id, membership_id) or abort(404)
    email = membership.user.email
    if not confirmed():
        return confirm_step(f"Remove {email} from {organization.name}?",
                            "They lose access at once: every session of theirs ends, and they can come back only "
                            "through a new invitation.", "Remove member",
                            url_for("members.list_view", org_slug=organization.slug), organization)
    try:
        remove_member(membership, current_user.id)
    except MemberError as exc:
        return _page(organization, "owner", error=str(exc))
    flash(f"{email} is no longer a member of {organization.name}.", "success")
    return _back(organization)


@bp.route("/invitations/<int:invitation_id>/revoke", methods=["POST"])
@login_required
def revoke_view(org_slug, invitation_id):
    organization = _owner_org_or_404(org_slug)
    invitation = get_pending_invitation(organization.id, invitation_id) or abort(404)
    if not confirmed():
        return confirm_step(f"Revoke the invitation of {invitation.email}?",
                            "Its link stops working at once.", "Revoke invitation",
                            url_for("members.list_view", org_slug=organization.slug), organization)
    if revoke(invitation, current_user.id):
        flash(f"The invitation of {invitation.email} is revoked; its link no longer works.", "success")
    return _back(organization)
