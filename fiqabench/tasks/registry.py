"""Finds task specs (built-in and from --include-path folders) and builds their tasks."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from fiqabench.errors import UserError
from fiqabench.tasks.base import Task
from fiqabench.tasks.detection import DetectionTask
from fiqabench.tasks.qa import QATask
from fiqabench.tasks.scalar import ScalarTask
from fiqabench.tasks.spec import LoadedSpec, load_spec

BUILTIN_DIR = Path(__file__).parent / "builtin"
TASK_KINDS: dict[str, type[Task]] = {
    "qa": QATask,
    "scalar": ScalarTask,
    "detection": DetectionTask,
}


def _spec_files(folder: Path) -> list[Path]:
    return sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")])


class TaskRegistry:
    def __init__(self, include_paths: Sequence[Path] = ()):
        self.specs: dict[str, LoadedSpec] = {}
        self._add_folder(BUILTIN_DIR, builtin=True)
        for folder in include_paths:
            if not folder.is_dir():
                raise UserError("--include-path must be a folder of task YAML files", path=folder)
            self._add_folder(folder, builtin=False)
        self._tasks: dict[str, Task] = {}

    def _add_folder(self, folder: Path, *, builtin: bool) -> None:
        for path in _spec_files(folder):
            loaded = load_spec(path, builtin=builtin)
            name = loaded.spec.name
            if name in self.specs:
                raise UserError(
                    f"task '{name}' is already defined in {self.specs[name].path}", path=path
                )
            self.specs[name] = loaded

    @property
    def names(self) -> list[str]:
        return sorted(self.specs)

    def get(self, name: str) -> Task:
        if name not in self.specs:
            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(
                f"unknown task '{name}'{hint}; `fiqabench tasks list` shows the available tasks"
            )
        if name not in self._tasks:
            loaded = self.specs[name]
            self._tasks[name] = TASK_KINDS[loaded.spec.kind](loaded)
        return self._tasks[name]

    def select(self, selection: str) -> tuple[list[Task], list[Task]]:
        """Tasks to run and tasks skipped for missing data: `all`, a name or a comma list."""
        if selection.strip() == "all":
            tasks = [self.get(name) for name in self.names]
            return [t for t in tasks if t.data_available()], [
                t for t in tasks if not t.data_available()
            ]
        names = [part.strip() for part in selection.split(",") if part.strip()]
        if not names:
            raise UserError("--task needs a task name, a comma-separated list, or 'all'")
        tasks = [self.get(name) for name in dict.fromkeys(names)]
        missing = [t for t in tasks if not t.data_available()]
        if missing:
            raise UserError(
                "; ".join(
                    f"data of task '{t.name}' is missing: run `{t.spec.prepare or 'see its spec'}`"
                    for t in missing
                )
            )
        return tasks, []
