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

_AUTH_PAIR = re.compile(r"(\w+)\s*=\s*([^,\s]*)")


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

    def events(self) -> list[dict]:
        """Return the event payloads of the envelope, parsed; other items are ignored."""
        found = []
        for item_headers, payload in self.items:
            item_type = item_headers.get("type")
            if isinstance(item_type, str) and item_type in EVENT_ITEM_TYPES:  # a list or object is no item type
                found.append(parse_json_object(payload, "event item"))
        return found


def public_key_from(headers, args, envelope_headers: dict | None = None) -> str | None:
    """Find the project's public key: X-Sentry-Auth, Authorization: Sentry …, ?sentry_key=, or the envelope's dsn."""
    for header in ("X-Sentry-Auth", "Authorization"):
        value = headers.get(header, "")
        if value.lower().startswith("sentry "):
            pairs = dict(_AUTH_PAIR.findall(value[7:]))
            if pairs.get("sentry_key"):
                return pairs["sentry_key"]
    if args.get("sentry_key"):
        return args["sentry_key"]
    dsn = (envelope_headers or {}).get("dsn")
    if isinstance(dsn, str):
        try:
            return urlsplit(dsn).username
        except ValueError:  # not a URL at all: no key in it
            return None
    return None


def decode_body(raw: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """Return the body decompressed (gzip, deflate, br or none), refusing more than ``max_bytes`` of output."""
    encoding = (content_encoding or "identity").strip().lower()
    try:
        if encoding in ("", "identity"):
            body = raw
        elif encoding in ("gzip", "x-gzip", "deflate"):
            # wbits=47 detects a gzip or zlib header itself; raw deflate needs -15.
            wbits = 47 if encoding != "deflate" or raw[:1] == b"\x78" else -15
            decompressor = zlib.decompressobj(wbits)
            body = decompressor.decompress(raw, max_bytes + 1)
        elif encoding == "br":
            body = brotli.Decompressor().process(raw, output_buffer_limit=max_bytes + 1)
        else:
            raise IngestError(415, f"Unsupported Content-Encoding {encoding!r}; use gzip, deflate or br.")
    except (zlib.error, brotli.error):
        raise IngestError(400, f"The body is not valid {encoding} data.") from None
    if len(body) > max_bytes:
        raise IngestError(413, f"The decompressed body is larger than {max_bytes} bytes.")
    return body


# Deeper than this, an event is refused: Hookline (and every receiver) serialises events again, recursively.
MAX_JSON_DEPTH = 64


def parse_json_object(data: bytes, what: str) -> dict:
    if json_depth(data) > MAX_JSON_DEPTH:  # measured on the bytes, before Python builds (and recurses into) it
        raise IngestError(400, f"The {what} is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        # UTF-8 only, as Sentry's Relay reads it: from bytes, json.loads would also guess UTF-16 and UTF-32,
        # whose code units can hide brackets from json_depth. NaN and Infinity are not JSON either, and a
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


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(data: bytes) -> int:
    """Return how deeply the JSON text's arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_envelope(body: bytes) -> Envelope:
    """Parse Sentry's envelope format: a header line, then items of (header line, payload).

    A payload is ``length`` bytes when its header says so, else the rest of its line.
    """
    newline = body.find(b"\n")
    header_line = body if newline < 0 else body[:newline]
    headers = parse_json_object(header_line, "envelope header")
    position = len(body) if newline < 0 else newline + 1
    items = []
    while position < len(body):
        end = body.find(b"\n", position)
        line = body[position:] if end < 0 else body[position:end]
        position = len(body) if end < 0 else end + 1
        if not line.strip():
            continue
        item_headers = parse_json_object(line, "envelope item header")
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
