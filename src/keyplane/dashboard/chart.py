"""The usage chart: stacked bars per hour or day (success, 4xx, 429), drawn here as inline
SVG so the page needs no chart library and no script."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WIDTH = 720
HEIGHT = 240
LEFT = 44  # room for the y-axis labels
BOTTOM = 28  # room for the x-axis labels
TOP = 10
SERIES = (
    ("success", "Success (2xx/3xx)"),
    ("client_error", "Client errors (4xx)"),
    ("rate_limited", "Rate limited (429)"),
)


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[tuple[str, float, float, int]]  # series, y, height, count


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # y, value
    x_labels: list[tuple[float, str]]
    plot_top: int
    plot_bottom: int
    plot_left: int
    series: tuple[tuple[str, str], ...]
    empty: bool
    summary: str


def _periods(start: datetime, end: datetime, group_by: str) -> list[datetime]:
    step = timedelta(hours=1) if group_by == "hour" else timedelta(days=1)
    moment = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if group_by == "day":
        moment = moment.replace(hour=0)
    periods = []
    while moment <= end:
        periods.append(moment)
        moment += step
    return periods


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5, 10, 20, 50 …)."""
    if value <= 4:
        return 4
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def usage_chart(data: list[dict[str, Any]], start: datetime, end: datetime, group_by: str) -> Chart:
    by_period = {str(row["period"]): row for row in data}
    periods = _periods(start, end, group_by)
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(periods))
    counts = []
    for moment in periods:
        row = by_period.get(moment.isoformat().replace("+00:00", "Z"), {})
        counts.append([int(row.get(name, 0)) for name, _ in SERIES])
    peak = _nice_max(max((sum(c) for c in counts), default=0))
    bars = []
    for index, (moment, values) in enumerate(zip(periods, counts, strict=True)):
        x = LEFT + index * slot + slot * 0.15
        y = float(TOP + plot_h)
        segments = []
        for (name, _label), count in zip(SERIES, values, strict=True):
            height = plot_h * count / peak
            y -= height
            if count:
                segments.append((name, round(y, 2), round(height, 2), count))
        label = moment.strftime("%Y-%m-%d %H:00" if group_by == "hour" else "%Y-%m-%d")
        bars.append(Bar(round(x, 2), round(slot * 0.7, 2), label, sum(values), segments))
    ticks = [(round(TOP + plot_h - plot_h * i / 4, 2), peak * i // 4) for i in range(5)]
    every = max(1, len(periods) // 6)
    x_labels = [
        (
            round(LEFT + i * slot + slot / 2, 2),
            m.strftime("%H:00" if group_by == "hour" else "%b %d"),
        )
        for i, m in enumerate(periods)
        if i % every == 0
    ]
    total = sum(sum(c) for c in counts)
    parts = ", ".join(
        f"{sum(c[i] for c in counts)} {label.lower()}" for i, (_n, label) in enumerate(SERIES)
    )
    summary = f"{total} request{'s' if total != 1 else ''} in this period: {parts}."
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        ticks=ticks,
        x_labels=x_labels,
        plot_top=TOP,
        plot_bottom=TOP + plot_h,
        plot_left=LEFT,
        series=SERIES,
        empty=total == 0,
        summary=summary,
    )
