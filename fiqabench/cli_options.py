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
