"""`fiqabench export hf-dataset`: a task's items as a dataset that loads back identically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from fiqabench.benchmark.pipeline import build_request
from fiqabench.benchmark.results import read_results
from fiqabench.benchmark.schema import ModelIdentity, QAItem
from fiqabench.export.hf_card import EXPORT_MARK
from fiqabench.tasks.base import Sample, Task
from fiqabench.tasks.registry import BUILTIN_DIR, TaskRegistry
from tests.conftest import TaskFolderFactory, qa_item, write_image
from tests.test_cli import run_cli

datasets = pytest.importorskip("datasets")

PROVENANCE = BUILTIN_DIR.parent / "mini" / "data" / "sources" / "provenance.json"
IDENTITY = ModelIdentity(alias="m", runner="r", model_id="m")


@pytest.fixture(autouse=True)
def image_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIQABENCH_CACHE", str(tmp_path / "cache"))


def export(
    task: str, out: Path, *args: str | Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    return run_cli("export", "hf-dataset", task, "--out", out, *args, capsys=capsys)


def spec_over(dataset: Path, folder: Path, name: str, source: Task) -> Path:
    """A task spec like `source`'s, whose data is the exported dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "kind": "qa",
        "protocol": source.spec.protocol,
        "data": {"hf": str(dataset)},
        "prompt": {"user": source.spec.prompt.user},
        "generation": source.spec.generation.model_dump(exclude_defaults=True),
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return folder


def item_fields(sample: Sample) -> dict[str, Any]:
    """The item without its image paths, and without null extra fields (Arrow's 'not given')."""
    assert isinstance(sample.item, QAItem)
    fields = sample.item.model_dump()
    fields.pop("image")
    return {k: v for k, v in fields.items() if v is not None or k in QAItem.model_fields}


def test_mini_qa_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mini-qa-hf"
    code, stdout, err = export(
        "mini-qa", out, "--license", "other", "--provenance", PROVENANCE, capsys=capsys
    )
    assert code == 0, err
    assert "mini-qa: 240 items on 60 images, split 'test'" in " ".join(stdout.split())
    original = TaskRegistry().get("mini-qa")

    # datasets reads it back: the item fields, and the images' original bytes.
    loaded = datasets.load_from_disk(str(out))
    assert list(loaded) == ["test"]
    rows = loaded["test"].cast_column("image", datasets.Image(decode=False))
    assert len(rows) == 240 and isinstance(rows.features["image"], datasets.Image)
    first, sample = rows[0], original.samples()[0]
    assert first["id"] == sample.id and first["question"] == sample.item.question
    assert first["image"]["bytes"] == sample.images[0].read_bytes()
    assert rows[1]["answer"] == original.samples()[1].item.answer == ["A", "B", "C"]  # Json

    # A task spec over the folder loads the same items, prompts and request keys.
    folder = spec_over(out, tmp_path / "specs", "mini-qa-hf", original)
    again = TaskRegistry([folder]).get("mini-qa-hf")
    pairs = list(zip(original.samples(), again.samples(), strict=True))
    for before, after in pairs:
        assert after.error is None and after.meta == before.meta
        assert item_fields(after) == item_fields(before)
        assert [p.read_bytes() for p in after.images] == [p.read_bytes() for p in before.images]
        first_key = build_request(IDENTITY, original, before, original.messages(before)).key
        assert build_request(IDENTITY, again, after, again.messages(after)).key == first_key

    # The same answers score the same on both.
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(json.dumps({"sample_id": b.id, "response": "A"}) + "\n" for b, _ in pairs)
    )
    for task, include in (("mini-qa", ()), ("mini-qa-hf", ("--include-path", folder))):
        args = ("score", "--task", task, "--predictions", answers, *include)
        assert run_cli(*args, "--output-dir", tmp_path / task, capsys=capsys)[0] == 0
    whole, exported = (read_results(tmp_path / t).results[t] for t in ("mini-qa", "mini-qa-hf"))
    assert exported.metrics == whole.metrics and exported.breakdowns == whole.breakdowns


def test_dataset_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "card"
    args = ("--license", "other", "--provenance", PROVENANCE, "--repo-id", "me/mini-qa")
    assert export("mini-qa", out, *args, capsys=capsys)[0] == 0
    card = (out / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    metadata = yaml.safe_load(front)
    assert metadata["license"] == "other" and metadata["pretty_name"] == "mini-qa"
    assert metadata["size_categories"] == ["n<1K"]
    original = TaskRegistry().get("mini-qa")
    assert EXPORT_MARK in body and original.loaded.sha256 in body
    assert "[`provenance.json`](provenance.json)" in body
    assert "python -m fiqabench.tasks.mini.generate_qa" in body  # how the data is made
    assert (out / "provenance.json").read_bytes() == PROVENANCE.read_bytes()
    assert "| `answer` | `Json(decode=True)` |" in body
    snippet = yaml.safe_load(body.split("```yaml\n")[1].split("```")[0])
    assert snippet["data"] == {"hf": "me/mini-qa", "split": "test"}
    assert snippet["name"] == "mini-qa-hf" and snippet["protocol"] == original.spec.protocol
    assert 'load_dataset("me/mini-qa", split="test")' in body


def test_license_is_stated_or_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = export("mini-qa", tmp_path / "a", capsys=capsys)
    assert code == 0 and "no --license given" in err
    assert (
        yaml.safe_load((tmp_path / "a" / "README.md").read_text().split("---\n")[1])["license"]
        == "unknown"
    )
    code, _, err = export("mini-qa", tmp_path / "b", "--license", "CC BY 4.0", capsys=capsys)
    assert code == 2 and "--license takes a Hugging Face licence id" in err
    code, _, err = export("mini-qa", tmp_path / "b", "--split", "dev/1", capsys=capsys)
    assert code == 2 and "--split takes a name" in err
    for bad in ("no-owner", "me/.hidden"):  # hf_source.HUB_ID, as for task specs
        code, _, err = export("mini-qa", tmp_path / "b", "--repo-id", bad, capsys=capsys)
        assert code == 2 and "--repo-id takes a hub id OWNER/NAME" in err
    assert not (tmp_path / "b").exists()


def test_plain_types_where_they_hold_and_several_images(
    tmp_path: Path, task_folder: TaskFolderFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "ext-qa" / "second.png", seed=3)
    items = [
        qa_item(0, rating=0.1234567890123456),
        qa_item(1, image=["img.png", "second.png"], rating=2.5),
        qa_item(2, rating=None),
    ]
    folder = task_folder(items)
    out = tmp_path / "out"
    code, stdout, err = export(
        "ext-qa", out, "--include-path", folder, "--split", "dev", capsys=capsys
    )
    assert code == 0, err
    assert "stored as JSON" not in stdout
    features = datasets.load_from_disk(str(out))["dev"].features
    assert features["answer"] == datasets.Value("string")  # all letters: portable, no Json
    assert features["rating"] == datasets.Value("float64")
    assert features["image"] == datasets.List(datasets.Image())
    source = TaskRegistry([folder]).get("ext-qa")
    again = TaskRegistry([spec_over(out, tmp_path / "specs", "ext-qa-hf", source)]).get("ext-qa-hf")
    for before, after in zip(source.samples(), again.samples(), strict=True):
        assert item_fields(after) == item_fields(before)
        assert [p.read_bytes() for p in after.images] == [p.read_bytes() for p in before.images]
    # Arrow cannot tell one image from a list of one once the column holds lists.
    assert again.samples()[0].item.image == [str(again.samples()[0].images[0])]


def test_refusals(
    tmp_path: Path, task_folder: TaskFolderFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = export("mini-fiqa", tmp_path / "x", capsys=capsys)
    assert code == 2 and "'mini-fiqa' is a scalar task: export hf-dataset writes Q&A" in err
    folder = task_folder([qa_item(0), '{"id": "broken"'], name="bad-qa")
    code, _, err = export("bad-qa", tmp_path / "x", "--include-path", folder, capsys=capsys)
    flat = " ".join(err.split())
    assert code == 2 and "1 item(s) that cannot be read" in flat and "items.jsonl:2" in flat
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, _, err = export("mini-qa", busy, capsys=capsys)
    assert code == 2 and "is not empty and holds no earlier export" in " ".join(err.split())
    assert (busy / "notes.txt").read_text() == "mine"
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_an_earlier_export_is_replaced(
    tmp_path: Path, task_folder: TaskFolderFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = task_folder([qa_item(i) for i in range(3)])
    out = tmp_path / "out"
    assert export("mini-qa", out, capsys=capsys)[0] == 0
    assert export("ext-qa", out, "--include-path", folder, capsys=capsys)[0] == 0
    assert len(datasets.load_from_disk(str(out))["test"]) == 3
