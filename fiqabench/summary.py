"""The end-of-run summary: one compact table per kind of result, written for 80 columns."""

from __future__ import annotations

from collections.abc import Callable

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fiqabench.benchmark.results import ResultsFile, TaskResults

Cell = Callable[[TaskResults], str]


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(entry: TaskResults, metric: str) -> str:
    ci = entry.ci95.get(metric)
    return f"{percent(ci[0])}-{percent(ci[1])}" if ci else "—"


QA_COLUMNS: dict[str, Cell] = {
    "n": lambda e: str(e.counts.get("total", 0)),
    "acc %": lambda e: percent(e.metrics.get("accuracy")),
    "95% CI": lambda e: _ci(e, "accuracy"),
    "single": lambda e: percent(e.metrics.get("accuracy_single")),
    "multi": lambda e: percent(e.metrics.get("accuracy_multi")),
    "tf": lambda e: percent(e.metrics.get("accuracy_tf")),
    "unpar": lambda e: str(e.counts.get("parse_fail", 0)),
    "err": lambda e: str(e.counts.get("error", 0)),
    "open": lambda e: percent(e.metrics.get("open_score")),
    "unsc": lambda e: str(e.counts.get("unscored", 0)),
}
DESCRIBE_COLUMNS: dict[str, Cell] = {
    "n": lambda e: str(e.counts.get("total", 0)),
    "complete": lambda e: number(e.metrics.get("describe_completeness"), 2),
    "precise": lambda e: number(e.metrics.get("describe_precision"), 2),
    "relevant": lambda e: number(e.metrics.get("describe_relevance"), 2),
    "sum /6": lambda e: number(e.metrics.get("describe_score"), 2),
    "unscored": lambda e: str(e.counts.get("unscored", 0)),
    "err": lambda e: str(e.counts.get("error", 0)),
}
SCALAR_COLUMNS: dict[str, Cell] = {
    "n": lambda e: str(e.counts.get("total", 0)),
    "cover %": lambda e: percent(e.metrics.get("coverage")),
    "EDC@20": lambda e: number(e.metrics.get("iso_edc_pauc_20"), 4),
    "EvR@20": lambda e: number(e.metrics.get("vlm4fiqa_evr_pauc_20"), 4),
    "SROCC": lambda e: number(e.metrics.get("srocc")),
    "PLCC-l": lambda e: number(e.metrics.get("plcc_logistic")),
    "err": lambda e: str(e.counts.get("error", 0)),
}
DETECTION_COLUMNS: dict[str, Cell] = {
    "n": lambda e: str(e.counts.get("total", 0)),
    "halluc %": lambda e: percent(e.metrics.get("hallucination_rate")),
    "hard rec %": lambda e: percent(e.metrics.get("hard_recall")),
    "all 3 %": lambda e: percent(e.metrics.get("complete3_share")),
    "Hamming": lambda e: number(e.metrics.get("hamming_mean"), 2),
    "unparsed": lambda e: str(e.counts.get("parse_fail", 0)),
    "err": lambda e: str(e.counts.get("error", 0)),
}


def _table(title: str, columns: dict[str, Cell], entries: dict[str, TaskResults]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column("result", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for name, entry in entries.items():
        table.add_row(name, *(cell(entry) for cell in columns.values()))
    return table


def print_summary(results: ResultsFile, out: Console, err: Console) -> None:
    model = results.manifest.model.alias
    entries = results.results
    qa = {name: e for name, e in entries.items() if "accuracy" in e.metrics}
    scalar = {name: e for name, e in entries.items() if "coverage" in e.metrics}
    detection = {name: e for name, e in entries.items() if "hallucination_rate" in e.metrics}
    described = {name: e for name, e in entries.items() if "describe_score" in e.metrics}
    if qa:
        out.print(_table(f"portrait Q&A · model {model}", QA_COLUMNS, qa))
    if described:
        out.print(_table(f"quality descriptions · model {model}", DESCRIBE_COLUMNS, described))
    if scalar:
        out.print(_table(f"face image quality · model {model}", SCALAR_COLUMNS, scalar))
    if detection:
        out.print(_table(f"degradation detection · model {model}", DETECTION_COLUMNS, detection))
    for name, entry in entries.items():
        prompt = entry.prompt_template_sha256.get("user", "")[:12]
        suffix = f", prompt {prompt}" if prompt else ""
        line = f"{name}: protocol {entry.protocol}, judge {entry.judge}{suffix}"
        out.print(line, highlight=False, soft_wrap=True)
    judged = {**qa, **described}
    unscored = sum(e.counts.get("unscored", 0) for e in judged.values())
    unparseable = sum(e.counts.get("judge_unparseable", 0) for e in judged.values())
    if unscored > unparseable:
        out.print(
            f"{unscored - unparseable} open-ended answers or descriptions are unscored: score "
            "them with an LLM judge, `fiqabench score --run RUN_DIR --judge MODEL` (or "
            "`--judge` on eval); they are not counted in accuracy.",
            highlight=False,
        )
    if unparseable:
        out.print(
            f"{unparseable} items unscored: no judge reply had a valid score", highlight=False
        )
    reported: set[str] = set()
    for entry in entries.values():
        if entry.task not in reported:
            reported.add(entry.task)
            for example in entry.error_examples:
                err.print(f"[yellow]{escape(f'{entry.task}: {example}')}", highlight=False)
