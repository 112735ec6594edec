"""mini-describe: one description item per mini-qa image, references true by construction."""

from __future__ import annotations

import json

from fiqabench.benchmark.schema import QAItem
from fiqabench.tasks.mini.generate_describe import (
    DETAIL_EDITS,
    DETAIL_INTACT,
    OUT_DIR,
    QA_ITEMS,
    describe_items,
)
from fiqabench.tasks.registry import TaskRegistry


def _qa_items() -> list[QAItem]:
    return [QAItem.model_validate_json(line) for line in QA_ITEMS.read_text().splitlines()]


def test_shipped_items_are_what_the_generator_makes() -> None:
    shipped = (OUT_DIR / "items.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in shipped] == [
        item.model_dump() for item in describe_items(_qa_items())
    ]


def test_one_item_per_image_with_its_open_reference() -> None:
    qa = {item.id: item for item in _qa_items()}
    task = TaskRegistry().get("mini-describe")
    samples = task.samples()
    assert len(samples) == 60 and all(s.error is None for s in samples)
    assert len({s.images[0] for s in samples}) == 60
    for sample in samples:
        item = sample.item
        source = qa[item.model_dump()["source_item"]]
        assert item.type == "describe" and sample.images[0].is_file()
        assert sample.images[0].name == source.images[0].rsplit("/", 1)[-1]
        edits = {edit["name"] for edit in source.model_dump()["degradations"]}
        assert isinstance(source.answer, str) and item.answer.startswith(source.answer)
        assert item.answer.endswith(DETAIL_INTACT) == (not edits & DETAIL_EDITS)
