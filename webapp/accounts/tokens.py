"""Create, find and revoke personal API tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, func, select, update

from ..core.audit import record_audit
from ..core.extensions import db
from ..models import ApiToken, Membership, User, utcnow

TOKEN_PREFIX = "hkl_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the row and the token, which is shown this once and never again."""
    name = (name or "").strip() or "API token"
    if len(name) > 64:
        raise ValueError("A token name can be at most 64 characters.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:12])
    db.session.add(row)
    db.session.flush()
    _audit(user, row, "token.create")
    db.session.commit()
    return row, token


def user_for_token(token: str) -> User | None:
    """Return the token's user (and note the use), or None for an unknown token."""
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return None
    db.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used=utcnow()))
    db.session.commit()
    return row.user


def list_tokens(user: User) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())))


def revoke_token(user: User, token_id: int) -> bool:
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        return False
    _audit(user, row, "token.revoke")
    db.session.delete(row)
    db.session.commit()
    return True


def count_tokens(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id))


def end_tokens(user: User) -> int:
    """Delete every API token of ``user`` (requests with them get 401 from the commit on); return how many.

    The caller audits and commits (a password reset says in its own entry how many tokens ended).
    """
    return db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount


def _audit(user: User, row: ApiToken, event: str) -> None:
    """Audit the token in every organisation of its user (it acts there with the user's role); never the token."""
    for organization_id in db.session.scalars(select(Membership.organization_id).where(Membership.user_id == user.id)):
        record_audit(organization_id, event, actor_id=user.id, target_object=row.id, target_label=row.name,
                     data={"label": row.name})
