"""`fiqabench compare BASE CANDIDATE`: the regression gate and its terminal report."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fiqabench.benchmark.compare import (
    CompareSettings,
    ProgressFactory,
    compare_runs,
    load_run,
    task_registry,
)
from fiqabench.benchmark.compare_report import (
    ComparisonReport,
    Correction,
    EntryComparison,
    ci_label,
    gate_p,
    interval,
    is_gated,
    pvalue,
    render_markdown,
    samples_line,
)
from fiqabench.benchmark.results import atomic_write_text
from fiqabench.cli_options import PathOption, include_option
from fiqabench.errors import UserError

REPORT_FILE = "compare.md"
STDOUT = Path("-")

VERDICT_TERMINAL = {
    "regression": "REGRESSION",
    "lost": "LOST",
    "improved": "improved",
    "unchanged": "—",
    "no_ci": "no CI",
    "undefined": "n/a",
    "not_gated": "",
}
VERDICT_STYLE = {
    "regression": "bold red",
    "lost": "bold red",
    "improved": "green",
    "no_ci": "yellow",
}


# ---------------------------------------------------------------------------------------------
# Terminal


def _terminal_table(report: ComparisonReport, entry: EntryComparison) -> Table:
    rows = [m for m in entry.metrics if is_gated(m)]
    n = entry.n if entry.n is not None else "—"
    table = Table(
        title=f"{entry.entry} · n = {n}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        show_edge=False,
    )
    p_label = "p (Holm)" if report.correction == "holm" else "p (McNemar)"
    for column in ("metric", "base", "cand.", "Δ", ci_label(report), p_label, "verdict"):
        justify: Literal["left", "right"] = "left" if column in ("metric", "verdict") else "right"
        table.add_column(column, justify=justify, no_wrap=True)
    for m in rows:
        cells = [
            escape(m.metric),
            _short(m.base),
            _short(m.candidate),
            _short(m.delta, sign=True),
            interval(m.ci, digits=3),
            pvalue(gate_p(report, m)),
            VERDICT_TERMINAL[m.verdict],
        ]
        table.add_row(*cells, style=VERDICT_STYLE.get(m.verdict))
    return table


def _short(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def print_report(report: ComparisonReport, console: Console) -> None:
    """Gated metrics as rich tables, the warnings, then the verdict."""
    for task in report.tasks:
        console.print(f"[bold]{escape(task.task)}[/]: {escape(samples_line(task.samples))}")
        for entry in task.entries:
            if entry.verdict == "lost":
                why = escape(entry.reason or "")
                console.print(f"[bold red]LOST[/] {escape(entry.entry)}: {why}", highlight=False)
            if any(is_gated(m) for m in entry.metrics):
                console.print(_terminal_table(report, entry))
            console.print()
            for warning in entry.warnings:
                console.print(f"[yellow]warning:[/] {escape(entry.entry)}: {escape(warning)}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    failing = Counter(entry.entry for entry, _ in report.regressions())
    lost = [entry.entry for entry in report.lost_entries()]
    if failing or lost:
        where = []
        for name in dict.fromkeys([*lost, *failing]):  # "name (lost, 2)": 2 failing metrics
            labels = ["lost"] if name in lost else []
            labels += [str(failing[name])] if failing[name] else []
            where.append(f"{escape(name)} ({', '.join(labels)})")
        console.print(
            f"[bold red]REGRESSION[/] in {', '.join(where)}: failing metrics or lost entries",
            highlight=False,
        )
    else:
        console.print("[bold green]PASS[/]: no significant regression beyond the tolerance")


@contextmanager
def _progress(enabled: bool, console: Console) -> Iterator[ProgressFactory]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )

    def on_task(task: str, total: int) -> Callable[[], None]:
        task_id = progress.add_task(f"resampling {task}", total=total)
        return lambda: progress.advance(task_id)

    with progress:
        yield on_task


def _write(path: Path, text: str) -> None:
    if path == STDOUT:
        sys.stdout.write(text)
        return
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", path=path) from exc


# ---------------------------------------------------------------------------------------------
# Command


@click.command("compare")
@click.argument("base", type=PathOption)
@click.argument("candidate", type=PathOption)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0),
    default=0.01,
    show_default=True,
    help="Largest worsening of a metric (absolute) that never counts as a regression.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level: CIs are (1 - alpha), McNemar must give p < alpha.",
)
@click.option(
    "--n-boot",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Paired bootstrap resamples for per-sample metrics (accuracies, rates).",
)
@click.option(
    "--n-boot-aggregate",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Paired half-samples for metrics the task must recompute (EvR, SROCC, detection).",
)
@click.option(
    "--correction",
    type=click.Choice(["holm", "none"]),
    default="holm",
    show_default=True,
    help="Multiple-testing correction over all gated metrics (none: each metric on its own).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
@click.option(
    "--report",
    "report_path",
    type=PathOption,
    help=f"Markdown report, '-' for stdout [default: CANDIDATE/{REPORT_FILE}].",
)
@click.option(
    "--json", "json_path", type=PathOption, help="Also write the comparison as JSON ('-': stdout)."
)
@include_option("Folder of task specs [default: those recorded in the two runs]. Repeatable.")
@click.option("--progress/--no-progress", default=True, help="Show resampling progress.")
def compare_command(
    base: Path,
    candidate: Path,
    tolerance: float,
    alpha: float,
    n_boot: int,
    n_boot_aggregate: int,
    correction: Correction,
    seed: int,
    report_path: Path | None,
    json_path: Path | None,
    include_paths: tuple[Path, ...],
    progress: bool,
) -> None:
    """Compare CANDIDATE with BASE (two run folders) and fail on a significant regression.

    Per result entry and metric over the samples both runs answered: the delta, a paired
    resampling CI, McNemar's exact test for accuracies, and a verdict; errors are compared as
    error_rate over all samples both runs have. Exit status 1 when a metric (error_rate
    included) is worse by more than --tolerance and significantly so, or no longer defined, or
    an entry is lost (missing from the candidate, or no sample succeeded in both runs while the
    base had successes); 0 otherwise; 2 on bad input.
    """
    if report_path == STDOUT and json_path == STDOUT:
        raise UserError("--report and --json cannot both go to stdout ('-')")
    settings = CompareSettings(
        tolerance=tolerance,
        alpha=alpha,
        n_boot=n_boot,
        n_boot_aggregate=n_boot_aggregate,
        seed=seed,
        correction=correction,
    )
    base_run, candidate_run = load_run(base), load_run(candidate)
    registry = task_registry(base_run, candidate_run, include_paths)
    # Keep stdout clean for a report or JSON written there.
    to_stdout = STDOUT in (report_path, json_path)
    terminal = Console(stderr=to_stdout, soft_wrap=True)
    with _progress(progress, Console(stderr=True)) as on_task:
        report = compare_runs(base_run, candidate_run, registry, settings, on_task)
    _write(report_path or candidate / REPORT_FILE, render_markdown(report))
    if json_path is not None:
        _write(json_path, report.model_dump_json(indent=2) + "\n")
    print_report(report, terminal)
    if report_path != STDOUT:
        terminal.print(f"report: {report_path or candidate / REPORT_FILE}", highlight=False)
    if not report.passed:
        sys.exit(1)
