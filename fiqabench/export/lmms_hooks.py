"""What the generated `utils.py` of an lmms-eval export delegates to: fiqabench itself.

lmms-eval calls these hooks with one document (`{"fiqabench_task", "sample_id"}`) at a time:
- prompts: the task's own `messages(sample)`, as chat messages (`doc_to_messages`), or as its
  images plus its texts joined by a blank line for simple wrappers (`doc_to_visual`,
  `doc_to_text`), the way fiqabench's own lmms runner presents them;
- scoring: `score_response` on the answer; lmms-eval's failure strings and empty answers are
  errors, never wrong answers, and a sample whose input is unusable is an error whatever the
  model said (its document still runs, so counts match fiqabench's);
- metrics: every metric of a task gets the same per-document `ScoredDoc` (sample id and
  serialized Record); each metric's aggregation rebuilds the records, runs the task's own
  `aggregate` (once per task and set of records) and returns its one number.

lmms-eval executes `utils.py` afresh for every `!function` it resolves and runs
`process_results` in threads, so the state lives here, built once per export folder.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

import fiqabench
from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.pipeline import input_error_record, prompt_hash, score_response
from fiqabench.benchmark.schema import Record, Request, Response
from fiqabench.errors import UserError
from fiqabench.export.lmms_manifest import (
    DOC_SAMPLE,
    DOC_TASK,
    MANIFEST_FILE,
    ExportedTask,
    ExportManifest,
    read_manifest,
)
from fiqabench.export.result_numbers import Number, read_number
from fiqabench.runners.lmms import context, document, to_response
from fiqabench.tasks.base import Sample, Task, TaskResult
from fiqabench.tasks.registry import TaskRegistry

Doc = Mapping[str, Any]
ChatMessage = dict[str, Any]


@dataclass(frozen=True)
class ScoredDoc:
    """One document's outcome, the value of each of its task's metrics.

    lmms-eval writes metric values it cannot serialise as `str(value)`: sample logs then show the
    sample id under each metric, not a copy of the record per metric.
    """

    task: str
    sample_id: str
    record: str  # Record.model_dump_json()

    def __str__(self) -> str:
        return self.sample_id


@dataclass(frozen=True)
class Aggregation:
    """An lmms-eval aggregation: one number of the task's aggregate of the documents' records."""

    folder: Path
    task: str
    metric: str

    def __call__(self, items: list[Any]) -> Number:
        return hooks_for(self.folder).aggregate(self.task, self.metric, items)


def unusable_input_text(problem: str) -> str:
    """What a model is shown for a sample whose input failed; its answer is not scored."""
    return f"[fiqabench: this sample's input is unusable and will not be scored] {problem}"


class ExportHooks:
    """The hooks of one export folder: its tasks, their samples and cached aggregates."""

    def __init__(self, folder: Path, manifest: ExportManifest):
        if manifest.fiqabench_version != fiqabench.__version__:
            raise UserError(
                f"exported with fiqabench {manifest.fiqabench_version}, but fiqabench "
                f"{fiqabench.__version__} is installed: export again with "
                "`fiqabench export lmms-eval`",
                path=folder / MANIFEST_FILE,
            )
        self.folder = folder
        self.manifest = manifest
        self.registry = TaskRegistry([Path(p) for p in manifest.include_paths])
        self._lock = threading.RLock()
        self._tasks: dict[str, tuple[Task, dict[str, Sample]]] = {}
        self._aggregates: dict[tuple[str, str], dict[str, TaskResult]] = {}
        self._functions = {
            function: (task.name, metric)
            for task in manifest.tasks.values()
            for function, metric in task.functions.items()
        }

    # ------------------------------------------------------------------------- lookups

    def exported(self, name: str) -> ExportedTask:
        exported = self.manifest.tasks.get(name)
        if exported is None:
            raise UserError(
                f"task '{name}' is not part of this export", path=self.folder / MANIFEST_FILE
            )
        return exported

    def task(self, name: str) -> tuple[Task, dict[str, Sample]]:
        """The fiqabench task and its samples by id, checked against the exported spec."""
        with self._lock:
            if name not in self._tasks:
                exported = self.exported(name)
                task = self.registry.get(name)
                if task.loaded.sha256 != exported.spec_sha256:
                    raise UserError(
                        f"the spec of task '{name}' changed since it was exported: export again",
                        path=task.loaded.path,
                    )
                self._tasks[name] = (task, {sample.id: sample for sample in task.samples()})
            return self._tasks[name]

    def sample(self, doc: Doc) -> tuple[Task, Sample]:
        if DOC_TASK not in doc or DOC_SAMPLE not in doc:
            raise UserError(
                f"a document without '{DOC_TASK}' and '{DOC_SAMPLE}' is not from a fiqabench "
                "export",
                path=self.folder,
            )
        task, samples = self.task(str(doc[DOC_TASK]))
        sample = samples.get(str(doc[DOC_SAMPLE]))
        if sample is None:
            raise UserError(
                f"sample '{doc[DOC_SAMPLE]}' of task '{task.name}' is no longer in the task's "
                "data: export again",
                path=self.folder,
            )
        return task, sample

    def request(self, doc: Doc) -> Request | str:
        return self._request(*self.sample(doc))

    def _request(self, task: Task, sample: Sample) -> Request | str:
        """The sample's prompt as a request (no model: keyed by the prompt), or its input error."""
        if sample.error is not None:
            return sample.error
        try:
            messages = task.messages(sample)
        except UserError as exc:
            return str(exc)
        return Request(
            key=prompt_hash(messages),
            sample_id=sample.id,
            task=task.name,
            messages=messages,
            generation=task.spec.generation,
        )

    # ------------------------------------------------------------------------- prompts

    def doc_to_visual(self, doc: Doc) -> list[Image.Image]:
        request = self.request(doc)
        if isinstance(request, str):
            return []
        return [load_rgb(Path(part.path)) for part in request.images]

    def doc_to_text(self, doc: Doc) -> str:
        request = self.request(doc)
        return unusable_input_text(request) if isinstance(request, str) else context(request)

    def doc_to_messages(self, doc: Doc) -> list[ChatMessage]:
        request = self.request(doc)
        if isinstance(request, str):
            text = {"type": "text", "text": unusable_input_text(request)}
            return [{"role": "user", "content": [text]}]
        messages: list[ChatMessage] = document(request)["messages"]
        return messages

    def doc_to_target(self, doc: Doc) -> str:
        """The sample id: the ground truth stays in fiqabench, which does the scoring."""
        return self.sample(doc)[1].id

    # ------------------------------------------------------------------------- scoring

    def record(self, doc: Doc, results: Sequence[Any]) -> Record:
        task, sample = self.sample(doc)
        request = self._request(task, sample)
        if isinstance(request, str):
            return input_error_record(task, sample, request)
        if len(results) != 1:
            response = Response(error=f"lmms-eval gave {len(results)} answers to one request")
        else:
            response = to_response(results[0], task.spec.generation)
        record = score_response(task, sample, response)
        return record.model_copy(update={"prompt_hash": request.key})

    def process_results(self, doc: Doc, results: Sequence[Any]) -> dict[str, ScoredDoc]:
        record = self.record(doc, results)
        payload = ScoredDoc(
            task=record.task, sample_id=record.sample_id, record=record.model_dump_json()
        )
        return dict.fromkeys(self.exported(record.task).metrics, payload)

    # ------------------------------------------------------------------------- metrics

    def named_aggregation(self, function: str) -> Aggregation:
        """The aggregation `utils.FUNCTION` of a metric_list; AttributeError for other names."""
        if function not in self._functions:
            raise AttributeError(f"no aggregation '{function}' in this fiqabench export")
        task, metric = self._functions[function]
        return Aggregation(folder=self.folder, task=task, metric=metric)

    def aggregate(self, task: str, metric: str, items: Sequence[Any]) -> Number:
        path = self.exported(task).metrics.get(metric)
        if path is None:
            raise UserError(f"task '{task}' exports no metric '{metric}'", path=self.folder)
        return read_number(self.entries(task, items), path)

    def entries(self, name: str, items: Sequence[Any]) -> dict[str, TaskResult]:
        """The task's own result entries for these documents' records (computed once)."""
        docs = [_scored_doc(item, name) for item in items]
        digest = hashlib.sha256("\n".join(doc.record for doc in docs).encode()).hexdigest()
        with self._lock:
            if (name, digest) not in self._aggregates:
                task, _ = self.task(name)
                records = [Record.model_validate_json(doc.record) for doc in docs]
                self._aggregates[(name, digest)] = task.aggregate(records, self.manifest.seed)
            return self._aggregates[(name, digest)]


def _scored_doc(item: Any, task: str) -> ScoredDoc:
    if not isinstance(item, ScoredDoc) or item.task != task:
        raise UserError(
            f"a metric value of task '{task}' is {type(item).__name__}, not a fiqabench "
            "ScoredDoc of that task: its process_results must be the export's"
        )
    return item


_HOOKS: dict[Path, tuple[tuple[int, int], ExportHooks]] = {}
_HOOKS_LOCK = threading.Lock()


def hooks_for(folder: Path) -> ExportHooks:
    """The hooks of an export folder, built once (again when its manifest is rewritten)."""
    folder = folder.resolve()
    try:
        stat = (folder / MANIFEST_FILE).stat()
    except OSError:
        read_manifest(folder)  # raises the one-line error for a missing manifest
        raise
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _HOOKS_LOCK:
        cached = _HOOKS.get(folder)
        if cached is None or cached[0] != stamp:
            cached = (stamp, ExportHooks(folder, read_manifest(folder)))
            _HOOKS[folder] = cached
        return cached[1]
