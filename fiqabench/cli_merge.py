"""`fiqabench merge`: combine the run folders of `eval --shard 1/N ... N/N` into one run."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from fiqabench.cli_options import ExistingDir, include_option
from fiqabench.errors import UserError


@click.command("merge")
@click.argument("run_dirs", nargs=-1, required=True, type=ExistingDir)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Where the merged results.json and samples.jsonl go.",
)
@include_option("Another folder of task specs, besides those the shards recorded. Repeatable.")
def merge_command(
    run_dirs: tuple[Path, ...], output_dir: Path, include_paths: tuple[Path, ...]
) -> None:
    """Combine shard runs (`eval --shard I/N`) into the results of one unsharded run.

    RUN_DIRS are the output folders of shards 1/N to N/N of one run, in any order. The
    records are put back in each task's sample order and every metric and confidence interval
    is recomputed over all of them, so the result equals that of a run without --shard.
    """
    from fiqabench.benchmark.merge import merge_shards, read_shards, registry_for
    from fiqabench.benchmark.results import write_results, write_samples
    from fiqabench.summary import print_summary

    runs = read_shards(run_dirs)
    target = output_dir.resolve()
    for run in runs:
        if run.folder.resolve() == target:
            raise UserError("is a shard: merge into another folder", path=output_dir)
    registry = registry_for(runs, include_paths)
    results, records = merge_shards(runs, registry, command=sys.argv)
    write_samples(output_dir, records)
    write_results(output_dir, results)
    out, err = Console(), Console(stderr=True, soft_wrap=True)
    print_summary(results, out, err)
    out.print(
        f"merged {len(runs)} shards ({len(records)} records): {output_dir / 'results.json'}",
        highlight=False,
        soft_wrap=True,
    )
