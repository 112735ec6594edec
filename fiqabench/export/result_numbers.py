"""Each number of a task's result entries under a flat name, for harnesses that keep scalars.

lmms-eval keeps one scalar per metric, so every number fiqabench persists in a result entry
(its metrics, its counts, each statistic of each breakdown group) becomes a metric of its own:

    [PART/]METRIC             e.g. accuracy, simple/srocc
    [PART/]count/STATUS       e.g. count/parse_fail
    [PART/]by_KEY/VALUE/STAT  e.g. by_type/single/accuracy

PART is the entry's name after `TASK:` for tasks with several entries (`mini-fiqa:simple`).
Confidence intervals, curves and details are not scalars of their own and are not included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from fiqabench.errors import UserError

Section = Literal["metrics", "counts", "breakdowns"]
Number = float | int | None

# lmms-eval joins a metric and its filter with "," and reads "_stderr" suffixes: keep names to
# characters no harness treats specially; "/" separates the parts of a name.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


class ResultNumbers(Protocol):
    """What a result entry holds, persisted (`TaskResults`) or just aggregated (`TaskResult`)."""

    @property
    def metrics(self) -> Mapping[str, float | None]: ...

    @property
    def counts(self) -> Mapping[str, int]: ...

    @property
    def breakdowns(self) -> Mapping[str, Mapping[str, Mapping[str, Number]]]: ...


class NumberPath(BaseModel):
    """Where one number sits in a task's entries: `entry.metrics[name]`, `entry.counts[name]`
    or `entry.breakdowns[key][group][name]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    entry: str
    section: Section
    name: str
    key: str | None = None
    group: str | None = None


def number_paths(entries: Mapping[str, ResultNumbers]) -> list[NumberPath]:
    """Every number of the entries, in the order the entries report them."""
    paths: list[NumberPath] = []
    for entry, numbers in entries.items():
        paths += [NumberPath(entry=entry, section="metrics", name=name) for name in numbers.metrics]
        paths += [NumberPath(entry=entry, section="counts", name=name) for name in numbers.counts]
        for key, groups in numbers.breakdowns.items():
            for group, stats in groups.items():
                paths += [
                    NumberPath(entry=entry, section="breakdowns", name=stat, key=key, group=group)
                    for stat in stats
                ]
    return paths


def read_number(entries: Mapping[str, ResultNumbers], path: NumberPath) -> Number:
    """The number at `path`, or None when the entries do not report it."""
    numbers = entries.get(path.entry)
    if numbers is None:
        return None
    if path.section == "metrics":
        return numbers.metrics.get(path.name)
    if path.section == "counts":
        return numbers.counts.get(path.name)
    groups = numbers.breakdowns.get(path.key or "", {})
    return groups.get(path.group or "", {}).get(path.name)


def metric_name(task: str, path: NumberPath) -> str:
    part = [] if path.entry == task else [path.entry.removeprefix(f"{task}:")]
    if path.section == "metrics":
        tail = [path.name]
    elif path.section == "counts":
        tail = ["count", path.name]
    else:
        tail = [f"by_{path.key}", path.group or "", path.name]
    return "/".join(_UNSAFE.sub("_", piece) or "_" for piece in [*part, *tail])


def metric_names(task: str, paths: Iterable[NumberPath]) -> dict[str, NumberPath]:
    """Flat name → number; two numbers whose names clash once cleaned are an error."""
    named: dict[str, NumberPath] = {}
    for path in paths:
        name = metric_name(task, path)
        if name in named and named[name] != path:
            raise UserError(
                f"task '{task}': two result numbers share the metric name '{name}' "
                f"({_describe(named[name])} and {_describe(path)}); rename a breakdown value"
            )
        named[name] = path
    return named


def _describe(path: NumberPath) -> str:
    if path.section == "breakdowns":
        return f"{path.entry} breakdown {path.key}={path.group!r} {path.name}"
    return f"{path.entry} {path.section} {path.name}"
