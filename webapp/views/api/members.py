"""An organisation's members and pending invitations through the API, in the shape of Sentry's member serializer.

A member's id is its membership id ("12"); a pending invitation's is "invite-<id>" ("invite-3"), since the two
live in tables of their own (Sentry keeps both as one kind of row).
"""

from __future__ import annotations

from flask import jsonify

from ...invitations import get_pending_invitation, invite, pending_invitations, revoke
from ...members import ROLE_NAMES, LastOwnerError, MemberError, change_role, get_membership, list_members, remove_member
from ...models import Invitation, Membership, Organization
from . import ApiError, api_user, bp, field, json_body, org_for, paged, require_manager
from .apps import iso

INVITE_PREFIX = "invite-"


def serialize_member(row: Membership | Invitation) -> dict:
    """Sentry's organization member: a person's membership, or (``pending``) an invitation not yet accepted."""
    if isinstance(row, Invitation):
        return {
            "id": f"{INVITE_PREFIX}{row.id}", "email": row.email, "name": row.email, "user": None,
            "role": row.role, "orgRole": row.role, "roleName": ROLE_NAMES[row.role],
            "pending": True, "expired": row.is_expired, "inviteStatus": "approved",
            "inviterName": (row.invited_by.name or row.invited_by.email) if row.invited_by else None,
            "dateCreated": iso(row.date_added),
        }
    user = row.user
    return {
        "id": str(row.id), "email": user.email, "name": user.name or user.email,
        "user": {"id": str(user.id), "name": user.name or user.email, "email": user.email, "username": user.email},
        "role": row.role, "orgRole": row.role, "roleName": ROLE_NAMES[row.role],
        "pending": False, "expired": False, "inviteStatus": "approved", "inviterName": None,
        "dateCreated": iso(row.date_added),
    }


def _owner_org(org_slug: str) -> Organization:
    organization, role = org_for(org_slug)
    if role != "owner":
        raise ApiError(403, "You do not have permission to perform this action (owners only).")
    return organization


def _member_or_404(organization: Organization, member_id: str) -> Membership | Invitation:
    row_id = _row_id(member_id.removeprefix(INVITE_PREFIX))
    if row_id is None:
        row = None
    elif member_id.startswith(INVITE_PREFIX):
        row = get_pending_invitation(organization.id, row_id)
    else:
        row = get_membership(organization.id, row_id)
    if row is None:
        raise ApiError(404, "The requested resource does not exist.")
    return row


def _row_id(text: str) -> int | None:
    """The number in an id, if it can be a row's (a larger one would overflow the database's integers)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _role(body: dict) -> str | None:
    """The role a request asks for: ``orgRole`` (Sentry's name now) or ``role`` (its older one)."""
    return field(body, "orgRole", str) or field(body, "role", str)


@bp.route("/organizations/<org_slug>/members/", methods=["GET"])
def list_org_members(org_slug):
    organization, role = org_for(org_slug)
    require_manager(role)
    rows = [*list_members(organization.id), *pending_invitations(organization.id)]
    return paged(rows, serialize_member)


@bp.route("/organizations/<org_slug>/members/", methods=["POST"])
def invite_member(org_slug):
    """Invite ``email`` with ``orgRole`` (or ``role``, default member); the invitation is emailed."""
    organization = _owner_org(org_slug)
    body = json_body()
    email = field(body, "email", str, required=True)
    try:
        invitation = invite(organization, email, _role(body) or "member", api_user())
    except MemberError as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(serialize_member(invitation)), 201


@bp.route("/organizations/<org_slug>/members/<member_id>/", methods=["GET"])
def get_member(org_slug, member_id):
    organization, role = org_for(org_slug)
    require_manager(role)
    return jsonify(serialize_member(_member_or_404(organization, member_id)))


@bp.route("/organizations/<org_slug>/members/<member_id>/", methods=["PUT"])
def update_member(org_slug, member_id):
    """Change a member's role (``orgRole`` or ``role``); the last owner keeps theirs (403, as in Sentry)."""
    organization = _owner_org(org_slug)
    row = _member_or_404(organization, member_id)
    body = json_body()
    role = _role(body)
    if role is None:
        raise ApiError(400, "orgRole: this field is required.")
    if isinstance(row, Invitation):
        raise ApiError(400, "A pending invitation's role cannot change: invite the email again with the new role.")
    try:
        change_role(row, role, api_user().id)
    except LastOwnerError as exc:
        raise ApiError(403, str(exc)) from None
    except MemberError as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(serialize_member(row))


@bp.route("/organizations/<org_slug>/members/<member_id>/", methods=["DELETE"])
def delete_member(org_slug, member_id):
    """Remove a member (every session of theirs ends), or revoke a pending invitation."""
    organization = _owner_org(org_slug)
    row = _member_or_404(organization, member_id)
    if isinstance(row, Invitation):
        revoke(row, api_user().id)
        return "", 204
    try:
        remove_member(row, api_user().id)
    except LastOwnerError as exc:
        raise ApiError(403, str(exc)) from None
    return "", 204
