"""Sentry's ingestion protocol: project-key auth, compressed bodies, envelopes and legacy store bodies."""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import brotli

# Item types an SDK may send that Hookline accepts and drops: they are not errors.
EVENT_ITEM_TYPES = frozenset({"event"})

# Deeper than this, an event is refused: Hookline (and every receiver) serialises events again, recursively.
MAX_JSON_DEPTH = 64
# An envelope's header lines (its own and each item's), decompressed: sentry-sdk's are under 1 KB, and the first
# is read to find the key, when the request names none, so a request without a key costs little whatever follows.
MAX_HEADER_LINE_BYTES = 16 * 1024
# Items one envelope may carry: an SDK sends an event with its attachments, or a few sessions.
MAX_ENVELOPE_ITEMS = 100

MISSING_KEY = "Missing sentry_key: send X-Sentry-Auth or ?sentry_key= with the project's DSN key."


class IngestError(Exception):
    """The request cannot be ingested; ``status`` and ``detail`` go back to the SDK as JSON."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class Envelope:
    headers: dict
    items: list[tuple[dict, bytes]]

    def first_event(self, max_bytes: int) -> tuple[dict | None, int]:
        """Return the first event item, parsed, and how many more event items there are (dropped unread)."""
        payloads = [payload for item_headers, payload in self.items
                    if isinstance(item_headers.get("type"), str)  # a list or object is no item type
                    and item_headers["type"] in EVENT_ITEM_TYPES]
        if not payloads:
            return None, 0
        return parse_event(payloads[0], "event item", max_bytes), len(payloads) - 1


def public_key_from(headers, args) -> str | None:
    """Find the project's public key in the request: X-Sentry-Auth, Authorization: Sentry …, else ?sentry_key=.

    This order is Relay's: a key in the envelope's own header counts only when the request names none.
    """
    for header in ("X-Sentry-Auth", "Authorization"):
        value = headers.get(header, "")
        if value.lower().startswith("sentry "):
            # Comma-separated name=value pairs, split as Relay splits them (a regular expression that
            # backtracked from every word character took 0.4 s on an 8 KB header, before any key was checked).
            for pair in value[7:].split(","):
                name, _, given = pair.partition("=")
                if name.strip() == "sentry_key" and given.strip():
                    return given.strip()
    return args.get("sentry_key") or None


def public_key_from_dsn(envelope_headers: dict) -> str | None:
    """Return the public key of the DSN an envelope's header names (sentry-sdk puts its DSN there)."""
    dsn = envelope_headers.get("dsn")
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username
    except ValueError:  # not a URL at all: no key in it
        return None


def decompress(raw: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """Return the body decompressed (gzip, deflate, br or none), stopping once ``max_bytes`` are out (or soon after).

    Decompression work follows the output asked for, so a small ``max_bytes`` costs little whatever the body.
    """
    encoding = (content_encoding or "identity").strip().lower()
    try:
        if encoding in ("", "identity"):
            return raw
        if encoding in ("gzip", "x-gzip", "deflate"):
            # wbits=47 detects a gzip or zlib header itself; raw deflate needs -15.
            wbits = 47 if encoding != "deflate" or raw[:1] == b"\x78" else -15
            return zlib.decompressobj(wbits).decompress(raw, max_bytes + 1)
        if encoding == "br":
            return brotli.Decompressor().process(raw, output_buffer_limit=max_bytes + 1)
    except (zlib.error, brotli.error):
        raise IngestError(400, f"The body is not valid {encoding} data.") from None
    raise IngestError(415, f"Unsupported Content-Encoding {encoding!r}; use gzip, deflate or br.")


def decode_body(raw: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """Return the body decompressed (gzip, deflate, br or none), refusing more than ``max_bytes`` of output."""
    body = decompress(raw, content_encoding, max_bytes)
    if len(body) > max_bytes:
        raise IngestError(413, f"The decompressed body is larger than {max_bytes} bytes.")
    return body


def read_envelope_header(raw: bytes, content_encoding: str) -> dict:
    """Parse an envelope's first line only, decompressing no more of the body than that line.

    This is read before the key is known: MAX_HEADER_LINE_BYTES at most. A brotli body is not read at all: its
    decoder fills its window (up to 16 MiB) before it gives the first byte, 30 ms of CPU for a 53-byte body.
    """
    if (content_encoding or "").strip().lower() == "br":
        raise IngestError(401, f"{MISSING_KEY} A brotli body's own header is not read to find it.")
    start = decompress(raw, content_encoding, MAX_HEADER_LINE_BYTES)
    return _parse_header_line(start[: MAX_HEADER_LINE_BYTES + 1].split(b"\n", 1)[0], "envelope header")


def _parse_header_line(line: bytes, what: str) -> dict:
    if len(line) > MAX_HEADER_LINE_BYTES:
        raise IngestError(400, f"The {what} is longer than {MAX_HEADER_LINE_BYTES} bytes.")
    return parse_json_object(line, what)


def parse_event(data: bytes, what: str, max_bytes: int) -> dict:
    """Parse one event's JSON, refusing (413) one larger than ``max_bytes``, as Relay refuses past its max_event_size."""
    if len(data) > max_bytes:
        raise IngestError(413, f"The {what} is larger than {max_bytes} bytes.")
    return parse_json_object(data, what)


def parse_json_object(data: bytes, what: str) -> dict:
    _refuse_deep_nesting(data, what)  # on the bytes, before Python builds (and recurses into) it
    try:
        # UTF-8 only, as Sentry's Relay reads it: from bytes, json.loads would also guess UTF-16 and UTF-32,
        # whose code units can hide brackets from the depth check. NaN and Infinity are not JSON either, and a
        # receiver's parser would refuse the webhooks that carried them.
        value = json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise IngestError(400, f"The {what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise IngestError(400, f"The {what} must be a JSON object.")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # a literal like 1e400, beyond any double
        raise ValueError(f"{text} is out of range")
    return number


# A string, or an unterminated one to the end of the text (which the parser then refuses). The loops are
# possessive and the string always ends somewhere, so a text of escaped quotes is read once: a pattern that
# could fail made the search start again at every quote (3.3 s for 40 KB of backslash-quote pairs).
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_BRACKETS_AS_PARENS = bytes.maketrans(b"[{]}", b"(())")
_ALL_BUT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BLANK = re.compile(rb"\s*")


def _paired_at_most(depth: int) -> re.Pattern:
    """Return a pattern of paired parentheses nested at most ``depth`` deep: a regular language, one pass in C."""
    pattern = b""
    for _ in range(depth):
        pattern = rb"(?:\(" + pattern + rb"\))*+"
    return re.compile(pattern)


_SHALLOW = _paired_at_most(MAX_JSON_DEPTH)


def _refuse_deep_nesting(data: bytes, what: str) -> None:
    """Refuse (400) JSON text whose arrays and objects nest deeper than MAX_JSON_DEPTH, or whose brackets do not pair.

    1. Strings go, then everything but brackets; openers become "(" and closers ")".
    2. The regular expression engine reads them once, in C (a Python step per bracket took 0.7 s for 4 MiB).
    3. If they do not all match, the first group that does not is too deep when the counts agree (it must close
       somewhere), and otherwise they cannot pair: that is not JSON.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(_BRACKETS_AS_PARENS, _ALL_BUT_BRACKETS)
    if _SHALLOW.fullmatch(brackets):
        return
    failing = _SHALLOW.match(brackets).end()
    if brackets[failing : failing + 1] == b"(" and brackets.count(b"(") == brackets.count(b")"):
        raise IngestError(400, f"The {what} is nested deeper than {MAX_JSON_DEPTH} levels.")
    raise IngestError(400, f"The {what} is not valid JSON.")


def parse_envelope(body: bytes) -> Envelope:
    """Parse Sentry's envelope format: a header line, then items of (header line, payload).

    A payload is ``length`` bytes when its header says so, else the rest of its line. Blank lines between items
    are skipped in one step each run; a header line over MAX_HEADER_LINE_BYTES is refused (400), and more than
    MAX_ENVELOPE_ITEMS items (413).
    """
    newline = body.find(b"\n")
    header_line = body if newline < 0 else body[:newline]
    headers = _parse_header_line(header_line, "envelope header")
    position = len(body) if newline < 0 else newline + 1
    items = []
    while (position := _BLANK.match(body, position).end()) < len(body):
        if len(items) == MAX_ENVELOPE_ITEMS:
            raise IngestError(413, f"The envelope has more than {MAX_ENVELOPE_ITEMS} items.")
        end = body.find(b"\n", position)
        line = body[position:] if end < 0 else body[position:end]
        position = len(body) if end < 0 else end + 1
        item_headers = _parse_header_line(line, "envelope item header")
        length = item_headers.get("length")
        if length is not None:
            if not isinstance(length, int) or length < 0 or position + length > len(body):
                raise IngestError(400, "An envelope item's length runs past the end of the body.")
            payload = body[position : position + length]
            position += length
            if body[position : position + 1] == b"\n":
                position += 1
        else:
            end = body.find(b"\n", position)
            payload = body[position:] if end < 0 else body[position:end]
            position = len(body) if end < 0 else end + 1
        items.append((item_headers, payload))
    return Envelope(headers, items)
