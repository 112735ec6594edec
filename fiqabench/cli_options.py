"""Options and path types shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

PathOption = click.Path(path_type=Path)
ExistingDir = click.Path(path_type=Path, exists=True, file_okay=False)
INCLUDE_HELP = "Extra folder of task YAML specs (with their templates and data). Repeatable."


def include_option(help: str = INCLUDE_HELP) -> Callable[[Any], Any]:
    """`--include-path DIR`, repeatable, arriving as `include_paths`."""
    return click.option(
        "--include-path", "include_paths", type=ExistingDir, multiple=True, help=help
    )


def export_out_option() -> Callable[[Any], Any]:
    """`--out DIR`, required, arriving as `out_dir`: the folder an export writes."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path, file_okay=False),
        required=True,
        help="Folder to write (new or empty, or an earlier export, which is replaced).",
    )
