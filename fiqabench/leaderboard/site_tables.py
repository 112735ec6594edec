"""Sortable tables of the site as plain data: the overall table, entry tables, breakdowns.

A cell carries the text people read and the value the sorting script compares
(`data-sort-value`: the number in full precision, or empty when missing, which sorts last).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from fiqabench.benchmark.results import TaskResults
from fiqabench.leaderboard.site_metrics import (
    Better,
    ProtocolKey,
    format_ci,
    format_metric,
    format_value,
    metric_info,
    sort_value,
)

ColumnType = Literal["number", "text"]

# Names of breakdown-cell fields that count samples rather than measure them.
_COUNT_FIELDS = frozenset({"n", "ok", "parse_fail", "error", "unscored", "total"})


@dataclass(frozen=True)
class Column:
    label: str
    type: ColumnType = "number"
    title: str = ""  # hover text: the metric's name, direction, protocol
    better: Better = None

    @property
    def first_direction(self) -> str:
        """The direction of the first click: best first."""
        return "ascending" if self.type == "text" or self.better == "lower" else "descending"


@dataclass(frozen=True)
class Cell:
    text: str
    sort: str
    detail: str = ""  # shown small after the text: a CI, a protocol mark
    title: str = ""
    href: str | None = None


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    caption: str = ""


def text_cell(text: str, href: str | None = None, title: str = "") -> Cell:
    return Cell(text=text, sort=text, href=href, title=title)


def metric_cell(entry: TaskResults | None, metric: str, note: str = "") -> Cell:
    """A metric of an entry with its 95% CI when the entry has one; `—` when missing."""
    if entry is None:
        return Cell(text="—", sort="", title="not evaluated")
    value = entry.metrics.get(metric)
    ci = entry.ci95.get(metric)
    detail = " ".join(part for part in (format_ci(metric, ci), note) if part)
    return Cell(
        text=format_metric(metric, value),
        sort=sort_value(value),
        detail=detail,
        title=f"{metric} = {value!r}" + (f", 95% CI {ci[0]!r} to {ci[1]!r}" if ci else ""),
    )


def metric_column(metric: str, context: str = "") -> Column:
    info = metric_info(metric)
    unit = " (%)" if info.percent else ""
    direction = f"; {info.better} is better" if info.better else ""
    title = f"{context + ' · ' if context else ''}{metric}{unit}{direction}"
    return Column(label=f"{info.label}{unit} {info.arrow}".strip(), title=title, better=info.better)


@dataclass(frozen=True)
class Row:
    """One submission's entry, as the tables of an entry see it."""

    name: str
    href: str
    entry: TaskResults
    protocol_label: str
    series: str = "c0 d0"  # the model's chart colour, the same on every page


def protocol_cell(row: Row) -> Cell:
    return Cell(
        text=row.protocol_label, sort=row.protocol_label, title=ProtocolKey.of(row.entry).describe()
    )


def entry_table(rows: Sequence[Row], metrics: Sequence[str], context: str) -> Table:
    """Models down, metrics across, then counts; the protocol label names what made each row."""
    columns = [Column("model", "text"), Column("protocol", "text", "see the protocol list")]
    columns += [metric_column(metric, context) for metric in metrics]
    columns += [Column("n", title="samples"), Column("n failed", title="samples that failed")]
    table = Table(columns=columns)
    for row in rows:
        cells = [text_cell(row.name, row.href), protocol_cell(row)]
        cells += [metric_cell(row.entry, metric) for metric in metrics]
        for count in ("total", "error"):
            value = row.entry.counts.get(count)
            cells.append(Cell(text=format_value(value, False), sort=sort_value(value)))
        table.rows.append(cells)
    return table


def breakdown_measure(groups: Sequence[dict[str, dict[str, float | int | None]]]) -> str | None:
    """The field a breakdown table shows: `accuracy`, else the first field that is not a count."""
    fields = list(
        dict.fromkeys(name for group in groups for cells in group.values() for name in cells)
    )
    if "accuracy" in fields:
        return "accuracy"
    return next((name for name in fields if name not in _COUNT_FIELDS), None)


def breakdown_table(rows: Sequence[Row], key: str, context: str) -> Table | None:
    """One breakdown (e.g. `dimension`): models down, its values across, like the paper's tables."""
    groups = [row.entry.breakdowns[key] for row in rows if key in row.entry.breakdowns]
    measure = breakdown_measure(groups)
    if measure is None:
        return None
    values = sorted({value for group in groups for value in group})
    info = metric_info(measure)
    unit = " (%)" if info.percent else ""
    columns = [Column("model", "text"), Column("protocol", "text", "see the protocol list")]
    columns += [
        Column(
            label=value,
            title=f"{context} · {measure}{unit} where {key} = {value}",
            better=info.better,
        )
        for value in values
    ]
    table = Table(columns=columns, caption=f"{info.label}{unit} by {key}")
    for row in rows:
        group = row.entry.breakdowns.get(key, {})
        cells = [text_cell(row.name, row.href), protocol_cell(row)]
        for value in values:
            measured = group.get(value, {})
            number = measured.get(measure)
            n = measured.get("n")
            cells.append(
                Cell(
                    text=format_value(number, info.percent),
                    sort=sort_value(number),
                    title=f"n = {n}" if n is not None else "",
                )
            )
        table.rows.append(cells)
    return table


def overall_table(
    models: Sequence[tuple[str, str, str, str, str]],
    columns: Sequence[tuple[str, str]],
    cells: Sequence[Sequence[Cell]],
) -> Table:
    """Models down (name, model id, revision, samples covered, link), the headline metric of
    each entry across."""
    header = [
        Column("model", "text"),
        Column("model id", "text"),
        Column("revision", "text"),
        Column("samples", "text"),
    ]
    header += [
        Column(
            label=f"{entry} {metric_column(metric).label}",
            title=metric_column(metric, entry).title,
            better=metric_info(metric).better,
        )
        for entry, metric in columns
    ]
    table = Table(columns=header)
    for (name, model_id, revision, covered, href), metric_cells in zip(models, cells, strict=True):
        text = [text_cell(name, href), text_cell(model_id), text_cell(revision), text_cell(covered)]
        table.rows.append([*text, *metric_cells])
    return table
