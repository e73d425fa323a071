"""Charts drawn server-side as inline SVG: app health per day, an issue's events per day, an incident's metric.

The health chart and the apps list's sparkline are stacked bars (success / error / timeout) with a ``<title>``
per day (the counts on hover) and the same figures as text for screen readers; a span without deliveries says
so instead of drawing empty bars.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

SERIES = (("bar-ok", "success_count"), ("bar-error", None), ("bar-timeout", "timeout_count"))
SLOT = 10  # viewBox units per day; the chart stretches to its box, so only proportions matter
PLOT_HEIGHT = 100
AXIS_EVERY = 7  # days between two dates on the chart's axis


def _errors(counts: dict) -> int:
    return counts["error_count"] + counts["fatal_count"]


def _total(counts: dict) -> int:
    return counts["success_count"] + _errors(counts) + counts["timeout_count"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def _day_summary(day: date, counts: dict) -> str:
    return (f"{_day_label(day)}: {counts['success_count']} ok, {_plural(_errors(counts), 'error')}, "
            f"{counts['timeout_count']} no answer")


def _span_summary(history: list[tuple]) -> str:
    ok = sum(counts["success_count"] for _, counts in history)
    errors = sum(_errors(counts) for _, counts in history)
    timeouts = sum(counts["timeout_count"] for _, counts in history)
    return f"{ok} ok, {_plural(errors, 'error')}, {timeouts} no answer"


def _bars(history: list[tuple], gap: float) -> str:
    """Return one ``<g>`` per day: a full-height hover target, the stacked bars and the day's ``<title>``."""
    top = max([1] + [_total(counts) for _, counts in history])
    width = SLOT - gap
    days = []
    for index, (day, counts) in enumerate(history):
        x, y = index * SLOT, float(PLOT_HEIGHT)
        rects = [f'<rect class="bar-hit" x="{x}" y="0" width="{SLOT}" height="{PLOT_HEIGHT}"/>']
        for css, field in SERIES:
            value = counts[field] if field else _errors(counts)
            if value:
                height = value / top * PLOT_HEIGHT
                y -= height
                rects.append(f'<rect class="{css}" x="{x:.1f}" y="{y:.2f}" width="{width:.1f}" height="{height:.2f}"/>')
        if y == PLOT_HEIGHT:
            rects.append(f'<rect class="bar-empty" x="{x:.1f}" y="{PLOT_HEIGHT - 1}" width="{width:.1f}" height="1"/>')
        days.append(f"<g><title>{escape(_day_summary(day, counts))}</title>{''.join(rects)}</g>")
    return "".join(days)


def _axis(history: list[tuple]) -> str:
    """Dates under the bars every ``AXIS_EVERY`` days and under the last one, each centred under its bar.

    One equal cell per day (flex), so no position needs an inline style (the CSP allows none).
    """
    last = len(history) - 1
    ticks = {index for index in range(0, last, AXIS_EVERY) if last - index >= AXIS_EVERY // 2} | {last}
    cells = []
    for index, (day, _) in enumerate(history):
        if index in ticks:
            position = "first" if index == 0 else "last" if index == last else "middle"
            cells.append(f'<span class="tick tick-{position}"><span>{_day_label(day)}</span></span>')
        else:
            cells.append('<span class="tick"></span>')
    return f'<div class="health-axis" aria-hidden="true">{"".join(cells)}</div>'


def _table(history: list[tuple], caption: str) -> str:
    """The chart's figures as a table that only screen readers see."""
    rows = "".join(
        f'<tr><th scope="row">{day.isoformat()}</th><td>{counts["success_count"]}</td><td>{_errors(counts)}</td>'
        f'<td>{counts["timeout_count"]}</td></tr>'
        for day, counts in history
    )
    return (f'<table class="visually-hidden"><caption>{escape(caption)}</caption>'
            f'<thead><tr><th scope="col">Day (UTC)</th><th scope="col">Succeeded</th><th scope="col">Errors</th>'
            f'<th scope="col">No answer</th></tr></thead><tbody>{rows}</tbody></table>')


def health_chart(history: list[tuple], label: str) -> Markup:
    """Return the app page's chart of ``history`` ([(day, counts)], oldest first): bars, dated axis, hidden table."""
    days = len(history)
    if not any(_total(counts) for _, counts in history):
        return Markup(f'<figure class="health health-empty" data-testid="health-chart">'
                      f'<p>No deliveries in the last {days} days</p></figure>')
    busiest = max(_total(counts) for _, counts in history)
    summary = f"{label}, last {days} days (UTC): {_span_summary(history)}; busiest day {busiest}."
    return Markup(
        f'<figure class="health" data-testid="health-chart">'
        f'<svg class="health-chart" viewBox="0 0 {days * SLOT} {PLOT_HEIGHT}" preserveAspectRatio="none" '
        f'width="100%" height="120" role="img" aria-label="{escape(summary)}">'
        f"<desc>{escape(summary)} The table after the chart has the figures of each day.</desc>"
        f"{_bars(history, gap=2)}</svg>{_axis(history)}"
        f'<figcaption class="muted">{escape(_span_summary(history))} in {days} days; busiest day {busiest}.</figcaption>'
        f"{_table(history, f'{label}, last {days} days (UTC)')}</figure>"
    )


def health_sparkline(history: list[tuple], label: str) -> Markup:
    """Return the apps list's small chart of ``history``, with its totals as text for screen readers."""
    days = len(history)
    if not any(_total(counts) for _, counts in history):
        return Markup(f'<span class="sparkline-empty">No deliveries<span class="visually-hidden"> in the last {days} days'
                      f'</span></span>')
    return Markup(
        f'<span class="sparkline-wrap"><svg class="health-chart sparkline" viewBox="0 0 {days * SLOT} {PLOT_HEIGHT}" '
        f'preserveAspectRatio="none" width="84" height="22" aria-hidden="true" focusable="false">'
        f"{_bars(history, gap=1.5)}</svg>"
        f'<span class="visually-hidden">{escape(label)}, last {days} days: {escape(_span_summary(history))}</span></span>'
    )


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


AXIS_LEFT, AXIS_BOTTOM = 34, 18


def _metric_axes(first, last, top: float, width: int, height: int, x, y) -> str:
    """Return the metric chart's axes: events (0, half, the top) on the left, UTC times (start, middle, end) below."""
    values = sorted({0, round(top / 2), int(top)})
    middle = first + (last - first) / 2
    parts = [f'<line x1="{AXIS_LEFT}" x2="{AXIS_LEFT}" y1="0" y2="{height - AXIS_BOTTOM}"/>',
             f'<line x1="{AXIS_LEFT}" x2="{width}" y1="{height - AXIS_BOTTOM}" y2="{height - AXIS_BOTTOM}"/>']
    parts += [f'<text x="{AXIS_LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end">{value}</text>' for value in values]
    for moment, anchor in ((first, "start"), (middle, "middle"), (last, "end")):
        parts.append(f'<text x="{x(moment):.1f}" y="{height - 4}" text-anchor="{anchor}">{moment:%H:%M}</text>')
    return f'<g class="axis" aria-hidden="true">{"".join(parts)}</g>'


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
    pad, left, bottom = 4, AXIS_LEFT, AXIS_BOTTOM  # room for the value axis on the left, the time axis below

    def x(moment) -> float:
        return left + (min(max(moment, first), last) - first).total_seconds() / span * (width - left - pad)

    def y(value) -> float:
        return height - bottom - value / top * (height - bottom - pad)

    parts = [_metric_axes(first, last, top, width, height, x, y)]
    for name, value in thresholds:
        parts.append(f'<g class="threshold threshold-{escape(name)}"><title>{escape(f"{name} threshold: {value}")}</title>'
                     f'<line x1="{left}" x2="{width}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
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
