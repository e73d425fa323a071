"""The daily health chart: success / error / timeout per day as stacked SVG bars, drawn server-side."""

from __future__ import annotations

from markupsafe import Markup, escape

SERIES = (("bar-ok", "success_count"), ("bar-error", None), ("bar-timeout", "timeout_count"))


def _errors(counts: dict) -> int:
    return counts["error_count"] + counts["fatal_count"]


def _summary(day, counts: dict) -> str:
    return f"{day.isoformat()}: {counts['success_count']} ok, {_errors(counts)} errors, {counts['timeout_count']} timeouts"


def health_svg(history: list[tuple], width: int, height: int, label: str, small: bool = False) -> Markup:
    """Return an SVG of ``history`` ([(day, counts)], oldest first); each day has a tooltip with its counts."""
    top = max([1] + [c["success_count"] + _errors(c) + c["timeout_count"] for _, c in history])
    slot = width / max(1, len(history))
    bar = max(slot - (1 if small else 3), 1)
    parts = []
    for index, (day, counts) in enumerate(history):
        x, y = index * slot, float(height)
        rects = []
        for css, field in SERIES:
            value = counts[field] if field else _errors(counts)
            h = value / top * height
            y -= h
            rects.append(f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"/>')
        if y == height:
            rects.append(f'<rect class="bar-empty" x="{x:.1f}" y="{height - 1}" width="{bar:.1f}" height="1"/>')
        parts.append(f"<g><title>{escape(_summary(day, counts))}</title>{''.join(rects)}</g>")
    aria = escape(f"{label}: " + "; ".join(_summary(day, counts) for day, counts in history))
    css = "health-chart sparkline" if small else "health-chart"
    return Markup(f'<svg class="{css}" role="img" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" aria-label="{aria}">{"".join(parts)}</svg>')
