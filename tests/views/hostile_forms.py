"""Every form of the dashboard, found the way a person finds them: by following links from the first page."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from webapp.core.extensions import db

# Links the crawl does not follow: logging out would end the walk; the API and ingestion are walked elsewhere.
NOT_FOLLOWED = ("/logout", "/api/", "/static/")
VISITS_PER_ENDPOINT = 5  # enough to reach forms that only some rows show (a request log entry opened)


@dataclass
class Form:
    page: str  # where the form was found
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # (name, value) as the browser would send them
    session: object = None  # the logged-in (or anonymous) tests.conftest.Session whose page showed the form

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _ in self.fields if name != "csrf_token"})

    def body(self, name: str, value: str) -> str:
        """The urlencoded body with ``name`` set to ``value``: UTF-8, a lone surrogate as the raw bytes it spells.

        A POST carries the session's CSRF token, as the pages send it (a hidden field, or htmx's header)."""
        pairs = [(key, value if key == name else old) for key, old in self.fields]
        if self.method == "post" and "csrf_token" not in dict(pairs):
            pairs.append(("csrf_token", self.session.csrf_token()))
        return urlencode(pairs, encoding="utf-8", errors="surrogatepass")

    def send(self, name: str, value: str):
        """Send the form as its page would (with that person's session), ``name`` holding ``value``."""
        if self.method == "get":
            return self.session.get(self.action + ("&" if "?" in self.action else "?") + self.body(name, value))
        return self.session.client.post(self.action, data=self.body(name, value),
                                        content_type="application/x-www-form-urlencoded")


class _FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self._select: str | None = None
        self._select_value: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {key: value or "" for key, value in attrs}
        if tag == "option" and self._select is not None and (self._select_value is None or "selected" in attrs):
            self._select_value = attrs.get("value", "")
        elif tag == "a" and attrs.get("href"):
            self.links.append(urljoin(self.page, attrs["href"]))
        elif tag == "form":
            self._form = Form(self.page, urljoin(self.page, attrs.get("action") or self.page),
                              (attrs.get("method") or "get").lower())
        elif self._form is None or "name" not in attrs:
            return
        elif tag == "input" and attrs.get("type") not in {"submit", "button", "reset"}:
            if attrs.get("type") in {"checkbox", "radio"} and "checked" not in attrs:
                self._form.fields.append((attrs["name"], attrs.get("value") or "on"))  # ticked: the field is sent
            else:
                self._form.fields.append((attrs["name"], attrs.get("value", "")))
        elif tag == "button" and attrs.get("value"):
            self._form.fields.append((attrs["name"], attrs["value"]))
        elif tag == "textarea":
            self._textarea = (attrs["name"], [])
        elif tag == "select":
            self._select, self._select_value = attrs["name"], None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields.append((self._textarea[0], "".join(self._textarea[1])))
            self._textarea = None
        elif tag == "select" and self._select is not None and self._form is not None:
            self._form.fields.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def crawl_forms(app, session, start: str = "/") -> list[Form]:
    """Follow the dashboard's links from ``start`` (a few pages per endpoint) and return every form on them."""
    adapter = app.url_map.bind("hookline.test")
    seen, visits, forms, queue = set(), {}, {}, [start]
    while queue:
        path = queue.pop(0)
        try:
            endpoint, _ = adapter.match(urlsplit(path).path)
        except HTTPException:
            continue
        if path in seen or visits.get(endpoint, 0) >= VISITS_PER_ENDPOINT:
            continue
        seen.add(path)
        visits[endpoint] = visits.get(endpoint, 0) + 1
        response = session.get(path)
        if response.status_code != 200 or not response.mimetype == "text/html":
            continue
        parser = _FormParser(f"http://hookline.test{path}")
        parser.feed(response.get_data(as_text=True))
        for form in parser.forms:
            form.session = session
            forms.setdefault((_local(form.action), form.method, tuple(form.names)), form)
        queue.extend(local for local in map(_local, parser.links)
                     if local and not local.startswith(NOT_FOLLOWED) and local not in seen)
    for form in forms.values():
        form.action = _local(form.action)
    return list(forms.values())


def _local(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.netloc not in ("", "hookline.test"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def endpoint_of(app, path: str, method: str) -> str:
    return app.url_map.bind("hookline.test").match(urlsplit(path).path, method=method.upper())[0]


def database_rows(app) -> dict[str, list[tuple]]:
    """Every row of every table, to show that a refused request saved nothing."""
    with app.app_context():
        rows = {table.name: sorted(map(tuple, db.session.execute(select(table))), key=repr)
                for table in db.metadata.sorted_tables}
        db.session.remove()
        return rows


def fill_every_page(app, receiver) -> None:
    """Give org acme something on every page: two apps with logged deliveries, a project with a client key, an
    issue with a comment, an issue rule and a metric rule with an incident, an API token, a second organisation."""
    from tests.lifecycle import send
    from webapp.accounts.tokens import create_token
    from webapp.alerts.alert_rules import save_issue_rule, save_metric_rule
    from webapp.alerts.eventstore import store_event
    from webapp.alerts.workflow import add_comment
    from webapp.apps.internal_apps import disable_app, register_internal_app
    from webapp.apps.projects import create_project
    from webapp.models import Group, Incident, Membership, Organization, User, utcnow

    with app.app_context():
        owner = db.session.scalar(select(User).where(User.email == "owner@example.com"))
        organization = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        project = create_project(organization, "Web")
        everything = register_internal_app(organization, "Everything", receiver.url("/all"), ["issue", "comment"])
        bare = register_internal_app(organization, "Alerts only", receiver.url("/alerts"), [])
        receiver.secrets.update({"/all": everything.client_secret, "/alerts": bare.client_secret})
        receiver.respond(200, path="/all")
        receiver.respond(200, path="/alerts")
        everything_id = everything.id
        # An app whose receiver fails, so its page offers "Resend failed messages" with its form.
        failing = register_internal_app(organization, "Failing", receiver.url("/failing"), ["issue"])
        receiver.respond(500, path="/failing")
        failing_id = failing.id
        store_event(project, {"event_id": "a" * 32, "level": "error", "message": "card declined",
                              "exception": {"values": [{"type": "ValueError", "value": "card declined"}]}})
        group = db.session.scalar(select(Group))
        add_comment(group, "Looking into it.", owner)
        db.session.commit()
        actions = [{"sentry_app_id": bare.id, "settings": []}]
        save_issue_rule(project, {"name": "New issues", "trigger": "first_seen", "frequency_minutes": "30"}, actions)
        rule = save_metric_rule(project, {"name": "Error spike", "time_window_minutes": "10",
                                          "warning_threshold": "5", "critical_threshold": "10"}, actions)
        db.session.add(Incident(organization_id=organization.id, alert_rule_id=rule.id, identifier=1,
                                title="Error spike", status="critical", metric_value=12, date_started=utcnow()))
        disable_app(bare, owner.id, "Moved to the new pager.")  # so that the app page offers "Enable"
        create_token(owner, "terraform")
        # A second member, so the members page offers Remove and Change role (never offered for the only owner).
        from webapp.accounts.people import create_user

        create_user("dev@example.com", "a-long-password-1", "acme", "member")
        other = Organization(slug="beta", name="Beta Industries")
        db.session.add(other)
        db.session.flush()
        db.session.add(Membership(user_id=owner.id, organization_id=other.id, role="member"))
        db.session.commit()
    send(app, everything_id, 2)
    send(app, failing_id, 1)
