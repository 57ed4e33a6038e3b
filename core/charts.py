"""The geometry of small bar charts drawn on the server as SVG (no script, no network): a
Chart is what templates/_chart.html turns into <rect> and <text> elements. The staff
dashboard (ops.charts) and the Usage page (billing) draw with it."""

from dataclasses import dataclass


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[Label]
    legend: list[tuple[str, str]]  # (css class, name)
    description: str


def scale(values) -> float:
    top = max((float(v) for v in values), default=0.0)
    return top if top > 0 else 1.0
