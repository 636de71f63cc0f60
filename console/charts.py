"""Bar chart geometry for server-drawn SVG: the template draws what this computes.

Coordinates are floats (they are pixels); the values and labels stay as the caller
gives them (Decimal money stays Decimal). No chart library, no script: the markup is
plain SVG with classes, which the CSP allows. The bars of a column chart (a year of
days is 366 of them) are written here, one formatted string each, rather than by a
template loop that escapes every attribute of every bar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from markupsafe import Markup, escape


def nice_ceiling(value) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (axis top)."""
    value = Decimal(value)
    if value <= 0:
        return Decimal(1)
    power = Decimal(10) ** math.floor(math.log10(value))
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: object
    href: str | None = None
    title: str = ""


@dataclass
class Tick:
    position: float  # y for a column chart, x for a row chart
    label: str


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick] = field(default_factory=list)
    # Column charts: which bars get an x-axis label (every few, so labels never overlap).
    labelled: set[int] = field(default_factory=set)
    plot_left: float = 0
    plot_right: float = 0
    plot_top: float = 0
    plot_bottom: float = 0

    def column_svg(self, linked: bool) -> Markup:
        """The bars of a column chart, each in a link to its ``href`` when ``linked``, with
        its title, and the labels of the bars in ``labelled`` below them."""
        out = []
        label_y = pixels(self.height - 8)
        for i, bar in enumerate(self.bars):
            rect = (f'<rect class="bar" x="{pixels(bar.x)}" y="{pixels(bar.y)}" width="{pixels(bar.width)}" '
                    f'height="{pixels(bar.height)}"><title>{escape(bar.title)}</title></rect>')
            out.append(f'<a href="{escape(bar.href)}">{rect}</a>' if linked and bar.href else rect)
            if i in self.labelled:
                out.append(f'<text class="tick" x="{pixels(bar.x + bar.width / 2)}" y="{label_y}" '
                           f'text-anchor="middle">{escape(bar.label)}</text>')
        return Markup("\n".join(out))


def pixels(value: float) -> str:
    """A coordinate to a hundredth of a pixel, without trailing zeros ("64.23", "214")."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def column_chart(points: list[tuple[str, object, str | None, str]], *, width: int = 760, height: int = 240,
                 tick_format=str, ticks: int = 4, label_every: int = 5) -> Chart:
    """Vertical bars, one per (label, value, href, title), left to right."""
    # The right margin leaves room for half of the last day's label, centred on its bar.
    left, right, top, bottom = 64, 22, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max((Decimal(v) for _, v, _, _ in points), default=0))
    slot = plot_w / max(len(points), 1)
    gap = min(6.0, slot * 0.25)
    bars = []
    for i, (label, value, href, title) in enumerate(points):
        h = float(Decimal(value) / top_value) * plot_h if value else 0.0
        # A non-zero value always shows as at least a sliver.
        h = max(h, 1.5) if value else 0.0
        bars.append(Bar(left + i * slot + gap / 2, top + plot_h - h, slot - gap, h, label, value, href, title))
    tick_rows = [Tick(top + plot_h - plot_h * k / ticks, tick_format(top_value * k / ticks)) for k in range(ticks + 1)]
    last = len(points) - 1
    labelled = {i for i in range(len(points)) if (last - i) % label_every == 0}
    return Chart(width, height, bars, tick_rows, labelled, left, width - right, top, top + plot_h)


def row_chart(points: list[tuple[str, int, str | None, str]], *, width: int = 380, row_height: int = 26,
              label_width: int = 90, value_width: int = 52) -> Chart:
    """Horizontal bars, one row per (label, value, href, title), top to bottom."""
    plot_w = width - label_width - value_width
    top_value = max((v for _, v, _, _ in points), default=0) or 1
    bars = []
    for i, (label, value, href, title) in enumerate(points):
        w = (value / top_value) * plot_w if value else 0.0
        w = max(w, 1.5) if value else 0.0
        bars.append(Bar(label_width, i * row_height + 4, w, row_height - 8, label, value, href, title))
    height = max(len(points), 1) * row_height
    return Chart(width, height, bars, plot_left=label_width, plot_right=width - value_width, plot_bottom=height)
