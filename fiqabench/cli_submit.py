"""`fiqabench submit pack|validate`: leaderboard submission bundles on the command line.

Exit status of `validate`: 0 valid; 1 when the bundle is well formed but its numbers differ
from re-scoring (the differences are listed); 2 when it is malformed or unsafe, or on a user
error, with one line per problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fiqabench.cli_options import include_option

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

MAX_DIFFS_SHOWN = 50


@click.group("submit")
def submit_group() -> None:
    """Leaderboard submissions: pack a run into a bundle, validate a bundle.

    A bundle is one .zip: results.json, samples.jsonl, thumbnails of the samples' images and
    bundle.json, which lists every member with its size and sha256.
    """


@submit_group.command("pack")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The bundle to write [default: RUN_DIR.zip beside the run folder].",
)
@include_option()
def pack_command(run_dir: Path, out_path: Path | None, include_paths: tuple[Path, ...]) -> None:
    """Pack RUN_DIR (a folder `fiqabench eval` wrote) into a submission bundle.

    The bundle is validated before it is written, exactly as `submit validate` would.
    """
    from fiqabench.leaderboard.bundle_pack import pack_bundle

    path = pack_bundle(run_dir, out_path, include_paths=include_paths)
    out.print(f"bundle: {escape(str(path))}", highlight=False)


@submit_group.command("validate")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@include_option()
def validate_command(bundle: Path, include_paths: tuple[Path, ...]) -> None:
    """Check BUNDLE: members, sizes, hashes, schemas, text, then re-score its samples.

    Every reported metric, confidence interval, count and per-sample score must equal what
    this fiqabench computes from the saved responses; tasks come from this machine (built-in
    and --include-path), never from the bundle.
    """
    from fiqabench.leaderboard.validate import validate_bundle
    from fiqabench.leaderboard.validate_diff import display

    report = validate_bundle(bundle, include_paths=include_paths)
    if report.problems:
        for problem in report.problems:
            console.print(f"[red]error:[/] {escape(problem)}", highlight=False)
        sys.exit(2)
    if report.diffs:
        table = Table(title="reported values that re-scoring does not reproduce")
        for column in ("entry", "field", "reported", "recomputed"):
            table.add_column(column, overflow="fold")
        for diff in report.diffs[:MAX_DIFFS_SHOWN]:
            # Text cells, never markup: the values come from the bundle.
            table.add_row(
                Text(diff.entry),
                Text(diff.field),
                Text(display(diff.reported)),
                Text(display(diff.recomputed)),
            )
        out.print(table)
        hidden = len(report.diffs) - MAX_DIFFS_SHOWN
        if hidden > 0:
            out.print(f"... and {hidden} more", highlight=False)
        console.print(
            f"[red]rejected:[/] {escape(str(bundle))}: {len(report.diffs)} reported values "
            f"differ from re-scoring{escape(report.version_note())}",
            highlight=False,
        )
        sys.exit(1)
    out.print(escape(report.summary()), highlight=False)
