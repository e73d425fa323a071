"""What a name that people type (for an app, project, organisation or person) may contain."""

from __future__ import annotations

import re

# An organisation's or project's slug, as it appears in URLs: lowercase letters, digits and inner hyphens.
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")

# C0 and C1 control characters, DEL, and Unicode's line and paragraph separators. Names reach email
# subjects: a line break there would start a new header (Flask-Mail refuses such a message outright).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def one_line(text: str) -> str:
    """Return ``text`` with each run of control characters replaced by a space (for names saved before the rule)."""
    return CONTROL_CHARACTERS.sub(" ", text)
