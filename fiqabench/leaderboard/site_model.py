"""The leaderboard as the pages see it: models with safe file names, tasks, entries, ranking."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from fiqabench.benchmark.results import TaskResults
from fiqabench.errors import UserError
from fiqabench.leaderboard.site_metrics import (
    HEADLINE,
    Kind,
    ProtocolKey,
    entry_kind,
    metric_info,
    protocol_labels,
)
from fiqabench.leaderboard.site_tables import Row
from fiqabench.leaderboard.submission import Submission
from fiqabench.leaderboard.svg import series_class

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_KIND_ORDER: dict[Kind, int] = {"qa": 0, "describe": 1, "scalar": 2, "detection": 3, "other": 4}


def slugify(name: str, taken: set[str]) -> str:
    """A file-name-safe, unique slug; names that are not already safe get a hash suffix.

    The suffix keeps `Model` and `model`, or two names that only differ in punctuation,
    apart on case-insensitive file systems too.
    """
    base = _UNSAFE.sub("-", name.lower()).strip("-.")[:60] or "x"
    slug = base if base == name else f"{base}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    candidate, counter = slug, 2
    while candidate in taken:
        candidate, counter = f"{slug}-{counter}", counter + 1
    taken.add(candidate)
    return candidate


@dataclass(frozen=True)
class ModelView:
    submission: Submission
    slug: str
    series: str = "c0 d0"  # chart colour classes, by overall rank

    @property
    def name(self) -> str:
        return self.submission.name

    @property
    def page(self) -> str:
        """The model page, relative to the site root."""
        return f"models/{self.slug}.html"


@dataclass
class EntryView:
    """One result entry (e.g. `mini-fiqa:simple`) across the submissions that have it."""

    name: str
    task: str
    kind: Kind
    anchor: str
    page: str  # its section on the task page, from the site root
    rows: list[Row] = field(default_factory=list)
    labels: dict[ProtocolKey, str] = field(default_factory=dict)

    def protocols(self) -> list[tuple[str, str, int]]:
        """(label, description, number of submissions) per distinct protocol key."""
        keys = [ProtocolKey.of(row.entry) for row in self.rows]
        return [(label, key.describe(), keys.count(key)) for key, label in self.labels.items()]


@dataclass
class TaskView:
    name: str
    slug: str
    entries: list[EntryView] = field(default_factory=list)

    @property
    def page(self) -> str:
        return f"tasks/{self.slug}.html"


@dataclass
class Leaderboard:
    models: list[ModelView]  # ranked
    tasks: list[TaskView]
    ranking: tuple[str, str] | None  # (entry, metric) that orders the models, when any

    def entries(self) -> list[EntryView]:
        return [entry for task in self.tasks for entry in task.entries]

    def headline(self) -> list[tuple[EntryView, str]]:
        """(entry, metric) of the overall table's columns: Q&A first, then scalar, detection."""
        ordered = sorted(self.entries(), key=lambda e: _KIND_ORDER[e.kind])
        return [(entry, metric) for entry in ordered for metric in HEADLINE[entry.kind]]


def _rank_key(submission: Submission, ranking: tuple[str, str] | None) -> tuple[int, float, str]:
    """Best first by the ranking metric; missing or NaN values last; ties by name."""
    if ranking is None:
        return (0, 0.0, submission.name)
    entry = submission.results.results.get(ranking[0])
    value = entry.metrics.get(ranking[1]) if entry else None
    if value is None or value != value:
        return (1, 0.0, submission.name)
    sign = -1.0 if metric_info(ranking[1]).better == "higher" else 1.0
    return (0, sign * value, submission.name)


def build_leaderboard(submissions: Sequence[Submission]) -> Leaderboard:
    """Group the submissions' entries by task and rank the models by the first headline metric."""
    if not submissions:
        raise UserError("no submissions to build a leaderboard from")
    names = [s.name for s in submissions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"two submissions share the name {duplicates[0]!r}; names must be unique")
    taken: set[str] = set()
    models = [ModelView(s, slugify(s.name, taken)) for s in submissions]

    tasks: dict[str, TaskView] = {}
    entries: dict[str, EntryView] = {}
    task_slugs: set[str] = set()
    anchors: set[str] = set()
    for model in models:
        for name, entry in model.submission.results.results.items():
            if name not in entries:
                task = tasks.get(entry.task)
                if task is None:
                    task = tasks[entry.task] = TaskView(entry.task, slugify(entry.task, task_slugs))
                anchor = slugify(name, anchors)
                page = f"{task.page}#{anchor}"
                view = EntryView(name, entry.task, entry_kind(entry), anchor, page)
                entries[name] = view
                task.entries.append(view)
    board = Leaderboard(models=models, tasks=[tasks[t] for t in sorted(tasks)], ranking=None)
    headline = board.headline()
    board.ranking = (headline[0][0].name, headline[0][1]) if headline else None
    board.models.sort(key=lambda model: _rank_key(model.submission, board.ranking))
    board.models = [
        ModelView(model.submission, model.slug, series_class(rank))
        for rank, model in enumerate(board.models)
    ]
    for view in entries.values():
        # Each entry's tables list the models best first by the entry's own headline metric.
        own = (view.name, HEADLINE[view.kind][0]) if HEADLINE[view.kind] else board.ranking
        ranked = sorted(
            (m for m in board.models if view.name in m.submission.results.results),
            key=lambda model: _rank_key(model.submission, own),
        )
        view.labels = protocol_labels([m.submission.results.results[view.name] for m in ranked])
        for model in ranked:
            entry = model.submission.results.results[view.name]
            label = view.labels[ProtocolKey.of(entry)]
            view.rows.append(Row(model.name, model.page, entry, label, model.series))
    return board


def entry_of(model: ModelView, entry: EntryView) -> TaskResults | None:
    return model.submission.results.results.get(entry.name)
