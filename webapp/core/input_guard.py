"""What text and ids a request may carry: one check at the edge, before any view reads its input.

Every path value, query parameter, form field and JSON string of a dashboard or API request is checked once, in
``refuse_unsafe_input`` (a ``before_request`` hook), so no view has to remember it. A NUL byte makes PostgreSQL
refuse the whole statement, a lone surrogate cannot be encoded to UTF-8 at all, and a line break in a URL or a
name would travel on into headers and emails. The ingestion endpoints are exempt: they read raw bodies that
SDKs send, and check them themselves.
"""

from __future__ import annotations

import re

from flask import Flask, request
from werkzeug.exceptions import BadRequest

MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns (PostgreSQL's int4): no row has a larger one


# Single-line text (names, URLs, slugs, ids, search words): no C0 or C1 control character, no DEL, no Unicode
# line or paragraph separator, and no lone surrogate (half of a UTF-16 pair, which JSON's \ud800 can spell).
SINGLE_LINE_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Free text that may span lines (a comment, an alert action's settings, a password): tab, line feed and
# carriage return are kept; NUL, the other C0 controls, DEL and lone surrogates are not.
FREE_TEXT_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
EXEMPT_BLUEPRINTS = frozenset({"ingest"})  # raw bodies from SDKs, checked by ingestion itself
MAX_JSON_NESTING = 64  # far deeper than any API body; deeper ones are refused before they are walked


class UnsafeInput(BadRequest):
    """400: a request carried a character its field may not hold; nothing was read further or saved."""


def init_app(app: Flask) -> None:
    app.before_request(refuse_unsafe_input)


def refuse_unsafe_input() -> None:
    """Raise UnsafeInput if any path value, query parameter, form field or JSON string holds a refused character.

    1. Path values and query parameters (names and values) are single-line.
    2. Form fields may hold tab, CR and LF (a form's own validation refuses them in one-line fields, next to the
       field); nothing else of the refused characters.
    3. A JSON body's keys and strings, at any depth, are single-line.
    """
    if request.blueprint in EXEMPT_BLUEPRINTS or request.endpoint == "static":
        return
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):  # a converter's number is checked by the converter
            _check(f"The address ({name})", value, SINGLE_LINE_REFUSED)
    for name, value in request.args.items(multi=True):
        _check(f"The query parameter {name!r}", name, SINGLE_LINE_REFUSED)
        _check(f"The query parameter {name!r}", value, SINGLE_LINE_REFUSED)
    for name, value in request.form.items(multi=True):
        _check(f"The field {name!r}", name, SINGLE_LINE_REFUSED)
        # A line break or tab in a one-line field is left to its form, which says so next to the field and keeps
        # what was typed; what no form can show back (NUL, other controls, lone surrogates) stops here.
        _check(f"The field {name!r}", value, FREE_TEXT_REFUSED)
    if request.is_json:
        _check_json(_parsed_json())


def _parsed_json():
    """The request's JSON (None if it is not JSON); a body nested too deeply for the parser is a 400."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        raise UnsafeInput("The JSON body is nested too deeply.") from None


def _check_json(body) -> None:
    """Check every key and string of ``body``, breadth first (no recursion for a hostile nesting to exhaust).

    A refusal names the place as the API's other errors name fields: ``webhookUrl``, ``rateLimit.window``,
    ``events[0]``.
    """
    level, depth = [("The JSON body", body)], 0
    while level:
        depth += 1
        if depth > MAX_JSON_NESTING:
            raise UnsafeInput(f"The JSON body is nested more than {MAX_JSON_NESTING} levels deep.")
        nested = []
        for where, value in level:
            inside = "" if depth == 1 else f"{where}."
            if isinstance(value, str):
                _check(where, value, SINGLE_LINE_REFUSED)
            elif isinstance(value, dict):
                for key, item in value.items():
                    _check(f"{inside}{key!r}", key, SINGLE_LINE_REFUSED)
                    nested.append((f"{inside}{_printable(key)}", item))
            elif isinstance(value, list):
                nested.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
        level = nested


def _printable(key: str) -> str:
    return key if key.isprintable() else repr(key)


def _check(where: str, value: str, refused: re.Pattern) -> None:
    """Raise UnsafeInput naming ``where`` (any refused character in a name is shown escaped) if ``value`` holds
    a character ``refused`` matches."""
    found = refused.search(value)
    if found is not None:
        raise UnsafeInput(f"{where}: {describe_character(found.group())} is not allowed here. Nothing was saved.")


def describe_character(character: str) -> str:
    """Name a refused character for a person: "a NUL character (U+0000)", "a line break (U+000A)"."""
    code = ord(character)
    if code == 0:
        kind = "a NUL character"
    elif character in "\r\n\u2028\u2029":
        kind = "a line break"
    elif character == "\t":
        kind = "a tab"
    elif 0xD800 <= code <= 0xDFFF:
        kind = "an unpaired surrogate"
    else:
        kind = "a control character"
    return f"{kind} (U+{code:04X})"


def parse_row_id(text) -> int | None:
    """Return the row id ``text`` spells (ASCII digits, 1 to MAX_ROW_ID), else None.

    ``str.isdigit()`` alone lets through "²", which ``int()`` then refuses, and numbers beyond the database's
    integers, which PostgreSQL refuses: either would be a 500 instead of "no such row".
    """
    text = str(text)
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ROW_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ROW_ID else None
