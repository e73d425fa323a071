"""Charts drawn server-side as inline SVG: app health per day, an issue's events per day, an incident's metric."""

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


def count_bars_svg(days: list[tuple], width: int, height: int, label: str) -> Markup:
    """Return an SVG of one bar per day ([(day, count)], oldest first); each bar has a tooltip with its count."""
    top = max([1] + [count for _, count in days])
    slot = width / max(1, len(days))
    parts = []
    for index, (day, count) in enumerate(days):
        h = max(count / top * height, 1.0)
        css = "bar-events" if count else "bar-empty"
        parts.append(f'<g><title>{escape(f"{day.isoformat()}: {count} events")}</title>'
                     f'<rect class="{css}" x="{index * slot:.1f}" y="{height - h:.1f}" width="{max(slot - 3, 1):.1f}" '
                     f'height="{h:.1f}"/></g>')
    aria = escape(f"{label}: " + "; ".join(f"{day.isoformat()}: {count}" for day, count in days))
    return Markup(f'<svg class="events-chart" role="img" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" aria-label="{aria}">{"".join(parts)}</svg>')


def metric_svg(series: list[tuple], thresholds: list[tuple[str, int]], markers: list[tuple], width: int,
               height: int, label: str) -> Markup:
    """Return an SVG line of ``series`` ([(time, value)]) drawn against horizontal ``thresholds`` ([(name, value)]).

    ``markers`` ([(time, status, value)]) are the status changes, drawn as dots with a tooltip.
    """
    if not series:
        return Markup("")
    top = max([1] + [value for _, value in series] + [value for _, value in thresholds]) * 1.1
    first, last = series[0][0], series[-1][0]
    span = max((last - first).total_seconds(), 1.0)
    pad = 4

    def x(moment) -> float:
        return pad + (min(max(moment, first), last) - first).total_seconds() / span * (width - 2 * pad)

    def y(value) -> float:
        return height - pad - value / top * (height - 2 * pad)

    parts = []
    for name, value in thresholds:
        parts.append(f'<g class="threshold threshold-{escape(name)}"><title>{escape(f"{name} threshold: {value}")}</title>'
                     f'<line x1="0" x2="{width}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
                     f'<text x="{width - pad}" y="{y(value) - 3:.1f}" text-anchor="end">{escape(name)} {value}</text></g>')
    points = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in series)
    parts.append(f'<polyline class="metric-line" points="{points}"/>')
    for moment, status, value in markers:
        parts.append(f'<g class="marker marker-{escape(status)}"><title>'
                     f'{escape(f"{moment:%Y-%m-%d %H:%M} UTC: {status} at {value}")}</title>'
                     f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="4"/></g>')
    peak_time, peak = max(series, key=lambda point: point[1])
    aria = escape(f"{label}: from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC, highest {peak} at "
                  f"{peak_time:%H:%M} UTC; " + ", ".join(f"{name} threshold {value}" for name, value in thresholds))
    return Markup(f'<svg class="metric-chart" role="img" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" aria-label="{aria}">'
                  f'{"".join(parts)}</svg>')
