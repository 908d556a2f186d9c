"""Geometry of the overview's line chart (pure): the template draws it as inline SVG.

No script and no inline style, so it lives within the site's CSP; colours are SVG presentation
attributes. The view box is small so its text stays legible when scaled down to a phone.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

COLOURS = {
    "signups": "#2563eb",
    "confirmations": "#16a34a",
    "unsubscribes": "#d97706",
    "bounces": "#7c3aed",
    "complaints": "#dc2626",
}


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline points>
    total: int


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    lines: list[Line]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    title: str


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def line_chart(
    days: list[dt.date],
    series: dict[str, list[int]],
    *,
    width: int = 480,
    height: int = 220,
    title: str = "",
) -> Chart:
    """One polyline per series over ``days``; the y axis from 0 to a round maximum."""
    left, right, top, bottom = 44, width - 8, 10, height - 24
    peak = nice_ceiling(max((max(v) for v in series.values() if v), default=0))
    n = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return left + (right - left) * i / n

    def y(v: int) -> float:
        return bottom - (bottom - top) * v / peak

    lines = [
        Line(
            name,
            COLOURS.get(name, "#52606d"),
            " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values)),
            sum(values),
        )
        for name, values in series.items()
    ]
    y_ticks = [Tick(y(v), str(v)) for v in sorted({0, peak // 2, peak}) if v or peak]
    x_ticks = []
    if days:
        step = max(1, len(days) // 3)
        picks = list(range(0, len(days), step))
        if len(days) - 1 - picks[-1] < step // 2:
            picks[-1] = len(days) - 1
        else:
            picks.append(len(days) - 1)
        x_ticks = [Tick(x(i), days[i].strftime("%b %d")) for i in picks]
    return Chart(width, height, left, top, right, bottom, lines, y_ticks, x_ticks, title)
