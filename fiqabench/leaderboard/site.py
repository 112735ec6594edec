"""Build the static leaderboard site: HTML pages, bundled CSS/JS, thumbnails, leaderboard.json.

The site works from the file system with no network: links are relative, plots are inline SVG,
sorting is a small bundled script, and nothing is fetched at run time. It is built in a
staging folder next to the target and swapped in at the end, so a failed build leaves the
previous site as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiqabench
from fiqabench.benchmark.results import TaskResults
from fiqabench.benchmark.schema import Record
from fiqabench.errors import UserError
from fiqabench.leaderboard import plots
from fiqabench.leaderboard.bundle_thumbs import LocalTasks, thumbnail_key
from fiqabench.leaderboard.render import STATIC, render_page
from fiqabench.leaderboard.site_metrics import HEADLINE, ProtocolKey, main_metrics, metric_info
from fiqabench.leaderboard.site_model import (
    EntryView,
    Leaderboard,
    ModelView,
    TaskView,
    build_leaderboard,
    entry_of,
    slugify,
)
from fiqabench.leaderboard.site_samples import pages, sample_row, verdict_counts
from fiqabench.leaderboard.site_tables import (
    Cell,
    Table,
    breakdown_table,
    entry_table,
    metric_cell,
    overall_table,
)
from fiqabench.leaderboard.site_thumbs import ThumbnailWriter
from fiqabench.leaderboard.submission import Submission

LEADERBOARD_FILE = "leaderboard.json"
LEADERBOARD_SCHEMA = "fiqabench.leaderboard/1"
DEFAULT_TITLE = "fiqabench leaderboard"


@dataclass(frozen=True)
class SiteReport:
    root: Path
    pages: int
    files: int
    bytes: int
    thumbnails: int


class _Writer:
    def __init__(self, root: Path):
        self.root = root
        self.pages = 0

    def page(self, page: str, template: str, **context: object) -> None:
        path = self.root / page
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_page(template, page, **context), encoding="utf-8")
        self.pages += 1


def build_site(
    submissions: Sequence[Submission],
    out: Path,
    *,
    tasks: LocalTasks | None = None,
    title: str = DEFAULT_TITLE,
) -> SiteReport:
    """Write the site for these submissions to `out` (replacing an earlier site there)."""
    board = build_leaderboard(submissions)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    try:
        writer = _Writer(staging)
        thumbs = ThumbnailWriter(staging)
        shutil.copytree(STATIC, staging / "static")
        _write_site(board, writer, thumbs, tasks or LocalTasks(None), title)
        _write_json(staging / LEADERBOARD_FILE, leaderboard_document(board, title))
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = [path for path in out.rglob("*") if path.is_file()]
    return SiteReport(
        root=out,
        pages=writer.pages,
        files=len(files),
        bytes=sum(path.stat().st_size for path in files),
        thumbnails=len(thumbs.names),
    )


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError("--out must be a folder for the site, not a file", path=out)
    if out.is_dir() and any(out.iterdir()) and not (out / LEADERBOARD_FILE).is_file():
        raise UserError(
            f"refusing to replace a folder that is not a fiqabench site (no {LEADERBOARD_FILE}); "
            "choose an empty or new folder",
            path=out,
        )


def _swap_in(staging: Path, out: Path) -> None:
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a site is meant to be read
    if not out.exists():
        staging.rename(out)
        return
    old = out.parent / f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}"
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _write_site(
    board: Leaderboard, writer: _Writer, thumbs: ThumbnailWriter, tasks: LocalTasks, title: str
) -> None:
    nav = [(task.name, task.page) for task in board.tasks]
    common = {"site_title": title, "nav": nav, "version": fiqabench.__version__}
    writer.page("index.html", "index.html.j2", **common, **_index_context(board))
    for task in board.tasks:
        writer.page(task.page, "task.html.j2", **common, task=task, sections=_task_sections(task))
    for model in board.models:
        browser = _write_samples(model, board, writer, thumbs, tasks, common)
        writer.page(
            model.page, "model.html.j2", **common, **_model_context(model, board), browser=browser
        )


def _index_context(board: Leaderboard) -> dict[str, Any]:
    headline = board.headline()
    columns = [(entry.name, metric) for entry, metric in headline]
    models = [
        (
            m.name,
            m.submission.results.manifest.model.model_id,
            m.submission.results.manifest.model.revision or "—",
            _coverage(m.submission.results.manifest.limit),
            m.page,
        )
        for m in board.models
    ]
    cells = [
        [_overall_cell(model, entry, metric) for entry, metric in headline]
        for model in board.models
    ]
    qa = next((entry for entry in board.entries() if entry.kind == "qa"), None)
    radar = plots.entry_radar(qa.name, qa.rows) if qa is not None else None
    return {
        "table": overall_table(models, columns, cells),
        "headline_entries": list({entry.name: entry for entry, _ in headline}.values()),
        "ranking": board.ranking,
        "radar": radar,
        "board": board,
    }


def _coverage(limit: int | None) -> str:
    """Which samples a run covers: a --limit run is a subset, not comparable to a full one."""
    return "all" if limit is None else f"first {limit}"


def _overall_cell(model: ModelView, entry: EntryView, metric: str) -> Cell:
    result = entry_of(model, entry)
    if result is None:
        return metric_cell(None, metric)
    label = entry.labels[ProtocolKey.of(result)]
    # Only numbers measured under a less common protocol are marked; the legend explains.
    return metric_cell(result, metric, note=label if label != "P1" else "")


@dataclass(frozen=True)
class Section:
    entry: EntryView
    main: Table
    breakdowns: list[Table]
    radar: plots.Chart | None
    curves: list[plots.Chart]


def _task_sections(task: TaskView) -> list[Section]:
    sections = []
    for entry in task.entries:
        results = [row.entry for row in entry.rows]
        breakdown_keys = list(dict.fromkeys(key for result in results for key in result.breakdowns))
        tables = [breakdown_table(entry.rows, key, entry.name) for key in breakdown_keys]
        sections.append(
            Section(
                entry=entry,
                main=entry_table(entry.rows, main_metrics(entry.kind, results), entry.name),
                breakdowns=[table for table in tables if table is not None],
                radar=plots.entry_radar(entry.name, entry.rows),
                curves=plots.entry_curve_charts(entry.rows, entry.name),
            )
        )
    return sections


@dataclass(frozen=True)
class ModelEntry:
    entry: EntryView
    result: TaskResults
    protocol: str
    task_page: str
    metrics: list[tuple[str, Cell, str]]  # (metric, value cell, direction)
    curves: plots.Chart | None
    radar: plots.Chart | None


def _model_context(model: ModelView, board: Leaderboard) -> dict[str, Any]:
    results = []
    for task in board.tasks:
        for entry in task.entries:
            result = entry_of(model, entry)
            if result is None:
                continue
            own = next(row for row in entry.rows if row.name == model.name)
            metrics = [
                (_with_unit(name), metric_cell(result, name), _direction(name))
                for name in result.metrics
            ]
            results.append(
                ModelEntry(
                    entry=entry,
                    result=result,
                    protocol=ProtocolKey.of(result).describe(),
                    task_page=entry.page,
                    metrics=metrics,
                    curves=plots.model_curve_chart(entry.name, result),
                    radar=plots.model_radar(entry.name, own, entry.rows),
                )
            )
    manifest = model.submission.results.manifest
    return {
        "model": model,
        "manifest": manifest,
        "manifest_json": manifest.model_dump_json(indent=2),
        "entries": results,
        "rank": board.models.index(model) + 1,
        "board_size": len(board.models),
        "ranking": board.ranking,
    }


def _with_unit(metric: str) -> str:
    return f"{metric} (%)" if metric_info(metric).percent else metric


def _direction(metric: str) -> str:
    better = metric_info(metric).better
    return f"{better} is better" if better else ""


@dataclass(frozen=True)
class BrowserLink:
    task: str
    pages: list[tuple[str, str]]  # (label, page)
    counts: dict[str, int]
    total: int


def _write_samples(
    model: ModelView,
    board: Leaderboard,
    writer: _Writer,
    thumbs: ThumbnailWriter,
    tasks: LocalTasks,
    common: dict[str, Any],
) -> list[BrowserLink]:
    """The per-sample browser of a model: pages of at most PAGE_SIZE records per task."""
    submission = model.submission
    by_task: dict[str, list[Record]] = {}
    for record in submission.records:
        by_task.setdefault(record.task, []).append(record)
    links = []
    taken: set[str] = set()
    for task_name in sorted(by_task):
        records = by_task[task_name]
        items = tasks.samples(task_name, submission.results.manifest) or {}
        rows = []
        for record in records:
            data = submission.thumbnails.get(thumbnail_key(record.task, record.sample_id))
            thumb = thumbs.add(data) if data is not None else None
            rows.append(sample_row(record, items.get(record.sample_id), thumb))
        slug = slugify(task_name, taken)
        chunks = pages(len(rows))
        names = [f"models/{model.slug}/{slug}-{i}.html" for i in range(1, len(chunks) + 1)]
        for number, (chunk, name) in enumerate(zip(chunks, names, strict=True), start=1):
            writer.page(
                name,
                "samples.html.j2",
                **common,
                model=model,
                task_name=task_name,
                task_page=next((t.page for t in board.tasks if t.name == task_name), None),
                rows=[rows[i] for i in chunk],
                first=chunk.start + 1 if len(chunk) else 0,
                last=chunk.stop,
                total=len(rows),
                number=number,
                page_names=names,
                has_questions=bool(items),
            )
        labels = [f"{chunk.start + 1} to {chunk.stop}" for chunk in chunks]
        links.append(
            BrowserLink(
                task_name, list(zip(labels, names, strict=True)), verdict_counts(rows), len(rows)
            )
        )
    return links


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def leaderboard_document(board: Leaderboard, title: str) -> dict[str, Any]:
    """The machine-readable leaderboard: ranking, entries with their protocols, models' numbers."""
    entries = []
    for task in board.tasks:
        for entry in task.entries:
            protocols = []
            for key, label in entry.labels.items():
                protocols.append(
                    {
                        "label": label,
                        "protocol": key.protocol,
                        "judge": key.judge,
                        "prompt_template_sha256": dict(key.templates),
                        "models": [row.name for row in entry.rows if row.protocol_label == label],
                    }
                )
            entries.append(
                {
                    "name": entry.name,
                    "task": entry.task,
                    "kind": entry.kind,
                    "page": entry.page,
                    "headline": list(HEADLINE[entry.kind]),
                    "protocols": protocols,
                }
            )
    models = []
    for rank, model in enumerate(board.models, start=1):
        manifest = model.submission.results.manifest
        models.append(
            {
                "rank": rank,
                "name": model.name,
                "page": model.page,
                "model": manifest.model.model_dump(mode="json"),
                "fiqabench_version": manifest.fiqabench_version,
                "git_commit": manifest.git_commit,
                "n_records": len(model.submission.records),
                "results": {
                    name: result.model_dump(
                        mode="json",
                        include={
                            "task",
                            "protocol",
                            "judge",
                            "prompt_template_sha256",
                            "metrics",
                            "ci95",
                            "counts",
                        },
                    )
                    for name, result in model.submission.results.results.items()
                },
            }
        )
    ranking = {"entry": board.ranking[0], "metric": board.ranking[1]} if board.ranking else None
    document: dict[str, Any] = _finite(
        {
            "schema_version": LEADERBOARD_SCHEMA,
            "title": title,
            "fiqabench_version": fiqabench.__version__,
            "ranking": ranking,
            "entries": entries,
            "models": models,
        }
    )
    return document


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(
        json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
