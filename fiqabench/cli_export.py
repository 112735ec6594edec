"""`fiqabench export ...`: fiqabench tasks in other harnesses' formats (one command each)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from fiqabench.cli_export_hf import hf_dataset_command
from fiqabench.cli_options import export_out_option, include_option
from fiqabench.errors import UserError

out = Console(soft_wrap=True)
console = Console(stderr=True, soft_wrap=True)


@click.group("export")
def export_group() -> None:
    """Write fiqabench tasks in another harness's format."""


@export_group.command("lmms-eval")
@export_out_option()
@click.option(
    "--task",
    "task_names",
    multiple=True,
    help="A task to export; repeatable, or comma-separated [default: every task whose data "
    "is present, except those made only of open-ended items, which need an LLM judge].",
)
@include_option()
def export_lmms_eval_command(
    out_dir: Path, task_names: tuple[str, ...], include_paths: tuple[Path, ...]
) -> None:
    """Write an lmms-eval task folder: a YAML per task, the group `fiqabench`, and a thin
    utils.py through which fiqabench does the prompting, scoring and metrics.

    \b
    Then: lmms-eval eval --model MODEL --tasks fiqabench --include_path OUT
    """
    from fiqabench.export.lmms_eval import GROUP, export_lmms_eval, judge_note, needs_judge
    from fiqabench.tasks.registry import TaskRegistry

    registry = TaskRegistry(list(include_paths))
    selection = ",".join(task_names) if task_names else "all"
    tasks, skipped = registry.select(selection)
    for task in skipped:
        console.print(f"skipped {task.name}: its data is missing", highlight=False)
    if selection.strip() == "all":
        # Named with --task, such a task is refused by export_lmms_eval instead.
        judged = [task for task in tasks if needs_judge(task)]
        for task in judged:
            console.print(f"skipped {task.name}: {judge_note(task.name)}", highlight=False)
        tasks = [task for task in tasks if task not in judged]
    if not tasks:
        raise UserError(
            "no task to export: the selected tasks lack their data or need an LLM judge"
        )
    manifest = export_lmms_eval(tasks, out_dir, include_paths=include_paths)
    for exported in manifest.tasks.values():
        out.print(
            f"{exported.lmms_task}: {exported.n_samples} documents, "
            f"{len(exported.metrics)} metrics",
            highlight=False,
        )
    out.print(
        f"lmms-eval eval --model MODEL --tasks {GROUP} --include_path {out_dir}", highlight=False
    )


export_group.add_command(hf_dataset_command)
