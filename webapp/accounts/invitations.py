"""Invite people to an organisation by email, revoke an invitation, accept one through its one-time link."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..core.audit import record_audit
from ..core.extensions import db
from ..core.names import has_control_characters
from ..dispatch.notifications import send_async
from ..models import Invitation, Membership, Organization, User, find_user_by_email, utcnow
from .email_address import EmailAddressError, normalize_email
from .members import ROLE_NAMES, MemberError, check_role
from .passwords import check_new_password
from .tokens import hash_token

VALID_FOR = timedelta(days=7)


class InvitationGone(Exception):
    """The link cannot be used (unknown, accepted, revoked or expired); ``status`` is 404 or 410."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def pending_invitations(organization_id: int) -> list[Invitation]:
    """The organisation's invitations not yet accepted or revoked (expired ones too: they can be renewed)."""
    return list(db.session.scalars(
        select(Invitation).where(Invitation.organization_id == organization_id, Invitation.accepted_at.is_(None),
                                 Invitation.revoked_at.is_(None)).order_by(Invitation.email)))


def get_pending_invitation(organization_id: int, invitation_id: int) -> Invitation | None:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organization_id != organization_id or not invitation.is_pending:
        return None
    return invitation


def invite(organization: Organization, email: str, role: str, inviter: User) -> Invitation:
    """Invite ``email`` with ``role``: email a new one-time link, valid 7 days; audit; commit.

    Inviting an email again renews its pending invitation (new link, role and expiry; the old link stops
    working) instead of adding a second one.
    """
    try:
        email = normalize_email(email)
    except EmailAddressError as exc:
        raise MemberError(str(exc)) from None
    check_role(role)
    member = find_user_by_email(email)
    if member is not None and member.role_in(organization.id) is not None:
        raise MemberError(f"{email} is already a member of {organization.name}.")
    invitation = db.session.scalar(select(Invitation).where(
        Invitation.organization_id == organization.id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)))
    renewed = invitation is not None
    if invitation is None:
        invitation = Invitation(organization_id=organization.id, email=email)
        db.session.add(invitation)
    token = secrets.token_urlsafe(32)
    invitation.role, invitation.token_hash, invitation.invited_by_id = role, hash_token(token), inviter.id
    invitation.date_added, invitation.expires_at = utcnow(), utcnow() + VALID_FOR
    db.session.flush()
    record_audit(organization.id, "member.invite", actor_id=inviter.id, target_object=invitation.id,
                 target_label=email, data={"email": email, "role": role, "renewed": renewed})
    _send_invitation(invitation, inviter, token)
    db.session.commit()
    return invitation


def _send_invitation(invitation: Invitation, inviter: User, token: str) -> None:
    context = {"invitation": invitation, "inviter": inviter.name or inviter.email,
               "role_name": _with_article(ROLE_NAMES[invitation.role].lower()),
               "link": f"{current_app.config['BASE_URL']}/accept-invite/{token}"}
    send_async(f"Join {invitation.organization.name} on Hookline", [invitation.email],
               render_template("emails/invitation.txt", **context), render_template("emails/invitation.html", **context))


def _with_article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def revoke(invitation: Invitation, actor_id: int) -> bool:
    """Revoke a pending invitation (its link then says so); audit; commit. Return False if it was not pending."""
    revoked = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
                                 Invitation.revoked_at.is_(None)).values(revoked_at=utcnow())
    ).rowcount == 1
    if not revoked:
        db.session.rollback()
        return False
    record_audit(invitation.organization_id, "member.invite-revoke", actor_id=actor_id, target_object=invitation.id,
                 target_label=invitation.email, data={"email": invitation.email, "role": invitation.role})
    db.session.commit()
    return True


def invitation_for_token(token: str) -> Invitation:
    """Return the pending invitation a link's token names, or raise InvitationGone saying why it cannot be used."""
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None:
        raise InvitationGone("This invitation link is not valid. Ask the person who invited you for a new one.", 404)
    _check_usable(invitation)
    return invitation


def _check_usable(invitation: Invitation) -> None:
    """Raise InvitationGone (410) if the invitation was accepted, revoked or has expired."""
    if invitation.accepted_at is not None:
        raise InvitationGone("This invitation has already been used. Log in to open the organisation.", 410)
    if invitation.revoked_at is not None:
        raise InvitationGone("This invitation is no longer valid: it was revoked. Ask for a new one if you need it.",
                             410)
    if invitation.is_expired:
        raise InvitationGone("This invitation has expired (links work for 7 days). Ask for a new one.", 410)


def who_accepts(invitation: Invitation, current: User | None) -> str:
    """How this person can accept: ``new-account``, ``join`` (logged in as the invited account) or ``log-in``."""
    existing = find_user_by_email(invitation.email)
    if existing is None:
        return "new-account"
    return "join" if current is not None and current.id == existing.id else "log-in"


def accept(invitation: Invitation, current: User | None, name: str = "", password: str = "",
           confirmation: str = "") -> User:
    """Accept the invitation once; return the member, who is ``current`` or a new account; audit; commit.

    1. An email that has an account joins only as that account (its person logged in), so an invitation
       never lets someone act as an existing user.
    2. Otherwise the name and password are checked, and the password hashed, before anything is written.
    3. The link is claimed first, with one ``UPDATE … WHERE`` still pending and unexpired. Of requests that
       race with one link, one claims it; the others (on PostgreSQL they wait for its row lock) find it used,
       write nothing and raise InvitationGone (410).
    4. The new account, the membership and the audit entry follow in the same transaction; if the email got
       an account meanwhile by another way, all of it is rolled back and the link stays usable.
    """
    existing = find_user_by_email(invitation.email)
    if existing is not None:
        if current is None or current.id != existing.id:
            db.session.refresh(invitation)  # the account may be this link's, made since the link was read: 410
            _check_usable(invitation)
            raise MemberError(f"An account with {invitation.email} exists: log in as {invitation.email} to accept.")
        if existing.role_in(invitation.organization_id) is not None:
            raise MemberError(f"You are already a member of {invitation.organization.name}.")
        user = existing
    else:
        user = _new_user(invitation.email, name, password, confirmation)
    _claim(invitation)
    try:
        if existing is None:
            db.session.add(user)
            db.session.flush()
        membership = Membership(user_id=user.id, organization_id=invitation.organization_id, role=invitation.role)
        db.session.add(membership)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise MemberError(f"An account with {invitation.email} was just created: log in as {invitation.email} "
                          "and open this link again to join.") from None
    record_audit(invitation.organization_id, "member.join", actor_id=user.id, target_object=membership.id,
                 target_label=user.email, data={"email": user.email, "role": invitation.role,
                                                "invitation": invitation.id})
    db.session.commit()
    db.session.refresh(user)  # its memberships now include the new one
    return user


def _claim(invitation: Invitation) -> None:
    """Mark the invitation accepted if it is still pending and unexpired, else roll back and raise InvitationGone."""
    claimed = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
                                 Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow())
        .values(accepted_at=utcnow())
    ).rowcount == 1
    if not claimed:
        db.session.rollback()  # also expires ``invitation``: the next read sees what ended it
        _check_usable(invitation)
        raise InvitationGone("This invitation is no longer valid (used, revoked or expired).", 410)


def _new_user(email: str, name: str, password: str, confirmation: str) -> User:
    """Return a new account (not yet added to the session) after checking the name and password."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise MemberError("Give your name (at most 100 characters).")
    if has_control_characters(name):
        raise MemberError("The name must not contain line breaks, tabs or other control characters.")
    check_new_password(password, confirmation)
    user = User(email=email, name=name)
    user.set_password(password)
    return user
