"""An organisation's members and pending invitations through the API, in the shape of Sentry's member serializer.

A member's id is its membership id ("12"); a pending invitation's is "invite-<id>" ("invite-3"), since the two
live in tables of their own (Sentry keeps both as one kind of row).
"""

from __future__ import annotations

from flask import jsonify

from ...accounts.invitations import get_pending_invitation, invite, pending_invitations, revoke
from ...accounts.members import (
    ROLE_NAMES, LastOwnerError, MemberError, change_role, get_membership, list_members, remove_member,
)
from ...models import ROLES, Invitation, Membership, Organization
from . import ApiError, api_user, bp, field, json_body, org_for, paged, require_manager
from .apps import iso

INVITE_PREFIX = "invite-"


FLAGS = {"idp:provisioned": False, "idp:role-restricted": False, "member-limit:restricted": False,
         "partnership:restricted": False, "sso:invalid": False, "sso:linked": False}
# Sentry's organisation roles as Hookline's: Sentry's admin (integrations, projects, the audit log, but not the
# members) is what Hookline's manager may do; Sentry's manager also manages members, which Hookline leaves to owners.
SENTRY_ROLES = {"member": "member", "admin": "manager", "manager": "manager", "owner": "owner"}


def serialize_member(row: Membership | Invitation) -> dict:
    """Sentry's organization member: a person's membership, or (``pending``) an invitation not yet accepted.

    Hookline has no teams, SSO or external users: ``teams``, ``teamRoles`` and ``externalUsers`` are empty and
    every flag false.
    """
    if isinstance(row, Invitation):
        member = {
            "id": f"{INVITE_PREFIX}{row.id}", "email": row.email, "name": row.email, "user": None,
            "pending": True, "expired": row.is_expired,
            "inviterName": (row.invited_by.name or row.invited_by.email) if row.invited_by else None,
        }
    else:
        member = {"id": str(row.id), "email": row.user.email, "name": row.user.name or row.user.email,
                  "user": _user(row.user), "pending": False, "expired": False, "inviterName": None}
    return {**member, "role": row.role, "orgRole": row.role, "roleName": ROLE_NAMES[row.role],
            "inviteStatus": "approved", "invite_link": None, "dateCreated": iso(row.date_added), "flags": FLAGS,
            "teams": [], "teamRoles": [], "externalUsers": []}


def serialize_member_detail(row: Membership | Invitation, organization: Organization) -> dict:
    """A member as Sentry's member details answer it: also whether they are the only owner, and the roles."""
    owners = sum(1 for membership in list_members(organization.id) if membership.role == "owner")
    only_owner = isinstance(row, Membership) and row.role == "owner" and owners == 1
    return {**serialize_member(row), "isOnlyOwner": only_owner, "teamRoleList": [],
            "orgRoleList": [{"id": role, "name": ROLE_NAMES[role], "desc": "", "scopes": [], "allowed": True,
                             "isAllowed": True, "isRetired": False, "isTeamRolesAllowed": False, "is_global": False,
                             "isGlobal": False, "minimumTeamRole": "contributor"} for role in ROLES]}


def _user(user) -> dict:
    """Sentry's user: what Hookline keeps (id, name, email, date joined); no avatar, 2FA or staff flags."""
    return {"id": str(user.id), "name": user.name or user.email, "email": user.email, "username": user.email,
            "avatarUrl": "", "dateJoined": iso(user.date_joined), "emails": [
                {"id": str(user.id), "email": user.email, "is_verified": True}],
            "experiments": {}, "has2fa": False, "hasPasswordAuth": True, "isActive": True, "isManaged": False,
            "isStaff": False, "isSuperuser": False, "isSuspended": False, "lastActive": None, "lastLogin": None}


def _owner_org(org_slug: str) -> Organization:
    organization, role = org_for(org_slug)
    if role != "owner":
        raise ApiError(403, "You do not have permission to perform this action (owners only).")
    return organization


def _member_or_404(organization: Organization, member_id: str) -> Membership | Invitation:
    """A membership by id (``me``: the caller's, as in Sentry), or a pending invitation by invite-<id>."""
    if member_id == "me":
        member_id = next(str(m.id) for m in api_user().memberships if m.organization_id == organization.id)
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
    """The Hookline role a request asks for: ``orgRole`` (Sentry's name now) or ``role`` (its older one), in
    Sentry's names (admin is Hookline's manager); 400 for a role Hookline has no equivalent of."""
    name = "orgRole" if "orgRole" in body else "role"
    role = field(body, name, str)
    if role is None:
        return None
    if role == "billing":
        raise ApiError(400, f"{name}: billing is not a role Hookline has (it bills no one); use member, admin "
                            "(Hookline's manager: apps, keys and the audit log), manager or owner.")
    return SENTRY_ROLES.get(role, role)  # any other name: refused with Hookline's roles by invite and change_role


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
    if member_id != "me":  # anyone may read their own membership, as in Sentry
        require_manager(role)
    return jsonify(serialize_member_detail(_member_or_404(organization, member_id), organization))


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
    return jsonify(serialize_member_detail(row, organization))


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
