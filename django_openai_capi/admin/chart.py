"""A bar chart of hourly delivery, as inline SVG drawn on the server.

No JavaScript and no library: a few dozen ``<rect>`` elements, each with a ``<title>``
that a pointer or a screen reader gets. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


@dataclass(frozen=True, slots=True)
class Bar:
    value: int
    #: What the bar's tooltip and its accessible name say.
    label: str


WIDTH = 720
HEIGHT = 120
#: Room for the axis text under the bars and the maximum above them.
MARGIN = 16


def bar_chart(
    bars: Sequence[Bar], *, title: str, color: str, axis: tuple[str, str]
) -> SafeString:
    """An SVG chart of *bars*, scaled to the largest, titled *title*.

    *axis* is the text under its left and right ends (the first and last hour).
    """
    top = max((bar.value for bar in bars), default=0)
    plot = HEIGHT - 2 * MARGIN
    step = WIDTH / max(len(bars), 1)
    width = max(step - 1, 1)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (
                f"{index * step:.1f}",
                f"{MARGIN + plot - height:.1f}",
                f"{width:.1f}",
                f"{height:.1f}",
                bar.label,
            )
            for index, bar in enumerate(bars)
            for height in [_height(bar.value, top, plot)]
        ),
    )
    return format_html(
        '<svg class="capi-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        + 'width="100%" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        + "<title>{}</title>"
        + '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-width="1"/>'
        + '<g fill="{}">{}</g>'
        + '<text x="0" y="10" font-size="10" fill="#666">{}</text>'
        + '<text x="0" y="{}" font-size="10" fill="#666">{}</text>'
        + '<text x="{}" y="{}" font-size="10" fill="#666" text-anchor="end">{}</text>'
        + "</svg>",
        title,
        WIDTH,
        HEIGHT,
        title,
        HEIGHT - MARGIN,
        WIDTH,
        HEIGHT - MARGIN,
        color,
        rects,
        f"max {top:,}",
        HEIGHT - 3,
        axis[0],
        WIDTH,
        HEIGHT - 3,
        axis[1],
    )


def _height(value: int, top: int, plot: float) -> float:
    # At least a pixel for any non-zero value, so that one failure among thousands shows.
    if value <= 0:
        return 0.0
    return max(value / top * plot, 1.0)
