"""Line charts as plain SVG geometry, drawn by ``templates/dashboard/_chart.html``.

No script and no external asset: the server computes the points, the template writes
``<svg role="img">`` with a title and description, and the same numbers as a table.
Series differ by colour *and* dash pattern and marker, so colour is not the only cue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28
#: Colour, dash pattern per series (in order); colours pass 3:1 against white.
STYLES = (("#1f5fa8", ""), ("#b3261e", "6 3"), ("#2e7d32", "2 3"), ("#6a1b9a", "8 3 2 3"),
          ("#8a5a00", "1 2"), ("#00695c", "10 4"))


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    values: list[int]
    points: str
    color: str
    dash: str
    total: int


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    desc: str
    lines: list[Line]
    buckets: list[dt.date]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    bottom_edge: int = HEIGHT - BOTTOM

    @property
    def rows(self) -> list[tuple[dt.date, list[int]]]:
        return [(day, [line.values[i] for line in self.lines]) for i, day in enumerate(self.buckets)]


def _nice_max(value: int) -> int:
    """The axis top: the first of 1, 2, 5, 10, 20, 50... that is at least ``value``."""
    base = 1
    while True:
        for step in (1, 2, 5):
            if base * step >= value:
                return base * step
        base *= 10


def line_chart(chart_id: str, title: str, desc: str, buckets: list[dt.date],
               series: list[tuple[str, str, list[int]]]) -> Chart:
    """A chart of ``series`` (key, label, one value per bucket) over ``buckets``."""
    top = _nice_max(max((max(values, default=0) for _, _, values in series), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(buckets) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + i * step, 1)

    def y(v: int) -> float:
        return round(TOP + plot_h - v * plot_h / top, 1)

    lines = []
    for n, (key, label, values) in enumerate(series):
        color, dash = STYLES[n % len(STYLES)]
        points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        lines.append(Line(key, label, values, points, color, dash, sum(values)))
    every = max(1, -(-len(buckets) // 6))
    x_ticks = [Tick(x(i), HEIGHT - BOTTOM + 16, day.strftime("%d.%m")) for i, day in enumerate(buckets)
               if i % every == 0]
    marks = (0, top // 2, top) if top % 2 == 0 and top > 1 else (0, top)
    y_ticks = [Tick(LEFT - 6, y(v), str(v)) for v in marks]
    return Chart(chart_id, title, desc, lines, buckets, x_ticks, y_ticks)
