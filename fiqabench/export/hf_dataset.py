"""A Q&A task's items as a Hugging Face dataset: a `save_to_disk` folder with a dataset card.

One row per item, one column per QAItem field and per extra field of the items. `image` is an
Image feature holding each file's original bytes (a list of them when an item has several
images). Every other column keeps the plain Arrow type `datasets` infers when its values come
back from it unchanged, and is stored as `Json` (datasets >= 4.7) when they do not: an `answer`
column mixing letters, letter lists and booleans, or structures whose keys vary from row to row
(Arrow would give them all the keys, null-filled). A task spec with `data: {hf: FOLDER}`, or the
hub id the folder is pushed to, then loads the same items. Two things Arrow cannot say come back
changed: an extra field that is null reads as not given, and with multi-image items in the task,
single images come back as one-image lists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiqabench.benchmark.images import check_image
from fiqabench.benchmark.schema import QAItem
from fiqabench.errors import UserError
from fiqabench.export.hf_card import CARD_FILE, EXPORT_MARK, CardFacts, check_license, dataset_card
from fiqabench.extras import require
from fiqabench.tasks.base import Sample, Task
from fiqabench.tasks.hf_source import HUB_ID
from fiqabench.tasks.qa import QATask

DEFAULT_SPLIT = "test"  # a benchmark's items are for evaluation
IMAGE_COLUMN = "image"
SPLIT_NAME = re.compile(r"\w+(\.\w+)*")  # what `datasets` accepts
_ARROW_PROBLEMS = (ValueError, TypeError, NotImplementedError, OverflowError)


@dataclass(frozen=True)
class ExportedDataset:
    folder: Path
    split: str
    n_items: int
    n_images: int
    json_columns: tuple[str, ...]


def export_hf_dataset(
    task: Task,
    out: Path,
    *,
    split: str = DEFAULT_SPLIT,
    license: str | None = None,
    provenance: Path | None = None,
    repo_id: str | None = None,
) -> ExportedDataset:
    """Write `task`'s items to `out` (new, empty, or an earlier export, which is replaced)."""
    datasets = require("datasets", "data")
    _check_options(task, split, license, provenance, repo_id)
    _check_target(out)
    samples = _checked_samples(task)
    columns = _columns(samples)
    features = {
        name: _image_feature(datasets, samples)
        if name == IMAGE_COLUMN
        else _feature(datasets, name, values)
        for name, values in columns.items()
    }
    json_columns = tuple(name for name, f in features.items() if _is_json(datasets, f))
    for name in json_columns:  # as exact JSON text: datasets' own encoder rounds floats
        columns[name] = [_json_text(name, value) for value in columns[name]]
    dataset = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    facts = CardFacts(
        task=task,
        split=split,
        n_items=len(samples),
        n_images=len({path for sample in samples for path in sample.images}),
        features={name: repr(feature) for name, feature in features.items()},
        json_columns=json_columns,
        license=license,
        provenance=provenance.name if provenance is not None else None,
        repo_id=repo_id,
    )
    _write(datasets, datasets.DatasetDict({split: dataset}), dataset_card(facts), provenance, out)
    return ExportedDataset(out, split, facts.n_items, facts.n_images, json_columns)


def _check_options(
    task: Task, split: str, license: str | None, provenance: Path | None, repo_id: str | None
) -> None:
    if not isinstance(task, QATask):
        raise UserError(
            f"task '{task.name}' is a {task.spec.kind} task: export hf-dataset writes Q&A tasks "
            "(kind qa), whose items become the dataset's rows"
        )
    check_license(license)
    if not SPLIT_NAME.fullmatch(split):
        raise UserError(f"--split takes a name of letters, digits and _ (e.g. test), not '{split}'")
    if repo_id is not None and not HUB_ID.fullmatch(repo_id):
        raise UserError(f"--repo-id takes a hub id OWNER/NAME, not '{repo_id}'")
    if provenance is not None and provenance.name in (CARD_FILE, "dataset_dict.json", split):
        raise UserError("give the provenance file another name", path=provenance)


def _write(datasets: Any, dataset: Any, card: str, provenance: Path | None, out: Path) -> None:
    """Write beside `out`, then move into place: a failed export leaves `out` as it was."""
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex}.partial")
    try:
        datasets.disable_progress_bars()
        dataset.save_to_disk(str(staging))
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        if provenance is not None:
            shutil.copyfile(provenance, staging / provenance.name)
        if out.exists():
            shutil.rmtree(out)  # an earlier export, checked before
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_target(out: Path) -> None:
    if out.is_file():
        raise UserError("is a file: give a folder to write the dataset to", path=out)
    if not out.is_dir() or not any(out.iterdir()):
        return
    card = out / CARD_FILE
    if not (card.is_file() and EXPORT_MARK in card.read_text(encoding="utf-8", errors="replace")):
        raise UserError(
            "is not empty and holds no earlier export: choose a new or empty folder", path=out
        )


def _checked_samples(task: Task) -> list[Sample]:
    samples = task.samples()
    if not samples:
        raise UserError(f"task '{task.name}' has no items to export", path=task.loaded.path)
    broken = [sample for sample in samples if sample.error is not None]
    if broken:
        raise UserError(
            f"task '{task.name}' has {len(broken)} item(s) that cannot be read, e.g. "
            f"{broken[0].error}: fix its data before publishing it"
        )
    for sample in samples:
        for path in sample.images:
            check_image(path)  # a bad image names its file; nothing broken gets published
    return samples


def _columns(samples: Sequence[Sample]) -> dict[str, list[Any]]:
    """Column name -> one value per item; an extra field an item lacks is None there."""
    documents = []
    for sample in samples:
        assert isinstance(sample.item, QAItem)
        document = sample.item.model_dump(mode="json")
        document.pop(IMAGE_COLUMN)
        documents.append(document)
    names = list(dict.fromkeys(name for document in documents for name in document))
    several = any(len(sample.images) > 1 for sample in samples)
    images = [[_image_record(path) for path in sample.images] for sample in samples]
    columns: dict[str, list[Any]] = {
        "id": [document["id"] for document in documents],
        IMAGE_COLUMN: images if several else [one[0] for one in images],
    }
    for name in names:
        columns.setdefault(name, [document.get(name) for document in documents])
    return columns


def _image_record(path: Path) -> dict[str, Any]:
    return {"bytes": path.read_bytes(), "path": path.name}


def _image_feature(datasets: Any, samples: Sequence[Sample]) -> Any:
    if any(len(sample.images) > 1 for sample in samples):
        return datasets.List(datasets.Image())
    return datasets.Image()


def _feature(datasets: Any, name: str, values: list[Any]) -> Any:
    """The type `datasets` infers for `values` if they come back unchanged, else Json."""
    try:
        probe = datasets.Dataset.from_dict({name: values})
        if _same(list(probe.with_format(None)[name]), values):
            return probe.features[name]
    except _ARROW_PROBLEMS:
        pass  # mixed types: Arrow has no union type
    json_feature = getattr(datasets, "Json", None)
    if json_feature is None:
        raise UserError(
            f"field '{name}' mixes types or shapes across items; storing it unchanged needs "
            "datasets >= 4.7 (its Json feature): pip install -U datasets"
        )
    return json_feature()


def _same(found: list[Any], expected: list[Any]) -> bool:
    # JSON text tells 1 from 1.0 and a missing key from a null one, which == does not.
    return json.dumps(found, sort_keys=True) == json.dumps(expected, sort_keys=True)


def _json_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError:
        raise UserError(f"field '{name}' holds NaN or infinity, which JSON cannot store") from None


def _is_json(datasets: Any, feature: Any) -> bool:
    json_feature = getattr(datasets, "Json", None)
    return json_feature is not None and isinstance(feature, json_feature)
