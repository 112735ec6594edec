"""`fiqabench export ...`: fiqabench tasks in other harnesses' formats (one command each)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from fiqabench.cli_export_hf import hf_dataset_command
from fiqabench.cli_options import include_option
from fiqabench.errors import UserError

out = Console(soft_wrap=True)
console = Console(stderr=True, soft_wrap=True)


@click.group("export")
def export_group() -> None:
    """Write fiqabench tasks in another harness's format."""


@export_group.command("lmms-eval")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write (new or empty, or an earlier export, which is replaced).",
)
@click.option(
    "--task",
    "task_names",
    multiple=True,
    help="A task to export; repeatable, or comma-separated [default: every task whose data "
    "is present].",
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
    from fiqabench.export.lmms_eval import GROUP, export_lmms_eval
    from fiqabench.tasks.registry import TaskRegistry

    registry = TaskRegistry(list(include_paths))
    selection = ",".join(task_names) if task_names else "all"
    tasks, skipped = registry.select(selection)
    for task in skipped:
        console.print(f"skipped {task.name}: its data is missing", highlight=False)
    if not tasks:
        raise UserError("no task to export: none of the selected tasks has its data")
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
