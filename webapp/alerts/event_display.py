"""What the event page shows of a stored event, as plain values that the template escapes.

The exception chain with its frames and source lines, the breadcrumbs, the tags (the SDK's and those
Sentry derives from the event), the contexts, the request, the user, and the raw JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

# Fields Sentry shows as tags although the SDK sends them as fields of the event.
DERIVED_TAGS = ("level", "environment", "release", "dist", "server_name", "transaction", "logger")
# How an earlier exception of a chain relates to the one after it (the SDK's mechanism.source).
RELATIONS = {"__cause__": "The direct cause of the exception above",
             "__context__": "Being handled when the exception above was raised"}


@dataclass
class Line:
    number: int | None
    text: str
    current: bool = False


@dataclass
class Frame:
    function: str
    location: str  # filename:lineno (or the module when there is no file)
    module: str
    in_app: bool
    lines: list[Line]
    variables: list[tuple[str, str]]


@dataclass
class FrameRun:
    """Consecutive frames that are all in-app or all library code; a library run is shown folded."""

    in_app: bool
    frames: list[Frame]


@dataclass
class ExceptionView:
    type: str
    value: str
    module: str
    relation: str  # "" for the exception that was raised last; else how it led to the one above
    mechanism: str
    handled: bool | None
    runs: list[FrameRun]


@dataclass
class Breadcrumb:
    time: datetime | None
    category: str
    level: str
    message: str


@dataclass
class EventDisplay:
    message: str
    exceptions: list[ExceptionView]
    breadcrumbs: list[Breadcrumb]
    tags: list[tuple[str, str]]
    contexts: list[tuple[str, list[tuple[str, str]]]]
    request: dict | None
    user: list[tuple[str, str]]
    raw_json: str
    frame_count: int = field(default=0)


def text(value) -> str:
    """Return ``value`` as display text: strings as they are, containers as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _values(container) -> list:
    """Return the list inside Sentry's ``{"values": [...]}`` wrapper (or a bare list)."""
    values = container.get("values") if isinstance(container, dict) else container
    return [item for item in values if isinstance(item, dict)] if isinstance(values, list) else []


def _pairs(value) -> list[tuple[str, str]]:
    """Return a mapping, a list of [key, value] pairs or a list of {"key", "value"} as (key, text) pairs."""
    if isinstance(value, dict):
        return [(str(key), text(item)) for key, item in value.items()]
    pairs = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            pairs.append((text(item[0]), text(item[1])))
        elif isinstance(item, dict) and "key" in item:
            pairs.append((text(item["key"]), text(item.get("value"))))
    return pairs


def _frame(raw: dict) -> Frame:
    lineno = raw.get("lineno") if isinstance(raw.get("lineno"), int) else None
    filename = text(raw.get("filename") or raw.get("abs_path"))
    module = text(raw.get("module"))
    location = f"{filename or module or '?'}{f':{lineno}' if lineno is not None else ''}"
    lines = []
    if isinstance(raw.get("context_line"), str):
        pre = [line for line in raw.get("pre_context") or [] if isinstance(line, str)]
        post = [line for line in raw.get("post_context") or [] if isinstance(line, str)]
        start = lineno - len(pre) if lineno is not None else None
        for offset, line in enumerate([*pre, raw["context_line"], *post]):
            lines.append(Line(start + offset if start is not None else None, line, offset == len(pre)))
    variables = _pairs(raw.get("vars")) if isinstance(raw.get("vars"), dict) else []
    return Frame(text(raw.get("function")) or "?", location, module, bool(raw.get("in_app")), lines, variables)


def _runs(frames: list[Frame], fold_library: bool) -> list[FrameRun]:
    runs: list[FrameRun] = []
    for frame in frames:
        in_app = frame.in_app or not fold_library
        if runs and runs[-1].in_app == in_app:
            runs[-1].frames.append(frame)
        else:
            runs.append(FrameRun(in_app, [frame]))
    return runs


def _frames_of(exception: dict) -> list[dict]:
    stacktrace = exception.get("stacktrace")
    return _values(stacktrace.get("frames")) if isinstance(stacktrace, dict) else []


def exception_chain(data: dict) -> list[ExceptionView]:
    """Return the exceptions, the one raised last first, each with its frames, most recent call first.

    Library frames are folded only when some frame of the event is in-app (else there is nothing to
    single out, as in Sentry's "full" view).
    """
    exceptions = _values(data.get("exception"))
    fold_library = any(frame.get("in_app") for exc in exceptions for frame in _frames_of(exc))
    chain = []
    for index, raw in enumerate(reversed(exceptions)):
        mechanism = raw.get("mechanism") if isinstance(raw.get("mechanism"), dict) else {}
        relation = "" if index == 0 else RELATIONS.get(mechanism.get("source"), "Raised earlier, and led to the exception above")
        frames = [_frame(frame) for frame in reversed(_frames_of(raw))]
        handled = mechanism.get("handled") if isinstance(mechanism.get("handled"), bool) else None
        chain.append(ExceptionView(text(raw.get("type")) or "Error", text(raw.get("value")), text(raw.get("module")),
                                   relation, text(mechanism.get("type")), handled, _runs(frames, fold_library)))
    return chain


def _time(value) -> datetime | None:
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def breadcrumbs(data: dict) -> list[Breadcrumb]:
    """Return the breadcrumbs in the order they happened; one without a message shows its data."""
    crumbs = []
    for raw in _values(data.get("breadcrumbs")):
        message = text(raw.get("message")) or text(raw.get("data") or "")
        crumbs.append(Breadcrumb(_time(raw.get("timestamp")), text(raw.get("category") or raw.get("type")),
                                 text(raw.get("level") or "info"), message))
    return crumbs


def _context_tag(contexts: dict, name: str) -> str:
    context = contexts.get(name)
    if not isinstance(context, dict) or not context.get("name"):
        return ""
    return " ".join(text(part) for part in (context.get("name"), context.get("version")) if part)


def tags(data: dict, exceptions: list[ExceptionView]) -> list[tuple[str, str]]:
    """Return the event's tags: those the SDK sent, then those Sentry derives from its fields (not repeated)."""
    found = dict(_pairs(data.get("tags")))
    derived = [(name, text(data.get(name))) for name in DERIVED_TAGS]
    contexts = data.get("contexts") if isinstance(data.get("contexts"), dict) else {}
    derived += [(name, _context_tag(contexts, name)) for name in ("runtime", "os", "browser", "device")]
    if exceptions and exceptions[0].handled is not None:
        derived.append(("handled", "yes" if exceptions[0].handled else "no"))
    if exceptions and exceptions[0].mechanism:
        derived.append(("mechanism", exceptions[0].mechanism))
    request = data.get("request") if isinstance(data.get("request"), dict) else {}
    derived.append(("url", text(request.get("url"))))
    for name, value in derived:
        if value and name not in found:
            found[name] = value
    return list(found.items())


def contexts(data: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    raw = data.get("contexts") if isinstance(data.get("contexts"), dict) else {}
    return [(name, _pairs(context)) for name, context in sorted(raw.items()) if isinstance(context, dict) and context]


def request_of(data: dict) -> dict | None:
    raw = data.get("request")
    if not isinstance(raw, dict) or not raw:
        return None
    query = raw.get("query_string")
    return {"method": text(raw.get("method")), "url": text(raw.get("url")),
            "query": text(query) if isinstance(query, str) else "&".join(f"{k}={v}" for k, v in _pairs(query)),
            "headers": _pairs(raw.get("headers")), "data": text(raw.get("data")), "env": _pairs(raw.get("env"))}


def display_event(data: dict) -> EventDisplay:
    """Return everything the event page shows of ``data`` (the event as stored and sent)."""
    chain = exception_chain(data)
    user = data.get("user") if isinstance(data.get("user"), dict) else {}
    return EventDisplay(
        message=text(data.get("message")),
        exceptions=chain,
        breadcrumbs=breadcrumbs(data),
        tags=tags(data, chain),
        contexts=contexts(data),
        request=request_of(data),
        user=_pairs(user),
        raw_json=json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str),
        frame_count=sum(len(run.frames) for exc in chain for run in exc.runs),
    )
