"""One rule for every email Hookline takes: an address is taken only if the mail library sends to it as shown."""

import pytest
from flask_mail import sanitize_address

from webapp.accounts.email_address import EmailAddressError, normalize_email


@pytest.mark.parametrize("text", [
    "<svg/onload=alert(12)>@x.test",  # SMTP would send to svg/onload=alert
    "bob@x.test <eve@y.test>", "<bob@x.test>", "bob@x.test>",  # angle brackets: a display name and another address
    '"bob"@x.test', '"bob eve"@x.test',  # quotes
    "bob@x.test,eve@y.test", "bob,eve@x.test", "bob@x.test;eve@y.test",  # lists
    "bob eve@x.test", "bob\t@x.test", "bob\r\n@x.test", "bob\x00@x.test", "bob\u2028@x.test",  # spaces, controls
    "bob@eve@x.test", "@x.test", "bob@", "bob", "",  # not one local part and one domain
    "(eve)bob@x.test", "bob@x.test(eve)",  # comments, which parsers drop
    "bob:eve@x.test", "bob\\eve@x.test", "bob..eve@x.test", ".bob@x.test", "bob@x..test", "bob@x.test.",
    "bob@localhost", "bób@x.test", "bob@exämple.test",  # no dot in the domain; non-ASCII (re-encoded when sent)
    "b" * 250 + "@x.test",  # longer than SMTP allows
])
def test_refused(text):
    with pytest.raises(EmailAddressError, match="email address"):
        normalize_email(text)


@pytest.mark.parametrize(("text", "taken"), [
    ("ann@example.com", "ann@example.com"),
    ("  Ann@Example.COM\n", "ann@example.com"),  # surrounding white space goes, case is folded
    ("o'brien+hooks@mail.example.com", "o'brien+hooks@mail.example.com"),
    ("first.last@xn--bcher-kva.example", "first.last@xn--bcher-kva.example"),
])
def test_taken_and_sent_exactly_as_shown(text, taken):
    assert normalize_email(text) == taken
    assert sanitize_address(taken) == taken  # the SMTP recipient Flask-Mail builds
