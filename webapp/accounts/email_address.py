"""Which email addresses Hookline takes: only those the mail library sends to exactly as they are shown.

Every place that takes an email (invitations, login, forgot password, the CLI) calls ``normalize_email``.
The syntax is the standard library's RFC 5322 parser (``email.headerregistry.Address``); what is sent is
Flask-Mail's ``sanitize_address``, which builds the SMTP recipient. An address is taken only if both give it
back unchanged, so ``<x>@y.test`` or ``a@b.test, c@d.test`` can never be shown as one address and mailed to
another.
"""

from __future__ import annotations

from email.errors import MessageError
from email.headerregistry import Address

from flask_mail import sanitize_address

from ..core.names import has_control_characters

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, less its angle brackets
EXAMPLE = "Enter an email address, such as name@example.com"


class EmailAddressError(ValueError):
    """The text is not an email address Hookline can send to as shown; the message says why."""


def normalize_email(text: str | None) -> str:
    """Return the address stripped and lowercased, or raise EmailAddressError.

    1. Refuse what the parser would accept but a person reads differently: spaces, control characters and
       quoted local parts (``"a b"@x.test``), and non-ASCII (the mail library re-encodes it).
    2. Parse it as one RFC 5322 addr-spec; what the parser gives back must be the text itself (a comment
       such as ``(x)a@y.test`` or a second ``@`` fails here).
    3. The recipient Flask-Mail hands to SMTP must be the text itself (a comma or ``<…>`` fails here).
    """
    email = (text or "").strip().lower()
    if not email:
        raise EmailAddressError(f"{EXAMPLE}.")
    if len(email) > MAX_LENGTH:
        raise EmailAddressError(f"An email address has at most {MAX_LENGTH} characters.")
    if has_control_characters(email) or any(character.isspace() for character in email):
        raise EmailAddressError(f"{EXAMPLE}, without spaces, line breaks or other control characters.")
    if not email.isascii() or '"' in email:
        raise EmailAddressError(f"{EXAMPLE}: letters a-z, digits and . _ + - ' before the @ (no quotes); for an "
                                "internationalised domain, its xn-- form.")
    try:
        address = Address(addr_spec=email)
        sent_to = sanitize_address(email)
    # HeaderParseError is a MessageError, InvalidHeaderDefect a ValueError; the parser raises IndexError on "a@".
    except (ValueError, MessageError, IndexError):
        address = sent_to = None
    if address is None or address.addr_spec != email or sent_to != email or not address.username \
            or "." not in address.domain.strip("."):
        raise EmailAddressError(f"{EXAMPLE}: one address, with no < >, parentheses, commas, semicolons, "
                                "colons or a second @.")
    return email
