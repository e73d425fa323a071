"""An organisation's members: the list, changing a role, removing someone. An organisation always keeps an owner."""

from __future__ import annotations

from sqlalchemy import func, select

from ..core.audit import record_audit
from ..core.extensions import db
from ..models import ROLES, Membership, User

ROLE_NAMES = {"owner": "Owner", "manager": "Manager", "member": "Member"}
ROLE_WITH_ARTICLE = {"owner": "an owner", "manager": "a manager", "member": "a member"}  # "you are a member"


class MemberError(ValueError):
    """The change cannot be made as asked; the message says why (nothing was changed)."""


class LastOwnerError(MemberError):
    """The change would leave the organisation without an owner."""


def check_role(role: str) -> None:
    if role not in ROLES:
        raise MemberError(f"Choose a role: {', '.join(ROLES)}.")


def list_members(organization_id: int) -> list[Membership]:
    """The organisation's members, owners first, then by name and email."""
    order = {role: rank for rank, role in enumerate(ROLES)}
    rows = db.session.scalars(select(Membership).join(User).where(Membership.organization_id == organization_id)
                              .order_by(func.lower(User.name), User.email))
    return sorted(rows, key=lambda membership: order.get(membership.role, len(order)))


def get_membership(organization_id: int, membership_id: int) -> Membership | None:
    membership = db.session.get(Membership, membership_id)
    return membership if membership is not None and membership.organization_id == organization_id else None


def change_role(membership: Membership, role: str, actor_id: int) -> bool:
    """Give the member ``role``; audit; commit. Return False if it was their role already."""
    check_role(role)
    old = membership.role
    if old == role:
        return False
    if old == "owner":
        _keep_an_owner(membership, f"{membership.user.email} is the only owner of {membership.organization.name}: "
                                   "make someone else an owner first.")
    membership.role = role
    record_audit(membership.organization_id, "member.edit", actor_id=actor_id, target_object=membership.id,
                 target_label=membership.user.email, data={"role": [old, role]})
    db.session.commit()
    return True


def remove_member(membership: Membership, actor_id: int) -> None:
    """Take the person out of the organisation and end every session of theirs; audit; commit.

    Ending the sessions means a browser (or a copied cookie) that had this organisation's pages open must
    log in again, and from then on sees only the organisations the person is still in.
    """
    if membership.role == "owner":
        _keep_an_owner(membership, f"{membership.user.email} is the only owner of {membership.organization.name}: "
                                   "make someone else an owner before removing them.")
    user = membership.user
    record_audit(membership.organization_id, "member.remove", actor_id=actor_id, target_object=membership.id,
                 target_label=user.email, data={"email": user.email, "role": membership.role})
    user.end_sessions()
    db.session.delete(membership)
    db.session.commit()


def _keep_an_owner(membership: Membership, message: str) -> None:
    """Raise LastOwnerError unless another owner stays.

    The owners' rows are read FOR UPDATE (on PostgreSQL), so two owners demoting each other at the same
    moment cannot both see the other as the owner who stays.
    """
    owners = db.session.scalars(select(Membership.id).where(
        Membership.organization_id == membership.organization_id, Membership.role == "owner").with_for_update()).all()
    if not any(owner_id != membership.id for owner_id in owners):
        db.session.rollback()
        raise LastOwnerError(message)
