"""Read what the test SMTP server received: the one-time links Hookline emails."""

from __future__ import annotations

import re


def link_in_last_mail(smtp, to: str, kind: str) -> str:
    """Return the path of the ``kind`` link (accept-invite, reset-password) in the newest email to ``to``."""
    mails = [mail for mail, (_, recipients) in zip(smtp.messages, smtp.envelopes) if to in recipients]
    assert mails, f"no email to {to}"
    text = mails[-1].get_body(("plain",)).get_content()
    html = mails[-1].get_body(("html",)).get_content()
    match = re.search(rf"http://hookline\.test(/{kind}/[A-Za-z0-9_-]+)", text)
    assert match, text
    assert match.group(0) in html
    return match.group(1)
