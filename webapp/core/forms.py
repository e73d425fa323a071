"""Dashboard forms (Flask-WTF: every form carries a CSRF token)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, URLField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])


class AppForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the app a name."), Length(max=64)])
    webhook_url = URLField("Webhook URL", validators=[DataRequired(message="Enter the URL to send webhooks to.")])
    issue = BooleanField("issue")
    error = BooleanField("error")
    comment = BooleanField("comment")

    def selected_resources(self) -> list[str]:
        return [name for name in ("issue", "error", "comment") if self[name].data]


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that POST."""
