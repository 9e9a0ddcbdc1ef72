"""The Usage page's chart, drawn on the server: one bar a day, as numbers a template turns into SVG."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, PAD = 720, 200, 24


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float


@dataclass(frozen=True)
class BarChart:
    """Bars in SVG user units (``WIDTH`` by ``HEIGHT``, the axis at the bottom), the largest value and
    the metric's name: the template draws it and writes the same figures as a table (the text alternative)."""

    bars: list[Bar]
    peak: float
    metric: str
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD

    @property
    def axis_y(self) -> int:
        return self.height - self.pad


def bar_chart(*, points: list[dict[str, Any]], metric: str) -> BarChart:
    """One bar per point (``{"day": date, metric: number}``), scaled so the largest fills the height."""
    peak = max((float(point[metric]) for point in points), default=0.0)
    slot = (WIDTH - 2 * PAD) / max(len(points), 1)
    room = HEIGHT - 2 * PAD
    bars = []
    for index, point in enumerate(points):
        value = float(point[metric])
        tall = room * value / peak if peak else 0.0
        bars.append(Bar(x=round(PAD + index * slot + slot * 0.1, 2), y=round(HEIGHT - PAD - tall, 2),
                        width=round(slot * 0.8, 2), height=round(tall, 2), label=point["day"].isoformat(),
                        value=round(value, 2)))
    return BarChart(bars=bars, peak=round(peak, 2), metric=metric)
