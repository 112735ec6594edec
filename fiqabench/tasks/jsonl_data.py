"""Task data in JSONL: one validated item per line; a bad line is a sample carrying its error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from fiqabench.benchmark.schema import DataItem
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.tasks.base import Sample

Item = TypeVar("Item", bound=DataItem)


def read_jsonl_samples(
    path: Path, model: type[Item], to_sample: Callable[[Item, Path], Sample]
) -> list[Sample]:
    """Validate each line as `model`; errors name the file and line, and other lines still run."""
    if not path.is_file():
        raise UserError("data file not found", path=path)
    samples: list[Sample] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                samples.append(_sample(path, number, line, seen, model, to_sample))
    return samples


def _sample(
    path: Path,
    number: int,
    line: str,
    seen: set[str],
    model: type[Item],
    to_sample: Callable[[Item, Path], Sample],
) -> Sample:
    where = f"{path}:{number}"
    try:
        document = json.loads(line)
    except json.JSONDecodeError as exc:
        return Sample(id=f"line-{number}", item=None, error=f"{where}: malformed JSON: {exc.msg}")
    raw_id = document.get("id") if isinstance(document, dict) else None
    fallback_id = str(raw_id) if raw_id is not None else f"line-{number}"
    try:
        item = model.model_validate(document)
    except ValidationError as exc:
        return Sample(id=fallback_id, item=None, error=f"{where}: {describe_validation_error(exc)}")
    if item.id in seen:
        return Sample(
            id=f"{item.id}@line-{number}", item=None, error=f"{where}: duplicate id '{item.id}'"
        )
    seen.add(item.id)
    return to_sample(item, path.parent)
