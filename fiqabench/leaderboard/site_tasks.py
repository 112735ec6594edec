"""The items of tasks this install knows: question text for the sample browser, local images.

Records carry answers, not questions. When a submission's task is one the registry knows, and
its spec file is the same (same sha256 as in the run manifest), the items are looked up here;
otherwise the browser shows only what the records hold.
"""

from __future__ import annotations

from fiqabench.benchmark.results import RunManifest
from fiqabench.errors import UserError
from fiqabench.tasks.base import Sample
from fiqabench.tasks.registry import TaskRegistry


class LocalTasks:
    """Samples of registry tasks by id, read once per task and shared by all submissions."""

    def __init__(self, registry: TaskRegistry | None):
        self.registry = registry
        self._samples: dict[str, dict[str, Sample] | None] = {}

    def samples(self, task: str, manifest: RunManifest | None = None) -> dict[str, Sample] | None:
        """The task's samples by id, or None when the task, its data or its spec differ here."""
        if self.registry is None or task not in self.registry.specs:
            return None
        if manifest is not None:
            ran = next((t for t in manifest.tasks if t.name == task), None)
            if ran is not None and ran.spec_sha256 != self.registry.specs[task].sha256:
                return None
        if task not in self._samples:
            self._samples[task] = self._load(task)
        return self._samples[task]

    def _load(self, task: str) -> dict[str, Sample] | None:
        assert self.registry is not None
        try:
            loaded = self.registry.get(task)
            if not loaded.data_available():
                return None
            return {sample.id: sample for sample in loaded.samples()}
        except UserError:
            return None  # unreadable data: the browser falls back to the records alone
