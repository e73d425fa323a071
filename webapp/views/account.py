"""The person's own settings: personal API tokens, and the API's documentation."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markdown_it import MarkdownIt
from markupsafe import Markup

from ..accounts.tokens import create_token, list_tokens, revoke_token
from ..core.forms import EmptyForm
from .api.schema import openapi_document
from .helpers import confirm_step, confirmed

bp = Blueprint("account", __name__)

# The OpenAPI document's texts are CommonMark (`code` spans); raw HTML in them is escaped, not passed through.
_markdown = MarkdownIt("commonmark", {"html": False})


@bp.app_template_filter("inline_markdown")
def inline_markdown(text: str | None) -> Markup:
    """Render one line of the API document's Markdown as HTML."""
    return Markup(_markdown.renderInline(text or ""))


@bp.route("/settings/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    new_token = error = None
    if request.method == "POST" and EmptyForm().validate_on_submit():
        try:
            _, new_token = create_token(current_user, request.form.get("name", ""))
        except ValueError as exc:
            error = str(exc)
    return render_template("account/tokens.html", tokens=list_tokens(current_user), new_token=new_token,
                           error=error, form=EmptyForm()), 400 if error else 200


@bp.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id):
    if not confirmed():
        return confirm_step("Revoke this token?", "Every request that sends it gets 401 from now on; this cannot be undone.",
                            "Revoke token", url_for("account.tokens"))
    if revoke_token(current_user, token_id):
        flash("Token revoked; requests with it now get 401.", "info")
    return redirect(url_for("account.tokens"))


@bp.route("/api/openapi.json")
def openapi_json():
    return jsonify(openapi_document(current_app.config["BASE_URL"]))


@bp.route("/api-docs")
@login_required
def api_docs():
    document = openapi_document(current_app.config["BASE_URL"])
    return render_template("account/api_docs.html", document=document)
