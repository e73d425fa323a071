"""Passwords: the rules for a new one, changing it, and resetting a forgotten one with a one-time link."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import delete, select, update

from ..core.audit import record_audit
from ..core.extensions import db
from ..dispatch.notifications import send_async
from ..models import PasswordReset, User, find_user_by_email, utcnow
from .tokens import count_tokens, end_tokens, hash_token

logger = logging.getLogger(__name__)

MIN_LENGTH = 8
RESET_VALID_FOR = timedelta(hours=1)


class PasswordError(ValueError):
    """The password cannot be set as asked; the message says why."""


class ResetLinkGone(Exception):
    """The reset link cannot be used (unknown, used or expired); ``status`` is 404 or 410."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def check_new_password(password: str, confirmation: str) -> None:
    """Raise PasswordError unless ``password`` is long enough and typed the same twice."""
    if len(password or "") < MIN_LENGTH:
        raise PasswordError(f"The password must be at least {MIN_LENGTH} characters long.")
    if password != confirmation:
        raise PasswordError("The two passwords are not the same.")


def change_password(user: User, current: str, new: str, confirmation: str, keep_tokens: bool = False) -> None:
    """Check the current password, set the new one, end every session of the person; audit; commit.

    Unused reset links end too: they were asked for before this password existed. The person's API tokens
    end as well unless ``keep_tokens``.
    """
    if not user.check_password(current or ""):
        raise PasswordError("The current password is wrong.")
    check_new_password(new, confirmation)
    _set_password(user, new, "user.password-change", keep_tokens=keep_tokens)
    db.session.commit()


def send_reset_link(email: str) -> None:
    """Email a one-time reset link to the account with this email, if there is one; commit.

    Run by a job (``accounts.jobs``): the request that asked only queued it, the same for every email, so
    neither its answer nor its time tells who has an account. A new link replaces the person's earlier
    unused ones.
    """
    user = find_user_by_email(email or "")
    if user is None:
        logger.info("password_reset.unknown_email: no email sent")
        return
    db.session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id))
    token = secrets.token_urlsafe(32)
    db.session.add(PasswordReset(user_id=user.id, token_hash=hash_token(token), expires_at=utcnow() + RESET_VALID_FOR))
    link = f"{current_app.config['BASE_URL']}/reset-password/{token}"
    context = {"user": user, "link": link, "hours": int(RESET_VALID_FOR.total_seconds() // 3600)}
    send_async("Reset your Hookline password", [user.email], render_template("emails/password_reset.txt", **context),
               render_template("emails/password_reset.html", **context))
    db.session.commit()


def reset_for_token(token: str) -> PasswordReset:
    """Return the reset a link's token names, or raise ResetLinkGone saying why it cannot be used."""
    reset = db.session.scalar(select(PasswordReset).where(PasswordReset.token_hash == hash_token(token)))
    if reset is None:
        raise ResetLinkGone("This password reset link is not valid. Ask for a new one.", 404)
    if reset.used_at is not None:
        raise ResetLinkGone("This password reset link has already been used. Ask for a new one.", 410)
    if reset.expires_at <= utcnow():
        raise ResetLinkGone("This password reset link has expired (links work for one hour). Ask for a new one.", 410)
    return reset


def reset_password(reset: PasswordReset, password: str, confirmation: str, keep_tokens: bool = False) -> User:
    """Set the new password through the link, once; end every session (and, unless ``keep_tokens``, every API
    token) of the person; audit; commit.

    The link is claimed with one ``UPDATE … WHERE used_at IS NULL``, so two requests with the same link
    cannot both set a password.
    """
    check_new_password(password, confirmation)
    claimed = db.session.execute(
        update(PasswordReset).where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None),
                                    PasswordReset.expires_at > utcnow()).values(used_at=utcnow())
    ).rowcount == 1
    if not claimed:
        db.session.rollback()
        raise ResetLinkGone("This password reset link has already been used or has expired. Ask for a new one.", 410)
    user = reset.user
    _set_password(user, password, "user.password-reset", keep_reset_id=reset.id, keep_tokens=keep_tokens)
    db.session.commit()
    return user


def _set_password(user: User, password: str, event: str, keep_reset_id: int | None = None,
                  keep_tokens: bool = False) -> None:
    """Set the password, end the person's sessions, other reset links and (unless ``keep_tokens``) API tokens;
    audit in each of their organisations, saying how many tokens ended or stayed.

    A password is reset or changed when someone else may know the old one; a token they made with it would
    otherwise outlive the change.
    """
    user.set_password(password)
    user.end_sessions()
    stale = delete(PasswordReset).where(PasswordReset.user_id == user.id)
    if keep_reset_id is not None:  # the used link stays, so opening it again says "already used"
        stale = stale.where(PasswordReset.id != keep_reset_id)
    db.session.execute(stale)
    tokens = {"api_tokens_kept": count_tokens(user)} if keep_tokens else {"api_tokens_ended": end_tokens(user)}
    for membership in user.memberships:
        record_audit(membership.organization_id, event, actor_id=user.id, target_object=user.id,
                     target_label=user.email, data=tokens)
