"""Accepting an invitation through its emailed link (no login needed to open it)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from ..accounts.invitations import InvitationGone, accept, invitation_for_token, who_accepts
from ..accounts.members import ROLE_NAMES, ROLE_WITH_ARTICLE, MemberError
from ..accounts.passwords import MIN_LENGTH, PasswordError
from .helpers import link_gone

bp = Blueprint("invitations", __name__)


@bp.route("/accept-invite/<token>", methods=["GET", "POST"])
def accept_view(token):
    try:
        invitation = invitation_for_token(token)
    except InvitationGone as exc:
        return link_gone("This invitation cannot be used", exc, exc.status)
    current = current_user._get_current_object() if current_user.is_authenticated else None
    error = None
    if request.method == "POST":
        try:
            user = accept(invitation, current, request.form.get("name", ""), request.form.get("password", ""),
                          request.form.get("confirmation", ""))
        except (MemberError, PasswordError) as exc:
            error = str(exc)
        except InvitationGone as exc:
            return link_gone("This invitation cannot be used", exc, exc.status)
        else:
            if current is None or current.id != user.id:
                login_user(user)
            flash(f"Welcome to {invitation.organization.name}: you are {ROLE_WITH_ARTICLE[invitation.role]}.",
                  "success")
            return redirect(url_for("apps.list_apps", org_slug=invitation.organization.slug), 303)
    return render_template("invitations/accept.html", invitation=invitation, role_name=ROLE_NAMES[invitation.role],
                           how=who_accepts(invitation, current), error=error, min_length=MIN_LENGTH,
                           no_org_nav=True), 400 if error else 200
