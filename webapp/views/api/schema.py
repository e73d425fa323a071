"""The OpenAPI 3 document of /api/0, written by hand to say exactly what the endpoints do."""

from __future__ import annotations

from ...accounts.audit_search import SYSTEM_ACTOR
from ...apps.project_keys import LABEL_MAX, RATE_LIMIT_MAX
from ...core.audit import EVENTS
from ...dispatch.events import EVENT_TYPES
from ...dispatch.failures import LABELS as FAILURE_KINDS
from ...dispatch.messages import STATES as MESSAGE_STATES
from ...dispatch.request_log import STATUS_CLASSES
from ...models import ISSUE_STATUSES, RESOURCES, ROLES


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


ERROR = _json(_ref("Error"), "An error, explained in `detail`.")
LINK = {"Link": {"description": "Sentry-style paging links (rel previous/next, results, cursor).",
                 "schema": {"type": "string"}}}


def _errors(*codes: int) -> dict:
    # 400 everywhere: the request-edge check refuses control characters in any path value or query parameter.
    return {str(code): ERROR for code in (400, 401, 404, *codes)}


def _path(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"}}


ORG = _path("organization_slug", "The organisation's slug, or its id.")
APP = _path("sentry_app_slug", "The app's slug, or its id.")
ISSUE = _path("issue_id", "The issue's id, or its short id (WEB-12).",
              {"type": "string", "pattern": "^([0-9]{1,9}|[A-Za-z0-9_-]+-[0-9]{1,9})$"})
PROJECT = _path("project_slug", "The project's slug, or its id.")
KEY = _path("key_id", "The key's id: its public key (32 hex).")
MEMBER = _path("member_id", "A member's id, `me` for the caller's own membership, or invite-<id> for a pending "
                           "invitation.")
CURSOR = {"name": "cursor", "in": "query", "required": False, "description": "A cursor from a Link header.",
          "schema": {"type": "string", "pattern": "^[0-9]+:[0-9]+:[01]$"}}
NULLABLE_STRING = {"type": ["string", "null"]}
QUERY = {"name": "query", "in": "query", "required": False,
         "description": "Sentry-style search: is:unresolved|resolved|ignored, level:<level>, and words matched in "
                        "the title or culprit. Default is:unresolved; an empty query matches every issue.",
         "schema": {"type": "string"}}
STATS_PERIOD = {"name": "statsPeriod", "in": "query", "required": False,
                "description": "Only issues seen within this period: a number and m, h, d or w (24h, 14d).",
                "schema": {"type": "string", "pattern": "^([0-9]{1,4}[mhdw])?$"}}
LIMIT = {"name": "limit", "in": "query", "required": False, "description": "Issues a page (default 100).",
         "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
PER_PAGE = {"name": "per_page", "in": "query", "required": False, "description": "Events a page (default 100).",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
SHORT_ID_LOOKUP = {"name": "shortIdLookup", "in": "query", "required": False,
                   "description": "1: a query that is a short id (WEB-12) answers that issue alone.",
                   "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}}
FULL = {"name": "full", "in": "query", "required": False, "description": "true: whole events, as the event endpoint "
        "gives them.", "schema": {"type": "boolean"}}
ISSUE_IDS = {"name": "id", "in": "query", "required": True, "description": "The issues to change (repeat it).",
             "schema": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2147483647}},
             "style": "form", "explode": True}
SORT = {"name": "sort", "in": "query", "required": False, "description": "date (last seen), new (first seen), freq.",
        "schema": {"type": "string", "enum": ["date", "new", "freq"]}}

AUDIT_EVENT = {"name": "event", "in": "query", "required": False, "description": "Only this event.",
               "schema": {"type": "string", "enum": list(EVENTS)}}
AUDIT_ACTOR = {"name": "actor", "in": "query", "required": False,
               "description": f"Only what this person did (a user id), or `{SYSTEM_ACTOR}`: what Hookline did and "
                              "failed logins.",
               "schema": {"type": "string", "pattern": f"^([0-9]{{1,10}}|{SYSTEM_ACTOR})$"}}


def _moment(name: str, word: str) -> dict:
    return {"name": name, "in": "query", "required": False,
            "description": f"{word} this UTC day (2026-11-01, included) or time (2026-11-01T12:00:00Z).",
            "schema": {"type": "string"}}


SCHEMAS = {
    "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
    "SentryApp": {
        "type": "object",
        "required": ["name", "slug", "uuid", "status", "isDisabled", "isInternal", "events", "webhookEvents",
                     "webhookUrl", "clientSecret", "owner", "allowedOrigins", "avatars", "featureData", "metadata",
                     "schema", "scopes", "verifyInstall", "webhookHeaders", "isAlertable"],
        "properties": {
            "name": {"type": "string"}, "slug": {"type": "string"}, "uuid": {"type": "string"},
            "status": {"type": "string", "enum": ["internal"], "description": "Sentry's status of an internal "
                                                                              "integration."},
            "isDisabled": {"type": "boolean", "description": "Hookline's state: disabled by a person or by Hookline "
                                                             "(see disabledReason)."},
            "isInternal": {"type": "boolean"}, "isAlertable": {"type": "boolean"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(RESOURCES)}},
            "webhookEvents": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
            "webhookUrl": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "webhookHeaders": {"type": "array", "maxItems": 0}, "redirectUrl": {"type": "null"},
            "verifyInstall": {"type": "boolean"}, "allowedOrigins": {"type": "array", "maxItems": 0},
            "avatars": {"type": "array", "maxItems": 0}, "featureData": {"type": "array", "maxItems": 0},
            "metadata": {"type": "string"}, "schema": {"type": "string"}, "author": {"type": "string"},
            "overview": {"type": "null"}, "popularity": {"type": "null"},
            "clientId": {"type": "string"},
            "clientSecret": {**NULLABLE_STRING, "description": "Only for owners and managers; null otherwise."},
            "owner": {"type": "object", "properties": {"id": {"type": "integer"}, "slug": {"type": "string"}}},
            "installation": {"type": "object", "properties": {"uuid": NULLABLE_STRING}},
            "dateCreated": NULLABLE_STRING, "disabledAt": NULLABLE_STRING, "disabledReason": NULLABLE_STRING,
            "missedDeliveries": {"type": "integer", "minimum": 0},
            "replayed": {"type": "integer", "minimum": 0},
        },
    },
    "NewSentryApp": {
        "type": "object", "required": ["name", "organization", "webhookUrl"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "organization": {"type": "string", "description": "The organisation's slug."},
            "webhookUrl": {"type": "string", "format": "uri"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(RESOURCES)}},
            "isInternal": {"type": "boolean", "enum": [True]},
        },
    },
    "SentryAppUpdate": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "webhookUrl": {"type": "string", "format": "uri"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(RESOURCES)},
                       "description": "Setting events on a disabled app re-enables it (as in Sentry)."},
        },
    },
    "WebhookRequest": {
        "type": "object",
        "required": ["webhookUrl", "sentryAppSlug", "eventType", "date", "responseCode", "organization"],
        "properties": {
            "webhookUrl": {"type": "string"}, "sentryAppSlug": {"type": "string"},
            "eventType": {"type": "string", "enum": list(EVENT_TYPES)}, "date": {"type": "string"},
            "responseCode": {"type": "integer", "description": "0 for a timeout or connection failure."},
            "organization": {"type": "object", "properties": {"name": {"type": "string"}, "slug": {"type": "string"}}},
            "requestId": NULLABLE_STRING, "durationMs": {"type": ["integer", "null"]}, "attempt": {"type": "integer"},
            "webhookId": {**NULLABLE_STRING, "description": "The message's webhook-id, the same on every attempt."},
            "errorId": NULLABLE_STRING, "projectId": NULLABLE_STRING,
            "failure": {"type": ["object", "null"], "required": ["kind", "message", "hint"],
                        "description": "Why no usable answer arrived (no response, or a redirect), in plain words.",
                        "properties": {"kind": {"type": "string", "enum": list(FAILURE_KINDS)},
                                       "message": {"type": "string"}, "hint": {"type": "string"}}},
            "resend": {"type": "boolean", "description": "Sent again by a person (the resend endpoint or button)."},
            "requestHeaders": {**NULLABLE_STRING, "description": "Signature values are never kept: `v1,••••`."},
            "requestBody": NULLABLE_STRING, "responseBody": NULLABLE_STRING,
        },
    },
    "WebhookMessage": {
        "type": "object",
        "required": ["webhookId", "eventType", "date", "state", "stateText", "nextAttemptAt", "kept", "keptSince",
                     "missedWhileDisabled", "replayedAs", "resentAs", "attempts"],
        "description": "One message (one webhook-id) with its attempts, newest first. Retries, replays and resends "
                       "keep the webhook-id, so they are attempts of the same message.",
        "properties": {
            "webhookId": {**NULLABLE_STRING, "description": "null for an attempt logged before webhook-ids were."},
            "eventType": {"type": "string", "enum": list(EVENT_TYPES)},
            "date": {"type": "string", "description": "Its newest attempt's time (or when it was kept, if none)."},
            "state": {"type": "string", "enum": list(MESSAGE_STATES)},
            "stateText": {"type": "string", "enum": list(MESSAGE_STATES.values()),
                          "description": "The state as the dashboard words it."},
            "nextAttemptAt": {**NULLABLE_STRING, "description": "While retrying: when the next attempt is due (UTC); "
                                                                "null when it is due now."},
            "kept": {"type": "boolean", "description": "Kept while the app is disabled; re-enabling it with replay "
                                                       "sends it."},
            "keptSince": NULLABLE_STRING,
            "missedWhileDisabled": {"type": "boolean", "description": "Kept now, or kept and since replayed."},
            "replayedAs": {"type": "array", "items": {"type": "string"},
                           "description": "The Request-ID of each replay's first attempt."},
            "resentAs": {"type": "array", "items": {"type": "string"},
                         "description": "The Request-ID of each resend's first attempt."},
            "attempts": {"type": "array", "items": _ref("WebhookRequest")},
        },
    },
    "ResendResult": {
        "type": "object", "required": ["requestId", "webhookId", "eventType", "jobId"],
        "properties": {"requestId": {"type": "string"}, "webhookId": {"type": "string"},
                       "eventType": {"type": "string", "enum": list(EVENT_TYPES)}, "jobId": {"type": "string"}},
    },
    "TestAlertResult": {
        "type": "object", "required": ["outcome", "jobId"],
        "properties": {
            "outcome": {"type": "string", "enum": ["success", "error", "timeout", "failed", "missing", "queued"]},
            "responseCode": {"type": ["integer", "null"]}, "durationMs": {"type": ["integer", "null"]},
            "excerpt": {"type": "string"}, "jobId": {"type": "string"},
            "failure": {"type": ["object", "null"], "required": ["kind", "message", "hint"], "properties": {
                "kind": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"}}},
            "resultUrl": {"type": "string"},
        },
    },
    "HealthDay": {
        "type": "object", "required": ["date", "successCount", "errorCount", "timeoutCount", "fatalCount"],
        "properties": {"date": {"type": "string", "format": "date"}, "successCount": {"type": "integer"},
                       "errorCount": {"type": "integer"}, "timeoutCount": {"type": "integer"},
                       "fatalCount": {"type": "integer"}},
    },
    "AuditLogEntry": {
        "type": "object", "required": ["id", "event", "dateCreated", "data"],
        "properties": {"id": {"type": "string"},
                       "actor": {"type": ["object", "null"], "description": "Who acted; null: Hookline, or no one "
                                                                            "logged in (a failed login)."},
                       "event": {"type": "string", "description": "<object>.<action>, one of `options`."},
                       "eventLabel": {"type": "string", "description": "The event in words (\"App disabled\")."},
                       "ipAddress": {**NULLABLE_STRING, "description": "The client's address (logins)."},
                       "note": {"type": "string", "description": "What was acted on (an app's name, an email)."},
                       "targetObject": {"type": ["integer", "null"]}, "targetUser": {"type": ["object", "null"]},
                       "data": {"type": "object", "description": "The details; an edit keeps {field: [old, new]}."},
                       "details": {"type": "array", "items": {"type": "string"},
                                   "description": "`data` in words: \"url: https://a → https://b\"."},
                       "dateCreated": NULLABLE_STRING},
    },
    "Issue": {
        "type": "object",
        "description": "Sentry's issue. Fields Hookline has no data for carry the empty value: annotations, "
                       "integrationIssues, sentryAppIssues [], filtered, owners, shareId and the seer fields null, "
                       "isBookmarked, hasSeen, isPublic, isSubscribed false.",
        "required": ["id", "shortId", "title", "culprit", "level", "status", "substatus", "statusDetails", "priority",
                     "project", "count", "userCount", "firstSeen", "lastSeen", "stats", "lifetime", "inbox",
                     "assignedTo", "metadata", "permalink", "type", "issueType", "issueCategory", "numComments",
                     "hasSeen", "isBookmarked", "isPublic", "isSubscribed", "isUnhandled", "derivedData"],
        "properties": {"id": {"type": "string"}, "shortId": {"type": "string"}, "title": {"type": "string"},
                       "culprit": {"type": "string"}, "level": {"type": "string"},
                       "status": {"type": "string", "enum": list(ISSUE_STATUSES)},
                       "substatus": {"type": ["string", "null"],
                                     "enum": ["new", "ongoing", "regressed", "escalating", "archived_forever",
                                              "archived_until_escalating", "archived_until_condition_met", None]},
                       "priority": {"type": "string", "enum": ["high", "medium", "low"],
                                    "description": "From the level: fatal/error high, warning medium, info/debug low."},
                       "statusDetails": {"$ref": "#/components/schemas/StatusDetails"},
                       "assignedTo": {"type": ["object", "null"], "required": ["type", "id", "name"]},
                       "project": {"type": "object", "required": ["id", "slug", "name"]},
                       "firstSeen": NULLABLE_STRING, "lastSeen": NULLABLE_STRING, "count": {"type": "string"},
                       "userCount": {"type": "integer"}, "numComments": {"type": "integer"},
                       "stats": {"type": "object", "required": ["24h"], "properties": {"24h": {
                           "type": "array", "minItems": 24, "maxItems": 24, "description": "Events per hour, the "
                           "last 24 hours: [unix time of the hour, count].",
                           "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}}}},
                       "lifetime": {"type": "object"}, "filtered": {"type": "null"},
                       "inbox": {"type": ["object", "null"], "description": "Unresolved issues: reason 0 new, 2 "
                                 "regressed, 6 ongoing; null for resolved and ignored ones."},
                       "activity": {"type": "array", "items": {"type": "object"},
                                    "description": "Issue details only: what people did, newest first."},
                       "hasSeen": {"type": "boolean"}, "isBookmarked": {"type": "boolean"},
                       "isPublic": {"type": "boolean"}, "isSubscribed": {"type": "boolean"},
                       "url": {"type": "string"}, "web_url": {"type": "string"}, "project_url": {"type": "string"},
                       "permalink": {"type": "string"}},
    },
    "StatusDetails": {
        "type": "object", "additionalProperties": False,
        "description": "How the issue is resolved or ignored, as Sentry fills it; fields not in use are left out "
                       "(Sentry writes them as null). Empty while unresolved or resolved now, and ignored forever.",
        "properties": {"inNextRelease": {"type": "boolean", "enum": [True],
                                         "description": "Resolved in the release after the newest one the project "
                                                        "had then."},
                       "inRelease": {"type": "string", "description": "Resolved in this release."},
                       "ignoreUntilEscalating": {"type": "boolean", "enum": [True]},
                       "ignoreUntil": {"type": "string", "format": "date-time",
                                       "description": "Ignored until the first event after this time."},
                       "ignoreCount": {"type": "integer", "minimum": 0,
                                       "description": "Events still to come (without ignoreWindow), or the events "
                                                      "within ignoreWindow minutes, that bring it back."},
                       "ignoreWindow": {"type": "integer", "minimum": 1, "maximum": 10080},
                       "ignoreUserCount": {"type": "integer", "minimum": 0,
                                           "description": "Users still to come that bring it back."}},
    },
    "IssueUpdate": {
        "type": "object", "additionalProperties": False,
        "description": "Any other field of Sentry's (hasSeen, isBookmarked, priority, merge...) is a 400 saying why "
                       "Hookline cannot keep it; nothing changes. A refused change (an unknown release, a negative "
                       "duration, details of resolving with ignored) is a 400 that changes no issue.",
        "properties": {"status": {"type": "string", "enum": [*ISSUE_STATUSES, "resolvedInNextRelease", "muted"],
                                  "description": "muted is Sentry's older name for ignored; resolvedInNextRelease "
                                                 "is resolved with statusDetails.inNextRelease."},
                       "substatus": {"type": ["string", "null"],
                                     "enum": ["archived_forever", "archived_until_escalating",
                                              "archived_until_condition_met", "ongoing", None]},
                       "statusDetails": {
                           "type": "object", "additionalProperties": False,
                           "properties": {
                               "inNextRelease": {"type": "boolean", "enum": [True]},
                               "inRelease": {"type": "string", "description": "A release an event of the project "
                                             "has named, or latest."},
                               "ignoreUntilEscalating": {"type": "boolean"},
                               "ignoreDuration": {"type": "integer", "minimum": 1, "description": "Minutes."},
                               "ignoreCount": {"type": "integer", "minimum": 1},
                               "ignoreWindow": {"type": "integer", "minimum": 1, "maximum": 10080,
                                                "description": "Minutes; with ignoreCount."},
                               "ignoreUserCount": {"type": "integer", "minimum": 1}}},
                       "ignoreDuration": {"type": ["integer", "null"], "minimum": 1},
                       "ignoreCount": {"type": ["integer", "null"], "minimum": 1},
                       "ignoreWindow": {"type": ["integer", "null"], "minimum": 1, "maximum": 10080},
                       "ignoreUserCount": {"type": ["integer", "null"], "minimum": 1},
                       "snoozeDuration": {"type": ["integer", "null"], "minimum": 1},
                       "assignedTo": {"type": ["string", "integer", "null"],
                                      "description": "user:<id>, a member's user id, username or email; null or "
                                                     "\"\" unassigns."}},
    },
    "IssueBulkResult": {
        "type": "object", "required": ["isPublic", "statusDetails"],
        "description": "What changed, as Sentry answers a bulk mutate.",
        "properties": {"status": {"type": "string", "enum": list(ISSUE_STATUSES)}, "isPublic": {"type": "boolean"},
                       "statusDetails": {"$ref": "#/components/schemas/StatusDetails"},
                       "assignedTo": {"type": ["object", "null"]}},
    },
    "RateLimit": {
        "type": ["object", "null"], "required": ["window", "count"],
        "description": "Events a minute this key may send; null: the project's per-key limit, else the default.",
        "properties": {"window": {"type": "integer", "enum": [60]},
                       "count": {"type": "integer", "minimum": 1, "maximum": RATE_LIMIT_MAX}},
    },
    "ProjectKey": {
        "type": "object",
        "required": ["id", "name", "label", "public", "secret", "isActive", "dateCreated", "projectId", "rateLimit",
                     "dsn", "browserSdkVersion", "browserSdk", "dynamicSdkLoaderOptions"],
        "properties": {
            "id": {"type": "string", "description": "The public key (what the key's URLs take)."},
            "name": {"type": "string"}, "label": {"type": "string"}, "public": {"type": "string"},
            "isActive": {"type": "boolean"}, "dateCreated": {"type": "string"}, "projectId": {"type": "integer"},
            "rateLimit": _ref("RateLimit"),
            "secret": {"type": "null", "description": "Hookline's keys have no secret part."},
            "dsn": {"type": "object", "required": ["public", "secret", "store", "envelope"],
                    "description": "Also Sentry's other DSN forms (csp, minidump, crons...), empty: Hookline does not "
                                   "receive those.",
                    "properties": {"public": {"type": "string"}, "store": {"type": "string"},
                                   "envelope": {"type": "string"}}},
        },
    },
    "NewProjectKey": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": LABEL_MAX,
                                "description": "Defaults to \"Key <n>\"."},
                       "rateLimit": _ref("RateLimit")},
    },
    "ProjectKeyUpdate": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": LABEL_MAX},
                       "isActive": {"type": "boolean", "description": "false: events sent with the key are refused."},
                       "rateLimit": _ref("RateLimit")},
    },
    "Member": {
        "type": "object",
        "required": ["id", "email", "name", "user", "role", "orgRole", "roleName", "pending", "expired",
                     "inviteStatus", "dateCreated", "flags", "teams", "teamRoles", "inviterName"],
        "description": "A member of the organisation, or (pending: true) an invitation not yet accepted.",
        "properties": {
            "id": {"type": "string", "description": "The membership's id, or invite-<id> for a pending invitation."},
            "email": {"type": "string"}, "name": {"type": "string"},
            "user": {"type": ["object", "null"], "required": ["id", "name", "email"],
                     "description": "The person; null while the invitation is pending.",
                     "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                    "email": {"type": "string"}, "username": {"type": "string"}}},
            "role": {"type": "string", "enum": list(ROLES)}, "orgRole": {"type": "string", "enum": list(ROLES)},
            "roleName": {"type": "string"}, "pending": {"type": "boolean"},
            "expired": {"type": "boolean", "description": "A pending invitation whose link has expired."},
            "inviteStatus": {"type": "string", "enum": ["approved"]}, "inviterName": NULLABLE_STRING,
            "dateCreated": NULLABLE_STRING, "flags": {"type": "object"},
            "teams": {"type": "array", "maxItems": 0, "description": "Hookline has no teams."},
            "teamRoles": {"type": "array", "maxItems": 0},
            "isOnlyOwner": {"type": "boolean", "description": "Member details only."},
        },
    },
    "NewMember": {
        "type": "object", "required": ["email"],
        "properties": {"email": {"type": "string", "format": "email"},
                       "orgRole": {"type": "string", "enum": ["member", "admin", "manager", "owner"],
                                   "description": "Sentry's names; admin and manager are Hookline's manager."},
                       "role": {"type": "string", "enum": ["member", "admin", "manager", "owner"],
                                "description": "The older name of orgRole."}},
    },
    "MemberUpdate": {
        "type": "object",
        "properties": {"orgRole": {"type": "string", "enum": ["member", "admin", "manager", "owner"],
                                   "description": "Sentry's names; admin and manager are Hookline's manager."},
                       "role": {"type": "string", "enum": ["member", "admin", "manager", "owner"],
                                "description": "The older name of orgRole."}},
    },
    "EventSummary": {
        "type": "object",
        "required": ["id", "eventID", "groupID", "projectID", "title", "message", "culprit", "location", "platform",
                     "event.type", "dateCreated", "metadata", "crashFile", "tags", "user"],
        "properties": {"id": {"type": "string"}, "eventID": {"type": "string"}, "groupID": {"type": "string"},
                       "projectID": {"type": "string"}, "title": {"type": "string"}, "message": {"type": "string"},
                       "tags": {"type": "array", "items": {"type": "object", "required": ["key", "value"]}},
                       "user": {"type": ["object", "null"]}, "dateCreated": {"type": "string"}},
    },
    "Event": {
        "type": "object",
        "description": "Sentry's event: the summary's fields plus entries (exception, message, breadcrumbs, "
                       "request), the issue's previous and next events, and the SDK.",
        "required": ["id", "eventID", "groupID", "projectID", "title", "message", "type", "platform", "dateCreated",
                     "dateReceived", "entries", "tags", "user", "contexts", "context", "sdk", "release",
                     "previousEventID", "nextEventID", "size", "errors", "metadata"],
        "properties": {"id": {"type": "string"}, "eventID": {"type": "string"}, "groupID": {"type": "string"},
                       "dateReceived": {"type": "string"},
                       "entries": {"type": "array", "items": {"type": "object", "required": ["type", "data"],
                                                              "properties": {"type": {"type": "string", "enum": [
                                                                  "exception", "message", "breadcrumbs",
                                                                  "request"]}}}},
                       "previousEventID": NULLABLE_STRING, "nextEventID": NULLABLE_STRING},
    },
    "Installation": {
        "type": "object", "required": ["app", "organization", "uuid", "status"],
        "properties": {"app": {"type": "object", "required": ["uuid", "slug", "sentryAppId"]},
                       "organization": {"type": "object", "required": ["slug"]}, "uuid": {"type": "string"},
                       "status": {"type": "string", "enum": ["installed"]}},
    },
}


def _body(schema_name: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema_name)}}}


APP_ERRORS = _errors(403)
PATHS = {
    "/api/0/organizations/{organization_slug}/sentry-apps/": {"get": {
        "operationId": "listSentryApps", "summary": "List the organisation's internal apps.", "parameters": [ORG, CURSOR],
        "responses": {"200": _json({"type": "array", "items": _ref("SentryApp")}, "The apps.", LINK),
                      **_errors(400)}}},
    "/api/0/sentry-apps/": {"post": {
        "operationId": "createSentryApp", "summary": "Register an internal app.", "requestBody": _body("NewSentryApp"),
        "responses": {"201": _json(_ref("SentryApp"), "The new app, with its clientSecret."), **_errors(400, 403)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/": {
        "parameters": [APP],
        "get": {"operationId": "getSentryApp", "summary": "One app.",
                "responses": {"200": _json(_ref("SentryApp"), "The app."), **_errors()}},
        "put": {"operationId": "updateSentryApp", "summary": "Change name, webhookUrl or events.",
                "requestBody": _body("SentryAppUpdate"),
                "responses": {"200": _json(_ref("SentryApp"), "The app."), **_errors(400, 403)}},
        "delete": {"operationId": "deleteSentryApp", "summary": "Delete the app and its logs.",
                   "responses": {"204": {"description": "Deleted."}, **_errors(403)}},
    },
    "/api/0/sentry-apps/{sentry_app_slug}/webhook-requests/": {"get": {
        "operationId": "listWebhookRequests", "summary": "The request log, newest first (at most 100 per event type).",
        "parameters": [APP,
                       {"name": "eventType", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": list(EVENT_TYPES)}},
                       {"name": "errorsOnly", "in": "query", "required": False, "schema": {"type": "boolean"}},
                       CURSOR],
        "responses": {"200": _json({"type": "array", "items": _ref("WebhookRequest")}, "Log entries.", LINK),
                      **_errors(400)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/webhook-messages/": {"get": {
        "operationId": "listWebhookMessages",
        "summary": "The request log as messages, newest activity first: each webhook-id with its state (delivered, "
                   "retrying and when, gave up, missed while disabled, replayed, resent) and its attempts. "
                   "`eventType`, `errorsOnly` and `status` keep messages with a matching attempt; `query` finds a "
                   "webhook-id, a Request-ID or an event id.",
        "parameters": [APP,
                       {"name": "eventType", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": list(EVENT_TYPES)}},
                       {"name": "errorsOnly", "in": "query", "required": False, "schema": {"type": "boolean"}},
                       {"name": "status", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": list(STATUS_CLASSES)},
                        "description": "timeout is every attempt that got no answer."},
                       {"name": "query", "in": "query", "required": False, "schema": {"type": "string"},
                        "description": "A whole webhook-id, Request-ID or event id."},
                       CURSOR],
        "responses": {"200": _json({"type": "array", "items": _ref("WebhookMessage")}, "Messages.", LINK),
                      **_errors(400)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/webhook-requests/{request_id}/resend/": {"post": {
        "operationId": "resendWebhookRequest",
        "summary": "Queue a logged request's message again: same event type, body and webhook-id, logged as resend.",
        "description": "Owners and managers. 409 while the app is disabled (a resend would only be kept as missed; "
                       "re-enable with replay instead), or when the body was too large to be kept whole.",
        "parameters": [APP, _path("request_id", "The logged request's Request-ID (32 hex characters).",
                                  {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
        "responses": {"202": _json(_ref("ResendResult"), "Queued; the worker sends it."), "409": ERROR,
                      **_errors(403)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/webhook-requests/recover/": {
        "get": {
            "operationId": "countFailedMessages",
            "summary": "The messages whose newest logged attempt since `since` failed (test alerts left out).",
            "parameters": [APP, {"name": "since", "in": "query", "required": True,
                                 "schema": {"type": "string"}, "description": "A UTC time, e.g. 2026-11-01T09:30:00Z."}],
            "responses": {"200": _json({"type": "object", "required": ["since", "count", "webhookIds"], "properties": {
                "since": {"type": "string"}, "count": {"type": "integer"},
                "webhookIds": {"type": "array", "items": {"type": "string"}}}}, "How many, and which."),
                **_errors(400, 403)}},
        "post": {
            "operationId": "resendFailedMessages",
            "summary": "Send every message that failed since `since` again, each under its own webhook-id.",
            "description": "Owners and managers; through the app's and the organisation's limits like any delivery. "
                           "409 while the app is disabled (re-enable it with replay instead).",
            "parameters": [APP],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["since"], "properties": {"since": {"type": "string"}}}}}},
            "responses": {"202": _json({"type": "object", "required": ["since", "resent", "jobIds"], "properties": {
                "since": {"type": "string"}, "resent": {"type": "integer"},
                "jobIds": {"type": "array", "items": {"type": "string"}}}}, "Queued."),
                "409": ERROR, **_errors(400, 403)}},
    },
    "/api/0/sentry-apps/{sentry_app_slug}/test-alert/": {"post": {
        "operationId": "sendTestAlert",
        "summary": "Queue a test alert; the answer comes at once, its outcome at `Location` (`resultUrl`).",
        "parameters": [APP],
        "responses": {"202": _json(_ref("TestAlertResult"), "Queued (or the one already waiting)."),
                      **_errors(403)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/test-alert/{job_id}/": {"get": {
        "operationId": "getTestAlertResult", "summary": "A test alert's outcome once the worker has sent it.",
        "parameters": [APP, _path("job_id", "The `jobId` the test alert was queued as.")],
        "responses": {"200": _json(_ref("TestAlertResult"), "The worker sent it (or could not)."),
                      "202": _json(_ref("TestAlertResult"), "Still waiting for the worker; ask again after "
                                                            "`Retry-After` seconds."),
                      **_errors()}}},
    "/api/0/sentry-apps/{sentry_app_slug}/enable/": {"post": {
        "operationId": "enableSentryApp", "summary": "Re-enable a disabled app, optionally replaying what it missed.",
        "parameters": [APP],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"replay": {"type": "boolean"}}}}}},
        "responses": {"200": _json(_ref("SentryApp"), "Enabled; `replayed` says how many deliveries were queued."),
                      "409": ERROR, **_errors(400, 403)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/rotate-secret/": {"post": {
        "operationId": "rotateSecret", "summary": "New client secret; the old one signs too for 24 hours.",
        "parameters": [APP],
        "responses": {"200": _json({"type": "object", "required": ["clientSecret", "previousSecretValidUntil"],
                                    "properties": {"clientSecret": {"type": "string"},
                                                   "previousSecretValidUntil": {"type": "string"}}}, "The new secret."),
                      **_errors(403)}}},
    "/api/0/sentry-apps/{sentry_app_slug}/health/": {"get": {
        "operationId": "getHealth", "summary": "Daily success/error/timeout counts, oldest first.",
        "parameters": [APP, {"name": "days", "in": "query", "required": False,
                             "schema": {"type": "integer", "minimum": 1, "maximum": 30, "default": 7}}],
        "responses": {"200": _json({"type": "array", "items": _ref("HealthDay")}, "One entry per UTC day."),
                      **_errors(400)}}},
    "/api/0/organizations/{organization_slug}/audit-logs/": {"get": {
        "operationId": "listAuditLogs",
        "summary": "The organisation's audit log, newest first (owners and managers); 100 entries a page.",
        "parameters": [ORG, AUDIT_EVENT, AUDIT_ACTOR, _moment("start", "From"), _moment("end", "Until"), CURSOR],
        "responses": {"200": _json({"type": "object", "required": ["rows", "options"], "properties": {
            "rows": {"type": "array", "items": _ref("AuditLogEntry")},
            "options": {"type": "array", "items": {"type": "string"}}}}, "Entries.", LINK), **_errors(400, 403)}}},
    "/api/0/organizations/{organization_slug}/members/": {
        "parameters": [ORG],
        "get": {"operationId": "listMembers",
                "summary": "The organisation's members, owners first, then its pending invitations (owners and "
                           "managers).",
                "parameters": [CURSOR],
                "responses": {"200": _json({"type": "array", "items": _ref("Member")}, "Members and invitations.",
                                           LINK), **_errors(400, 403)}},
        "post": {"operationId": "inviteMember",
                 "summary": "Invite an email (owners): a one-time link valid 7 days is emailed. Inviting a pending "
                            "email again renews its invitation.",
                 "requestBody": _body("NewMember"),
                 "responses": {"201": _json(_ref("Member"), "The pending invitation."), **_errors(400, 403)}},
    },
    "/api/0/organizations/{organization_slug}/members/{member_id}/": {
        "parameters": [ORG, MEMBER],
        "get": {"operationId": "getMember", "summary": "One member or pending invitation (owners and managers).",
                "responses": {"200": _json(_ref("Member"), "The member."), **_errors(403)}},
        "put": {"operationId": "updateMember",
                "summary": "Change a member's role (owners). 403 for the organisation's only owner.",
                "requestBody": _body("MemberUpdate"),
                "responses": {"200": _json(_ref("Member"), "The member after the change."), **_errors(400, 403)}},
        "delete": {"operationId": "deleteMember",
                   "summary": "Remove a member, ending every session of theirs, or revoke a pending invitation "
                              "(owners). 403 for the organisation's only owner.",
                   "responses": {"204": {"description": "Removed or revoked."}, **_errors(403)}},
    },
    "/api/0/organizations/{organization_slug}/issues/{issue_id}/": {
        "parameters": [ORG, ISSUE],
        "get": {"operationId": "getIssue", "summary": "One issue, with its activity.",
                "responses": {"200": _json(_ref("Issue"), "The issue."), **_errors()}},
        "put": {"operationId": "updateIssue", "summary": "Resolve, ignore, unresolve or assign an issue.",
                "requestBody": _body("IssueUpdate"),
                "responses": {"200": _json(_ref("Issue"), "The issue after the change."), **_errors(400)}},
    },
    "/api/0/issues/{issue_id}/": {
        "parameters": [_path("issue_id", "The issue's id.", {"type": "integer", "minimum": 1,
                                                             "maximum": 2147483647})],
        "get": {"operationId": "getIssueById", "summary": "One issue, by id alone (Sentry's older path).",
                "responses": {"200": _json(_ref("Issue"), "The issue."), **_errors()}},
        "put": {"operationId": "updateIssueById", "summary": "Change one issue, by id alone.",
                "requestBody": _body("IssueUpdate"),
                "responses": {"200": _json(_ref("Issue"), "The issue after the change."), **_errors(400)}},
    },
    "/api/0/organizations/{organization_slug}/issues/": {
        "parameters": [ORG],
        "get": {
            "operationId": "listIssues",
            "summary": "The organisation's issues matching a search, most recently seen first.",
            "parameters": [QUERY, {"name": "project", "in": "query", "required": False,
                                   "description": "Only these projects (ids; repeat the parameter for several).",
                                   "schema": {"type": "array", "items": {"type": "integer"}},
                                   "style": "form", "explode": True},
                           STATS_PERIOD, SORT, LIMIT, SHORT_ID_LOOKUP, CURSOR],
            "responses": {"200": _json({"type": "array", "items": _ref("Issue")}, "One page of issues.", LINK),
                          **_errors(400)}},
        "put": {"operationId": "bulkUpdateIssues", "summary": "Change the issues named by id, as one issue changes.",
                "parameters": [ISSUE_IDS], "requestBody": _body("IssueUpdate"),
                "responses": {"200": _json(_ref("IssueBulkResult"), "What changed."), **_errors(400)}},
    },
    "/api/0/projects/{organization_slug}/{project_slug}/issues/": {
        "parameters": [ORG, PROJECT],
        "get": {"operationId": "listProjectIssues", "summary": "The project's issues matching a search.",
                "parameters": [QUERY, STATS_PERIOD, SORT, LIMIT, SHORT_ID_LOOKUP, CURSOR],
                "responses": {"200": _json({"type": "array", "items": _ref("Issue")}, "One page of issues.", LINK),
                              **_errors(400)}},
        "put": {"operationId": "bulkUpdateProjectIssues", "summary": "Change the project's issues named by id.",
                "parameters": [ISSUE_IDS], "requestBody": _body("IssueUpdate"),
                "responses": {"200": _json(_ref("IssueBulkResult"), "What changed."), **_errors(400)}},
    },
    "/api/0/organizations/{organization_slug}/issues/{issue_id}/events/": {"get": {
        "operationId": "listIssueEvents", "summary": "The issue's events, newest first.",
        "parameters": [ORG, ISSUE, FULL, PER_PAGE, CURSOR],
        "responses": {"200": _json({"type": "array", "items": _ref("EventSummary")}, "One page of events.", LINK),
                      **_errors(400)}}},
    "/api/0/organizations/{organization_slug}/issues/{issue_id}/events/{event_id}/": {"get": {
        "operationId": "getIssueEvent", "summary": "One event of the issue: latest, oldest, recommended (the latest) "
                                                   "or an event id.",
        "parameters": [ORG, ISSUE, _path("event_id", "latest, oldest, recommended, or the event id (32 hex).",
                                         {"type": "string", "pattern": "^(latest|oldest|recommended|[0-9a-f]{32})$"})],
        "responses": {"200": _json(_ref("Event"), "The event."), **_errors()}}},
    "/api/0/projects/{organization_slug}/{project_slug}/events/": {"get": {
        "operationId": "listProjectEvents", "summary": "The project's events, newest first.",
        "parameters": [ORG, PROJECT, FULL, PER_PAGE, CURSOR],
        "responses": {"200": _json({"type": "array", "items": _ref("EventSummary")}, "One page of events.", LINK),
                      **_errors(400)}}},
    "/api/0/projects/{organization_slug}/{project_slug}/events/{event_id}/": {"get": {
        "operationId": "getEvent", "summary": "One stored event.",
        "parameters": [ORG, PROJECT, _path("event_id", "The event id (32 hex).")],
        "responses": {"200": _json(_ref("Event"), "The event."), **_errors()}}},
    "/api/0/organizations/{organization_slug}/sentry-app-installations/": {"get": {
        "operationId": "listInstallations", "summary": "The organisation's installations: one per internal app.",
        "parameters": [ORG, CURSOR],
        "responses": {"200": _json({"type": "array", "items": _ref("Installation")}, "Installations.", LINK),
                      **_errors(400)}}},
    "/api/0/projects/{organization_slug}/{project_slug}/keys/": {
        "parameters": [ORG, PROJECT],
        "get": {"operationId": "listProjectKeys", "summary": "The project's client keys (DSNs), oldest first.",
                "parameters": [CURSOR],
                "responses": {"200": _json({"type": "array", "items": _ref("ProjectKey")}, "The keys.", LINK),
                              **_errors(400)}},
        "post": {"operationId": "createProjectKey", "summary": "Create an active client key.",
                 "requestBody": _body("NewProjectKey"),
                 "responses": {"201": _json(_ref("ProjectKey"), "The new key."), **_errors(400, 403)}},
    },
    "/api/0/projects/{organization_slug}/{project_slug}/keys/{key_id}/": {
        "parameters": [ORG, PROJECT, KEY],
        "get": {"operationId": "getProjectKey", "summary": "One client key.",
                "responses": {"200": _json(_ref("ProjectKey"), "The key."), **_errors()}},
        "put": {"operationId": "updateProjectKey", "summary": "Rename, disable or enable a key, or set its rate limit.",
                "requestBody": _body("ProjectKeyUpdate"),
                "responses": {"200": _json(_ref("ProjectKey"), "The key after the change."), **_errors(400, 403)}},
        "delete": {"operationId": "deleteProjectKey",
                   "summary": "Delete the key; events sent with it are refused from the next one on.",
                   "responses": {"204": {"description": "Deleted."}, **_errors(403)}},
    },
}


def openapi_document(base_url: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hookline API", "version": "0",
                 "description": "Internal apps, their request logs and health, issues, projects' client "
                                "keys, and organisation members, in Sentry's shapes. "
                                "Authenticate with `Authorization: Bearer <token>` (create tokens on the API tokens "
                                "page or with `flask --app webapp create-token`)."},
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
