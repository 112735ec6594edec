"""Generate ``mini-describe``: one quality description per ``mini-qa`` image, judged by an LLM.

    python -m fiqabench.tasks.mini.generate_describe

The reference description of each image is the reference answer of its open-ended ``mini-qa``
question (true by construction: it names the edits the generator applied), plus, when no
edit touched sharpness, noise, compression or resolution, the statement that the image is
free of them (also true by construction: only colour, lighting or framing was changed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fiqabench.benchmark.schema import QAItem

DATA_DIR = Path(__file__).resolve().parent / "data"
QA_ITEMS = DATA_DIR / "qa" / "items.jsonl"
OUT_DIR = DATA_DIR / "describe"
QUESTION = (
    "Describe the quality of this portrait: sharpness, noise, compression, resolution, "
    "exposure, colour, lighting and composition."
)
DETAIL_EDITS = frozenset({"blur", "noise", "jpeg", "lowres"})
DETAIL_INTACT = "It is otherwise sharp, with no noise, compression artifacts or pixelation."


def describe_items(qa_items: list[QAItem], image_prefix: str = "../qa/") -> list[QAItem]:
    items = []
    for number, source in enumerate((i for i in qa_items if i.type == "open"), start=1):
        edits = {edit["name"] for edit in getattr(source, "degradations", [])}
        reference = source.answer
        assert isinstance(reference, str)
        if not edits & DETAIL_EDITS:
            reference = f"{reference} {DETAIL_INTACT}"
        document = source.model_dump()
        document.update(
            id=f"mdesc-{number:03d}",
            image=f"{image_prefix}{source.image}",
            question=QUESTION,
            type="describe",
            scope="global",  # the whole image is described, whatever the source question asked
            answer=reference,
            source_item=source.id,
        )
        items.append(QAItem.model_validate(document))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    qa_items = [QAItem.model_validate_json(line) for line in QA_ITEMS.read_text().splitlines()]
    items = describe_items(qa_items)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(item.model_dump(), ensure_ascii=False) for item in items]
    (args.out / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(items)} items -> {args.out / 'items.jsonl'}")


if __name__ == "__main__":
    main()
