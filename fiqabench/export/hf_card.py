"""The dataset card (README.md) of an exported task: metadata, licence, provenance, fields, use."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

import fiqabench
from fiqabench.errors import UserError
from fiqabench.tasks.base import Task

CARD_FILE = "README.md"
EXPORT_MARK = "<!-- written by fiqabench export hf-dataset -->"
# The Hub's licence identifiers: lowercase SPDX-like names, plus `other` and `unknown`.
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")
UNSTATED = "unknown"
FIELD_MEANINGS = {
    "id": "unique item id",
    "image": "the image file(s), original bytes",
    "question": "the question, or the statement for `tf`",
    "type": "`single`, `multi`, `tf` or an open type (`open`, `describe`)",
    "options": "options, lettered A, B, C... (`single`, `multi`)",
    "answer": "a letter (`single`), letters (`multi`), a boolean (`tf`) or reference text",
    "scope": "`global` or `local` (a region of the image)",
    "dimension": "breakdown key, e.g. `technical`",
    "subdimension": "breakdown key, e.g. `blur`",
    "source": "breakdown key: where the image comes from",
}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


@dataclass(frozen=True)
class CardFacts:
    task: Task
    split: str
    n_items: int
    n_images: int
    features: dict[str, str]  # column -> its feature, as text
    json_columns: tuple[str, ...]
    license: str | None
    provenance: str | None  # file name beside the card
    repo_id: str | None


def check_license(license: str | None) -> None:
    if license is not None and not LICENSE_ID.fullmatch(license):
        raise UserError(
            f"--license takes a Hugging Face licence id such as cc-by-4.0, mit or other, "
            f"not '{license}'"
        )


def dataset_card(facts: CardFacts) -> str:
    metadata = {
        "license": facts.license or UNSTATED,
        "pretty_name": facts.task.name,
        "task_categories": ["visual-question-answering"],
        "tags": ["image-quality-assessment", "fiqabench"],
        "size_categories": [_size_category(facts.n_items)],
    }
    sections = [
        f"---\n{yaml.safe_dump(metadata, sort_keys=False)}---",
        EXPORT_MARK,
        _summary(facts),
        _licence(facts),
        _provenance(facts),
        _fields(facts),
        _use(facts),
    ]
    return "\n\n".join(sections) + "\n"


def _size_category(n: int) -> str:
    return next((label for limit, label in _SIZES if n < limit), "n>1M")


def _summary(facts: CardFacts) -> str:
    task, spec = facts.task, facts.task.spec
    data = spec.data
    if data.jsonl is not None:
        source = f"the JSONL file `{data.jsonl}`"
    else:
        pinned = f" at revision `{data.revision}`" if data.revision else ""
        source = f"the Hugging Face dataset `{data.hf}`{pinned}"
    lines = [
        f"# {task.name}",
        "",
        *([spec.description.strip(), ""] if spec.description.strip() else []),
        f"Exported with `fiqabench export hf-dataset` (fiqabench {fiqabench.__version__}) from "
        f"the fiqabench task `{task.name}`: kind `{spec.kind}`, protocol `{spec.protocol}`, "
        f"spec `{task.loaded.path.name}` (sha256 `{task.loaded.sha256}`), items read from "
        f"{source}.",
        "",
        f"Split `{facts.split}`: {facts.n_items} items on {facts.n_images} images.",
    ]
    return "\n".join(lines)


def _licence(facts: CardFacts) -> str:
    if facts.license is None or facts.license == UNSTATED:
        text = (
            "Not stated. Check the licences of the images and annotations, then export again "
            "with `--license` before publishing."
        )
    elif facts.license == "other":
        text = "See the provenance below for the terms of each source."
    else:
        text = f"`{facts.license}`, as stated by whoever exported the data."
    return f"## Licence\n\n{text}"


def _provenance(facts: CardFacts) -> str:
    lines = ["## Provenance", ""]
    if facts.task.spec.prepare:
        lines.append(f"How the data is made: `{facts.task.spec.prepare}`.")
    if facts.provenance is not None:
        lines.append(
            f"Sources, their licences and how they were processed: "
            f"[`{facts.provenance}`]({facts.provenance})."
        )
    else:
        lines.append("No provenance file was given (`--provenance`).")
    return "\n".join(lines)


def _fields(facts: CardFacts) -> str:
    rows = ["## Fields", "", "| column | feature | meaning |", "|---|---|---|"]
    for name, feature in facts.features.items():
        meaning = FIELD_MEANINGS.get(name, "an extra field of the items")
        if name in facts.json_columns:
            meaning += "; JSON, as its values differ in type or shape (see below)"
        rows.append(f"| `{name}` | `{feature}` | {meaning} |")
    if facts.json_columns:
        rows += [
            "",
            "`Json` columns need datasets >= 4.7. They hold exact JSON text; datasets decodes it "
            "with pandas' ujson, which can change the last digits of a float: for exact values "
            "cast them to `Json(decode=False)` and parse them with `json.loads` (as fiqabench "
            "does).",
        ]
    return "\n".join(rows)


def _use(facts: CardFacts) -> str:
    spec = facts.task.spec
    where = facts.repo_id or "OWNER/NAME"
    prompt = {
        "user": spec.prompt.user,
        **({"system": spec.prompt.system} if spec.prompt.system else {}),
    }
    task_spec = {
        "name": f"{spec.name}-hf",  # not the original's name, which may be loaded beside it
        "kind": spec.kind,
        "protocol": spec.protocol,
        "data": {"hf": where, "split": facts.split},
        "prompt": prompt,
        "generation": spec.generation.model_dump(exclude_defaults=True) or None,
    }
    own = [name for name in prompt.values() if (facts.task.loaded.folder / name).is_file()]
    note = (
        f"\nCopy the prompt template(s) {', '.join(f'`{n}`' for n in own)} beside this spec."
        if own
        else ""
    )
    snippet = yaml.safe_dump({k: v for k, v in task_spec.items() if v is not None}, sort_keys=False)
    return (
        "## Use\n\n"
        f"```python\nfrom datasets import load_dataset\n\n"
        f'items = load_dataset("{where}", split="{facts.split}")\n```\n\n'
        "As a fiqabench task (`fiqabench eval --include-path FOLDER_OF_THIS_SPEC ...`; `hf:` "
        "also takes the folder this card is in):\n\n"
        f"```yaml\n{snippet}```{note}"
    )
