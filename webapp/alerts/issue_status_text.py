"""How an issue's resolution or snooze reads on the dashboard: the page's sentence, the confirmation, the activity."""

from __future__ import annotations

from ..models import Group
from .issue_status import StatusChange, status_details


def span(minutes: int) -> str:
    """Minutes in words: "an hour", "3 days", "90 minutes"."""
    for size, one, many in ((7 * 24 * 60, "a week", "weeks"), (24 * 60, "a day", "days"), (60, "an hour", "hours")):
        if minutes % size == 0:
            return one if minutes == size else f"{minutes // size} {many}"
    return "a minute" if minutes == 1 else f"{minutes} minutes"


def status_summary(group: Group) -> str:
    """Say in a sentence how the issue is resolved or ignored and what brings it back ("" while unresolved)."""
    if group.status == "resolved":
        if group.resolution_type == "in_next_release":
            return (f"Resolved in the next release: an event of a release newer than {group.resolution_release} "
                    "reopens it.")
        if group.resolution_type == "in_release":
            return f"Resolved in {group.resolution_release}: an event of it or of a newer release reopens it."
        return "Resolved: any new event reopens it."
    if group.status != "ignored":
        return ""
    if group.ignore_until_escalating:
        return f"Ignored until it escalates: {group.ignore_count} events within an hour bring it back."
    parts = []
    if group.ignore_until is not None:
        parts.append(f"the first event after {group.ignore_until:%Y-%m-%d %H:%M} UTC")
    if group.ignore_count is not None:
        parts.append(f"{group.ignore_count} events within {span(group.ignore_window)}" if group.ignore_window
                     else f"{status_details(group)['ignoreCount']} more events")
    if group.ignore_user_count is not None:
        parts.append(f"{status_details(group)['ignoreUserCount']} more users")
    if not parts:
        return "Ignored until someone unresolves it."
    return f"Ignored; it comes back with {' or '.join(parts)}."


def change_done(change: StatusChange) -> str:
    """What a person is told once the change is made: "Resolved in the next release.", "Ignored for an hour."."""
    if change.status == "resolved":
        return ("Resolved in the next release." if change.in_next_release
                else f"Resolved in {change.in_release}." if change.in_release else "Resolved.")
    if change.status == "unresolved":
        return "Unresolved."
    if change.until_escalating:
        return "Ignored until it escalates."
    parts = ([f"for {span(change.ignore_minutes)}"] if change.ignore_minutes else []) + (
        [f"until {change.ignore_count} events within {span(change.ignore_window)}" if change.ignore_window
         else f"until {change.ignore_count} more events"] if change.ignore_count else []) + (
        [f"until {change.ignore_user_count} more users"] if change.ignore_user_count else [])
    return f"Ignored {' or '.join(parts)}." if parts else "Ignored."


def details_in_words(details: dict) -> str:
    """An activity entry's statusDetails as the rest of its sentence: " in the next release", " for ..."."""
    if details.get("inNextRelease"):
        return " in the next release"
    if details.get("inRelease"):
        return f" in {details['inRelease']}"
    if details.get("ignoreUntilEscalating"):
        return " until it escalates"
    parts = []
    if details.get("ignoreUntil"):
        parts.append(f"{details['ignoreUntil'][:16].replace('T', ' ')} UTC")
    if details.get("ignoreCount"):
        window = details.get("ignoreWindow")
        parts.append(f"{details['ignoreCount']} events within {span(window)}" if window
                     else f"{details['ignoreCount']} more events")
    if details.get("ignoreUserCount"):
        parts.append(f"{details['ignoreUserCount']} more users")
    return f" until {' or '.join(parts)}" if parts else ""
