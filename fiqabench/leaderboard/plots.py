"""The site's charts from leaderboard data: error-versus-reject curves and radar charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from fiqabench.benchmark.results import TaskResults
from fiqabench.leaderboard.site_metrics import metric_info
from fiqabench.leaderboard.site_tables import Row, breakdown_measure
from fiqabench.leaderboard.svg import RadarSeries, Series, line_chart, radar_chart, series_class

TOP_MODELS = 10  # lines per task-page chart; every model's own curves are on its page
RADAR_MODELS = 8
_REJECT_CURVES = ("iso_edc", "vlm4fiqa_evr", "crfiqa_erc")
_RADAR_KEYS = ("subdimension", "dimension")


@dataclass(frozen=True)
class LegendItem:
    label: str
    css_class: str
    href: str | None = None


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup
    legend: list[LegendItem] = field(default_factory=list)
    note: str = ""


def curve_axes(curve: str) -> tuple[str, str]:
    """Axis labels of a curve: error-versus-reject families plot FNMR against rejected share."""
    if curve.split("/")[0] in _REJECT_CURVES:
        return "fraction of images rejected", "FNMR"
    return "x", "y"


def curve_names(entries: Sequence[TaskResults]) -> list[str]:
    return list(dict.fromkeys(name for entry in entries for name in entry.curves))


def entry_curve_charts(rows: Sequence[Row], context: str, limit: int = TOP_MODELS) -> list[Chart]:
    """One chart per curve of an entry, with the best `limit` models in the entry's ranking."""
    charts = []
    for curve in curve_names([row.entry for row in rows]):
        having = [row for row in rows if _drawable(row.entry.curves.get(curve, []))][:limit]
        if not having:
            continue
        series = [Series(row.name, row.entry.curves[curve], row.series) for row in having]
        x_label, y_label = curve_axes(curve)
        total = sum(_drawable(row.entry.curves.get(curve, [])) for row in rows)
        note = f"the {len(having)} best of {total} models" if total > len(having) else ""
        charts.append(
            Chart(
                title=f"{context} · {curve}",
                svg=line_chart(
                    series, title=f"{context} · {curve}", x_label=x_label, y_label=y_label
                ),
                legend=[
                    LegendItem(s.label, s.css_class, row.href)
                    for s, row in zip(series, having, strict=True)
                ],
                note=note,
            )
        )
    return charts


def _drawable(points: Sequence[tuple[float, float | None]]) -> bool:
    return any(y is not None and math.isfinite(x) and math.isfinite(y) for x, y in points)


def model_curve_chart(entry_name: str, entry: TaskResults) -> Chart | None:
    """All curves of one model's entry on one chart (they share the FNMR axis)."""
    curves = {name: points for name, points in entry.curves.items() if _drawable(points)}
    if not curves:
        return None
    series = [
        Series(name, points, series_class(i)) for i, (name, points) in enumerate(curves.items())
    ]
    x_label, y_label = curve_axes(next(iter(curves)))
    return Chart(
        title=entry_name,
        svg=line_chart(series, title=entry_name, x_label=x_label, y_label=y_label),
        legend=[LegendItem(s.label, s.css_class) for s in series],
    )


@dataclass(frozen=True)
class RadarAxes:
    key: str  # the breakdown, e.g. `subdimension`
    measure: str  # the field of its cells, e.g. `accuracy`
    values: list[str]


def radar_axes(entries: Sequence[TaskResults]) -> RadarAxes | None:
    """The breakdown a radar can show: subdimension, else dimension, with at least 3 values."""
    for key in _RADAR_KEYS:
        groups = [entry.breakdowns[key] for entry in entries if key in entry.breakdowns]
        values = sorted({value for group in groups for value in group})
        measure = breakdown_measure(groups)
        if len(values) >= 3 and measure is not None:
            return RadarAxes(key, measure, values)
    return None


def _radar_values(entry: TaskResults, axes: RadarAxes) -> list[float | None]:
    group = entry.breakdowns.get(axes.key, {})
    values: list[float | None] = []
    for value in axes.values:
        number = group.get(value, {}).get(axes.measure)
        values.append(
            float(number) if isinstance(number, int | float) and math.isfinite(number) else None
        )
    return values


def _radar(axes: RadarAxes, series: list[RadarSeries], title: str) -> Markup:
    info = metric_info(axes.measure)
    return radar_chart(
        axes.values,
        series,
        title=title,
        ring_format=(lambda v: f"{100 * v:.0f}%") if info.percent else None,
    )


def entry_radar(entry_name: str, rows: Sequence[Row], limit: int = RADAR_MODELS) -> Chart | None:
    """The best `limit` models of an entry across its (sub)dimensions."""
    axes = radar_axes([row.entry for row in rows])
    if axes is None:
        return None
    chosen = list(rows[:limit])
    series = [RadarSeries(row.name, _radar_values(row.entry, axes), row.series) for row in chosen]
    if not any(v is not None for item in series for v in item.values):
        return None  # e.g. open-ended answers nobody has judged yet
    title = f"{entry_name} · {axes.measure} by {axes.key}"
    note = f"the {len(chosen)} best of {len(rows)} models" if len(rows) > len(chosen) else ""
    return Chart(
        title=title,
        svg=_radar(axes, series, title),
        legend=[
            LegendItem(s.label, s.css_class, row.href)
            for s, row in zip(series, chosen, strict=True)
        ],
        note=note,
    )


def model_radar(entry_name: str, model: Row, rows: Sequence[Row]) -> Chart | None:
    """One model against the mean of all submissions, across the entry's (sub)dimensions."""
    axes = radar_axes([row.entry for row in rows])
    if axes is None:
        return None
    own = _radar_values(model.entry, axes)
    if all(v is None for v in own):
        return None
    columns = list(zip(*(_radar_values(row.entry, axes) for row in rows), strict=True))
    mean: list[float | None] = []
    for column in columns:
        present = [v for v in column if v is not None]
        mean.append(sum(present) / len(present) if present else None)
    series = [
        RadarSeries(model.name, own, model.series),
        RadarSeries(f"mean of {len(rows)} submissions", mean, "mean"),
    ]
    title = f"{entry_name} · {axes.measure} by {axes.key}"
    return Chart(
        title=title,
        svg=_radar(axes, series, title),
        legend=[LegendItem(s.label, s.css_class) for s in series],
    )
