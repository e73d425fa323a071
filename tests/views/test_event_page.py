"""The event page: what a Sentry user expects to read there, from the real sentry-sdk and from a crafted event."""

import re

import sentry_sdk

from webapp.core.extensions import db
from webapp.models import Project


def charge(order: dict):
    try:
        return order["card"]
    except KeyError as exc:
        raise RuntimeError("payment <failed> for order") from exc


def event_page(owner, world) -> str:
    [group] = world.groups()
    issue = owner.get(f"/orgs/acme/issues/{group.id}").get_data(as_text=True)
    link = re.search(r'href="(/orgs/acme/issues/\d+/events/\w+)"', issue).group(1)
    return owner.get(link).get_data(as_text=True)


def test_the_sdks_event_shows_its_chain_frames_source_breadcrumbs_tags_user_and_contexts(owner, world, sdk, run_worker):
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("customer", "acme-corp")
        scope.set_user({"id": "42", "email": "ann@example.com"})
        scope.set_context("os", {"name": "Linux", "version": "6.1"})
        scope.add_breadcrumb(category="payment", message="charging card <4242>", level="warning")
        try:
            charge({})
        except RuntimeError:
            sentry_sdk.capture_exception()
    sentry_sdk.flush()
    run_worker()
    page = event_page(owner, world)

    assert "\\u003c" not in page and "&amp;lt;" not in page  # nothing escaped twice
    # The chain: the exception raised last first, then its cause, each with type and value.
    runtime = page.index('<span class="exception-type">RuntimeError</span>')
    key_error = page.index('<span class="exception-type">KeyError</span>')
    assert runtime < key_error
    assert "payment &lt;failed&gt; for order" in page
    assert "Raised earlier, and led to the exception above" in page[runtime:]
    # Frames: function and file:line, in-app marked, the source with the raising line highlighted.
    assert re.search(r'<code class="frame-function">charge</code> in <code>tests/views/test_event_page.py:\d+</code>', page)
    assert "in app</span>" in page
    assert ('<li class="current"><code><mark>        raise RuntimeError(&#34;payment &lt;failed&gt; for order&#34;) '
            'from exc</mark></code></li>') in page
    assert "<code>    except KeyError as exc:</code>" in page  # a line of pre_context
    # Breadcrumbs, tags (the SDK's and Sentry's derived ones), user, contexts.
    crumbs = page[page.index('id="breadcrumbs-heading"'):]
    assert re.search(r'<td[^>]*>payment</td><td[^>]*>warning</td><td[^>]*class="crumb-message">charging card &lt;4242&gt;'
                     r'</td>', crumbs)
    tags = page[page.index('data-testid="event-tags"'):]
    for key, value in [("customer", "acme-corp"), ("environment", "test"), ("release", "web@1.2.3"), ("level", "error"),
                       ("handled", "yes")]:
        assert f'<span class="tag-key">{key}</span><span class="tag-value">{value}</span>' in tags
    assert "<td>ann@example.com</td>" in page[page.index('id="user-heading"'):]
    assert "<td>Linux</td>" in page[page.index('id="contexts-heading"'):]
    # The raw JSON is there, folded, pretty-printed and escaped once.
    raw = page[page.index('<details class="raw-json">'):]
    assert "<summary>Raw JSON</summary>" in raw
    assert '&#34;customer&#34;,\n' in raw or '"customer",\n' in raw
    assert "payment &lt;failed&gt; for order" in raw


CRAFTED = {
    "event_id": "9f2c6a8e0b3d4c1fa5e7d9b2c4f6a8e0",
    "platform": "python",
    "level": "error",
    "environment": "production",
    "tags": [["region", "eu-west"], ["build", "<b>41</b>"]],
    "exception": {"values": [{
        "type": "ConnectionError",
        "value": "upstream <gateway> timed out",
        "module": "requests.exceptions",
        "mechanism": {"type": "flask", "handled": False},
        "stacktrace": {"frames": [
            {"function": "pay", "module": "shop.views", "filename": "shop/views.py", "lineno": 12, "in_app": True,
             "pre_context": ["def pay():"], "context_line": "    return gateway.charge()", "post_context": ["", "# end"],
             "vars": {"amount": "42"}},
            {"function": "send", "module": "requests.sessions", "filename": "requests/sessions.py", "lineno": 700,
             "in_app": False},
            {"function": "urlopen", "module": "urllib3.connectionpool", "filename": "urllib3/connectionpool.py",
             "lineno": 800, "in_app": False, "context_line": "        raise ReadTimeoutError()"},
        ]},
    }]},
    "breadcrumbs": {"values": [
        {"timestamp": "2026-11-30T09:15:02.250Z", "category": "http", "level": "info", "type": "http",
         "data": {"method": "POST", "url": "https://gateway.example/charge"}},
        {"timestamp": 1796030103.5, "category": "query", "message": "SELECT * FROM \"order\""},
    ]},
    "request": {"method": "POST", "url": "https://shop.example/pay", "query_string": "retry=1",
                "headers": {"User-Agent": "curl/8.0", "Content-Type": "application/json"}, "data": {"amount": 42}},
    "user": {"id": "7", "username": "bob"},
    "contexts": {"runtime": {"name": "CPython", "version": "3.11.9"},
                 "browser": {"name": "Firefox", "version": "133"}},
}


def test_a_crafted_event_folds_library_frames_and_shows_request_and_contexts(app, owner, world, run_worker):
    with app.app_context():
        key = db.session.get(Project, world.project_id).client_keys[0].public_key
    response = app.test_client().post(f"/api/{world.project_id}/store/?sentry_key={key}", json=CRAFTED)
    assert response.status_code == 200
    run_worker()
    page = event_page(owner, world)

    assert "\\u003c" not in page and "&amp;lt;" not in page and "<b>41</b>" not in page
    assert "upstream &lt;gateway&gt; timed out" in page and "mechanism flask · unhandled" in page
    # Most recent call first: the two library frames fold into one <details>, then the in-app frame.
    folded = re.search(r'<li class="frame-run"><details><summary>2 library frames</summary>(.*?)</details>', page, re.S)
    assert folded and "urlopen" in folded.group(1) and "send" in folded.group(1)
    assert folded.group(1).index("urlopen") < folded.group(1).index("send")
    assert page.index("2 library frames") < page.index('<code class="frame-function">pay</code>')
    assert re.search(r'<ol class="source" [^>]*start="11">', page)  # line numbers from lineno - len(pre_context)
    assert "<li class=\"current\"><code><mark>    return gateway.charge()</mark></code></li>" in page
    assert "Local variables (1)" in page
    tags = page[page.index('data-testid="event-tags"'):]
    for key, value in [("region", "eu-west"), ("build", "&lt;b&gt;41&lt;/b&gt;"), ("environment", "production"),
                       ("runtime", "CPython 3.11.9"), ("browser", "Firefox 133"), ("handled", "no"),
                       ("url", "https://shop.example/pay")]:
        assert f'<span class="tag-key">{key}</span><span class="tag-value">{value}</span>' in tags
    crumbs = page[page.index('id="breadcrumbs-heading"'):]
    assert '<time datetime="2026-11-30T09:15:02.250000+00:00">09:15:02.250 UTC</time>' in crumbs
    assert "https://gateway.example/charge" in crumbs and "SELECT * FROM &#34;order&#34;" in crumbs
    request = page[page.index('id="request-heading"'):]
    assert '<strong>POST</strong> <span class="url">https://shop.example/pay</span>' in request
    assert "<code>retry=1</code>" in request and "<th scope=\"row\">User-Agent</th><td>curl/8.0</td>" in request
    assert "<td>bob</td>" in page[page.index('id="user-heading"'):]
    contexts = page[page.index('id="contexts-heading"'):]
    assert "<h3>browser</h3>" in contexts and "<h3>runtime</h3>" in contexts


def test_a_message_event_without_tags_or_breadcrumbs_says_so(app, owner, world, run_worker):
    with app.app_context():
        key = db.session.get(Project, world.project_id).client_keys[0].public_key
    app.test_client().post(f"/api/{world.project_id}/store/?sentry_key={key}",
                           json={"message": "Disk <almost> full\nsecond line", "level": "warning"})
    run_worker()
    page = event_page(owner, world)
    assert "Disk &lt;almost&gt; full\nsecond line</pre>" in page
    assert '<span class="tag-key">level</span><span class="tag-value">warning</span>' in page
    assert "No breadcrumbs" in page and "Exception" not in page
