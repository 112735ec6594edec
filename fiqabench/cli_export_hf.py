"""`fiqabench export hf-dataset`: a Q&A task's items as a Hugging Face dataset folder."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from fiqabench.cli_options import export_out_option, include_option


@click.command("hf-dataset")
@click.argument("task_name", metavar="TASK")
@export_out_option()
@click.option(
    "--split", default="test", show_default=True, help="Name of the split the items form."
)
@click.option(
    "--license",
    "license_id",
    help="Licence id for the dataset card, as the Hub spells it: cc-by-4.0, mit, other... "
    "[default: unknown].",
)
@click.option(
    "--provenance",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A file saying where the images and annotations come from and under which terms; "
    "copied beside the card, which links it.",
)
@click.option("--repo-id", help="Hub id (OWNER/NAME) the card's examples load from.")
@include_option()
def hf_dataset_command(
    task_name: str,
    out_dir: Path,
    split: str,
    license_id: str | None,
    provenance: Path | None,
    repo_id: str | None,
    include_paths: tuple[Path, ...],
) -> None:
    """Write TASK's items as a Hugging Face dataset: a save_to_disk folder with the images'
    original bytes, the item fields, and a dataset card (README.md).

    \b
    Read it back with datasets.load_from_disk(OUT), use it in a task spec with
    `data: {hf: OUT}`, or publish it with push_to_hub (docs/datasets.md).
    """
    from fiqabench.export.hf_dataset import export_hf_dataset
    from fiqabench.tasks.registry import TaskRegistry

    task = TaskRegistry(list(include_paths)).get(task_name)
    exported = export_hf_dataset(
        task,
        out_dir,
        split=split,
        license=license_id,
        provenance=provenance,
        repo_id=repo_id,
    )
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    stored_as_json = f"; stored as JSON: {', '.join(exported.json_columns)}"
    out.print(
        f"{task.name}: {exported.n_items} items on {exported.n_images} images, split "
        f"'{exported.split}'{stored_as_json if exported.json_columns else ''} -> {out_dir}",
        highlight=False,
    )
    if license_id is None:
        err.print(
            "[yellow]no --license given: the card says 'unknown'; state it before publishing",
            highlight=False,
        )
    out.print(f"read it with: datasets.load_from_disk('{out_dir}')", highlight=False)
