"""`fiqabench leaderboard build`: the static leaderboard site from submissions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from fiqabench.cli_options import include_option

out = Console()


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Build the static leaderboard site."""


@leaderboard_group.command("build")
@click.option(
    "--submissions",
    "folder",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder of *.zip bundles (fiqabench submit pack) and/or run folders "
    "(results.json + samples.jsonl; named after the folder, not re-scored).",
)
@click.option(
    "--out",
    "site",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the site (created, or an earlier site there replaced).",
)
@include_option("Folder of extra task YAML specs, to show their questions (repeatable).")
@click.option("--title", default="fiqabench leaderboard", show_default=True, help="Site title.")
def leaderboard_build(
    folder: Path, site: Path, include_paths: tuple[Path, ...], title: str
) -> None:
    """Build a static site (open SITE/index.html; no server or network needed)."""
    from fiqabench.leaderboard.bundle_thumbs import LocalTasks, LocalThumbnails
    from fiqabench.leaderboard.site import build_site
    from fiqabench.leaderboard.site_inputs import load_folder
    from fiqabench.tasks.registry import TaskRegistry

    tasks = LocalTasks(TaskRegistry(include_paths))
    submissions = load_folder(folder, LocalThumbnails(tasks), include_paths)
    report = build_site(submissions, site, tasks=tasks, title=title)
    out.print(
        f"site: {escape(str(report.root / 'index.html'))} ({len(submissions)} models, "
        f"{report.pages} pages, {report.thumbnails} thumbnails, "
        f"{report.bytes / 1e6:.1f} MB)",
        highlight=False,
    )
