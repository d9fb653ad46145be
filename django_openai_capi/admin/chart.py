"""Bar charts of hourly delivery, as inline SVG drawn on the server.

No JavaScript and no library: a ``<rect>`` per non-zero value, each with a ``<title>``
that a pointer or a screen reader gets, a y axis with three labelled ticks and an x
axis labelled every 12 hours. Colors are CSS classes (``capi-s-<key>``), so that the
page's stylesheet picks them for the light and the dark theme. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 760
HEIGHT = 200
#: Room for the y labels on the left, the last x label on the right, the x labels
#: below, and the top tick's label above the plot.
LEFT, RIGHT, TOP, BOTTOM = 56, 40, 10, 24
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
#: Hours between two labels of the x axis.
LABEL_EVERY = 12


@dataclass(frozen=True, slots=True)
class Series:
    """One value per hour, drawn in the color of ``capi-s-<key>``."""

    key: str
    label: str
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.values)


def axis_top(largest: int) -> int:
    """The y axis' top: the smallest of 2, 4, 6, 8, 10, 20, 40 ... at least *largest*.

    Even, so that the middle tick is a whole number too.
    """
    scale = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if step * scale >= largest:
                return step * scale
        scale *= 10


def hourly_chart(
    hours: Sequence[datetime],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool,
) -> SafeString:
    """An SVG chart of *series* over *hours* (each series has a value per hour).

    Stacked: one bar per hour, the series on top of each other. Otherwise the series
    stand side by side within their hour.
    """
    if any(len(each.values) != len(hours) for each in series):
        raise ValueError("every series needs one value per hour")
    if stacked:
        largest = max(
            (sum(values) for values in zip(*(s.values for s in series), strict=True)),
            default=0,
        )
    else:
        largest = max((v for s in series for v in s.values), default=0)
    top = axis_top(largest)
    step = PLOT_WIDTH / max(len(hours), 1)
    return format_html(
        '<svg class="capi-chart" role="group" aria-label="{}" viewBox="0 0 {} {}" '
        + 'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{}</title>'
        + '<g class="capi-axis">{}{}</g><g class="capi-bars">{}</g></svg>',
        title,
        WIDTH,
        HEIGHT,
        title,
        _y_axis(top),
        _x_axis(hours, step),
        _bars(hours, series, top, step, stacked),
    )


def _y(value: float, top: int) -> float:
    return TOP + PLOT_HEIGHT - value / top * PLOT_HEIGHT


def _y_axis(top: int) -> SafeString:
    return format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}"/>'
        + '<text x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (
                LEFT,
                WIDTH - RIGHT,
                f"{y:.1f}",
                f"{y:.1f}",
                LEFT - 6,
                f"{y + 4:.1f}",
                tick,
            )
            for value in (0, top // 2, top)
            for y, tick in [(_y(value, top), f"{value:,}")]
        ),
    )


def _x_axis(hours: Sequence[datetime], step: float) -> SafeString:
    bottom = TOP + PLOT_HEIGHT
    return format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}"/>'
        + '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (x, x, bottom, bottom + 4, x, HEIGHT - 6, f"{hour:%b %d %H:%M}")
            for index, hour in enumerate(hours)
            if hour.hour % LABEL_EVERY == 0
            for x in [f"{LEFT + index * step:.1f}"]
        ),
    )


def _bars(
    hours: Sequence[datetime],
    series: Sequence[Series],
    top: int,
    step: float,
    stacked: bool,
) -> SafeString:
    # A hairline between hours, so that neighbouring bars read as separate.
    room = max(step - 1, 1)
    width = room if stacked else room / max(len(series), 1)
    rects = []
    for index, hour in enumerate(hours):
        base = 0
        for position, each in enumerate(series):
            value = each.values[index]
            if value <= 0:
                continue
            x = LEFT + index * step + (0 if stacked else position * width)
            low = base if stacked else 0
            # At least a pixel, so that one failure among thousands shows.
            height = max((value / top) * PLOT_HEIGHT, 1.0)
            rects.append(
                (
                    each.key,
                    f"{x:.2f}",
                    f"{_y(low, top) - height:.2f}",
                    f"{width:.2f}",
                    f"{height:.2f}",
                    value,
                    f"{hour:%Y-%m-%d %H:00} UTC: {value:,} {each.label}",
                )
            )
            if stacked:
                base += value
    return format_html_join(
        "",
        '<rect class="capi-s-{}" x="{}" y="{}" width="{}" height="{}" '
        + 'data-value="{}" role="img"><title>{}</title></rect>',
        rects,
    )
