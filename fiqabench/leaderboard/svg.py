"""Inline SVG charts for the leaderboard site: curve plots and radar charts.

Charts are built as ElementTree elements, so every label that came from a submission (a model
name, a curve name) is escaped by the serialiser; the result is wrapped in `Markup` only here.
Colours and dash patterns are CSS classes (`c0`…`c9`, `d0`…`d3`) defined in the site's
stylesheet, so the pages need no inline styles.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

N_COLOURS = 10
_middle = {"text-anchor": "middle"}
N_DASHES = 4


def series_class(index: int) -> str:
    """Colour and dash classes of the index-th series: ten colours, then dashed variants."""
    return f"c{index % N_COLOURS} d{(index // N_COLOURS) % N_DASHES}"


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (x, y); a None y breaks the line
    css_class: str


@dataclass(frozen=True)
class RadarSeries:
    label: str
    values: Sequence[float | None]  # one per axis; None: not measured on that axis
    css_class: str


@dataclass(frozen=True)
class Frame:
    """The plotting area inside an SVG of `width` x `height` pixels."""

    width: float = 480.0
    height: float = 300.0
    left: float = 56.0
    right: float = 14.0
    top: float = 28.0
    bottom: float = 44.0

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


@dataclass(frozen=True)
class Axes:
    frame: Frame
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def pixel(self, x: float, y: float) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        px = self.frame.left + (x - x0) / (x1 - x0) * self.frame.plot_width
        py = self.frame.top + self.frame.plot_height - (y - y0) / (y1 - y0) * self.frame.plot_height
        return px, py


def nice_step(span: float, count: int) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about `count` intervals."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10.0 * power


def nice_range(low: float, high: float, count: int = 5) -> tuple[float, float, float]:
    """(low, high, step) widened to whole steps; a degenerate span becomes one unit wide."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"cannot scale an axis to [{low}, {high}]")
    if high - low <= 1e-12 * max(1.0, abs(low), abs(high)):
        low, high = low - 0.5, high + 0.5
    step = nice_step(high - low, count)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step, step


def ticks(low: float, high: float, step: float) -> list[float]:
    n = round((high - low) / step)
    return [round(low + i * step, 12) for i in range(n + 1)]


def tick_label(value: float, step: float) -> str:
    """The value with as many decimals as the step needs (0.25 → 2, 5 → 0)."""
    decimals = next(d for d in range(13) if abs(round(step, d) - step) <= 1e-9 * step)
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _fmt(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def path_data(axes: Axes, points: Sequence[tuple[float, float | None]]) -> str:
    """SVG path commands through the points; a None y starts a new sub-path.

    Consecutive points that land on the same tenth of a pixel are drawn once, which keeps
    long curves (one point per distinct quality value) small without changing the picture.
    """
    commands: list[str] = []
    previous: tuple[str, str] | None = None
    pen_down = False
    for x, y in points:
        if y is None or not (math.isfinite(x) and math.isfinite(y)):
            pen_down = False
            previous = None
            continue
        px, py = axes.pixel(x, y)
        here = (_fmt(px), _fmt(py))
        if here == previous:
            continue
        commands.append(f"{'L' if pen_down else 'M'}{here[0]} {here[1]}")
        previous, pen_down = here, True
    return " ".join(commands)


def _svg(frame: Frame, title: str, css_class: str) -> ET.Element:
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": css_class,
            "viewBox": f"0 0 {_fmt(frame.width)} {_fmt(frame.height)}",
            "width": _fmt(frame.width),
            "height": _fmt(frame.height),
            "role": "img",
            "aria-label": title,
        },
    )
    ET.SubElement(svg, "title").text = title
    return svg


def _text(parent: ET.Element, x: float, y: float, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, "text", {"x": _fmt(x), "y": _fmt(y), **attributes})
    element.text = text
    return element


def _finite(points: Sequence[tuple[float, float | None]]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if y is not None and math.isfinite(x) and math.isfinite(y)]


def data_ranges(
    series: Sequence[Series],
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The x and y extent of all finite points, including 0 on y (errors start at zero)."""
    points = [p for s in series for p in _finite(s.points)]
    if not points:
        return None
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    return (min(xs), max(xs)), (min(0.0, *ys), max(0.0, *ys))


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    frame: Frame = Frame(),
) -> Markup:
    """A line chart of the series on shared, nicely rounded axes, as inline SVG markup."""
    svg = _svg(frame, title, "chart line-chart")
    ranges = data_ranges(series)
    if ranges is None:
        _text(svg, frame.width / 2, frame.height / 2, "no points to plot", **_middle)
        return _markup(svg)
    x0, x1, x_step = nice_range(*ranges[0])
    y0, y1, y_step = nice_range(*ranges[1])
    axes = Axes(frame, (x0, x1), (y0, y1))
    grid = ET.SubElement(svg, "g", {"class": "grid"})
    for value in ticks(x0, x1, x_step):
        px, _ = axes.pixel(value, y0)
        ET.SubElement(grid, "line", _line(px, frame.top, px, frame.top + frame.plot_height))
        _text(grid, px, frame.top + frame.plot_height + 16, tick_label(value, x_step), **_middle)
    for value in ticks(y0, y1, y_step):
        _, py = axes.pixel(x0, value)
        ET.SubElement(grid, "line", _line(frame.left, py, frame.left + frame.plot_width, py))
        _text(grid, frame.left - 6, py + 4, tick_label(value, y_step), **{"text-anchor": "end"})
    ET.SubElement(
        svg,
        "rect",
        {
            "class": "plot-area",
            "x": _fmt(frame.left),
            "y": _fmt(frame.top),
            "width": _fmt(frame.plot_width),
            "height": _fmt(frame.plot_height),
        },
    )
    _text(svg, frame.left + frame.plot_width / 2, frame.height - 6, x_label, **_middle)
    _text(
        svg,
        14,
        frame.top + frame.plot_height / 2,
        y_label,
        transform=f"rotate(-90 14 {_fmt(frame.top + frame.plot_height / 2)})",
        **_middle,
    )
    _text(svg, frame.left, 16, title, **{"class": "chart-title"})
    lines = ET.SubElement(svg, "g", {"class": "series"})
    for item in series:
        data = path_data(axes, item.points)
        if not data:
            continue
        path = ET.SubElement(lines, "path", {"class": f"line {item.css_class}", "d": data})
        ET.SubElement(path, "title").text = item.label
    return _markup(svg)


def _line(x1: float, y1: float, x2: float, y2: float) -> dict[str, str]:
    return {"x1": _fmt(x1), "y1": _fmt(y1), "x2": _fmt(x2), "y2": _fmt(y2)}


@dataclass(frozen=True)
class Radar:
    """A radar of `n_axes` spokes around (cx, cy) with radius `radius`; axis 0 points up."""

    n_axes: int
    cx: float
    cy: float
    radius: float
    low: float = 0.0
    high: float = 1.0

    def point(self, axis: int, share: float) -> tuple[float, float]:
        """The point at `share` of the radius along spoke `axis` (1: on the outer ring)."""
        angle = -math.pi / 2 + 2 * math.pi * axis / self.n_axes
        r = share * self.radius
        return self.cx + r * math.cos(angle), self.cy + r * math.sin(angle)

    def vertex(self, axis: int, value: float) -> tuple[float, float]:
        """Where `value` lies on spoke `axis`, clamped to the chart's range."""
        return self.point(axis, min(1.0, max(0.0, (value - self.low) / (self.high - self.low))))


def radar_chart(
    axes: Sequence[str],
    series: Sequence[RadarSeries],
    *,
    title: str,
    low: float = 0.0,
    high: float = 1.0,
    size: float = 360.0,
    rings: int = 4,
    ring_format: Callable[[float], str] | None = None,
) -> Markup:
    """Series as polygons over spokes (values scaled from low to high, clamped).

    A series with a missing value draws only its measured vertices as dots: joining the
    others across the gap would draw a value nobody measured.
    """
    if len(axes) < 3:
        raise ValueError(f"a radar chart needs at least 3 axes, not {len(axes)}")
    frame = Frame(width=size + 160, height=size + 40)
    svg = _svg(frame, title, "chart radar-chart")
    radar = Radar(len(axes), frame.width / 2, frame.height / 2 + 8, size / 2 - 30, low, high)
    grid = ET.SubElement(svg, "g", {"class": "grid"})
    for ring in range(1, rings + 1):
        value = low + (high - low) * ring / rings
        corners = [radar.vertex(i, value) for i in range(len(axes))]
        ET.SubElement(grid, "polygon", {"points": _points(corners), "class": "ring"})
        label = ring_format(value) if ring_format else tick_label(value, (high - low) / rings)
        _text(grid, radar.cx + 3, corners[0][1] + 11, label)
    for index, name in enumerate(axes):
        x, y = radar.vertex(index, high)
        ET.SubElement(grid, "line", _line(radar.cx, radar.cy, x, y))
        lx, ly = radar.point(index, 1.1)
        anchor = "middle" if abs(lx - radar.cx) < 1 else ("start" if lx > radar.cx else "end")
        _text(grid, lx, ly + 4, name, **{"text-anchor": anchor, "class": "axis-label"})
    _text(svg, 8, 16, title, **{"class": "chart-title"})
    shapes = ET.SubElement(svg, "g", {"class": "series"})
    for item in series:
        if len(item.values) != len(axes):
            raise ValueError(
                f"series {item.label!r} has {len(item.values)} values for {len(axes)} axes"
            )
        group = ET.SubElement(shapes, "g", {"class": f"radar-series {item.css_class}"})
        ET.SubElement(group, "title").text = item.label
        present = [(i, v) for i, v in enumerate(item.values) if v is not None and math.isfinite(v)]
        if len(present) == len(axes):
            corners = [radar.vertex(i, v) for i, v in present]
            ET.SubElement(group, "polygon", {"points": _points(corners), "class": "area"})
        for i, v in present:
            x, y = radar.vertex(i, v)
            ET.SubElement(group, "circle", {"cx": _fmt(x), "cy": _fmt(y), "r": "3"})
    return _markup(svg)


def _points(corners: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in corners)


def _markup(svg: ET.Element) -> Markup:
    # ElementTree escapes every text node and attribute value it serialises.
    return Markup(ET.tostring(svg, encoding="unicode", short_empty_elements=True))
