"""Q&A items from Hugging Face datasets saved with `save_to_disk` (no network)."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fiqabench.benchmark.images import check_image
from fiqabench.errors import MissingExtraError, UserError
from fiqabench.tasks.hf_data import QBENCH_HF, load_hf_items

datasets = pytest.importorskip("datasets")

QBENCH_FEATURES = {
    "id": "string",
    "question": "string",
    "option0": "string",
    "option1": "string",
    "option2": "string",
    "option3": "string",
    "question_type": "int64",
    "question_concern": "int64",
    "correct_choice": "string",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def jpeg_bytes(colour: str, size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def encoded(data: bytes) -> dict[str, Any]:
    return {"bytes": data, "path": None}


def qbench_row(
    id: str,
    image: Any,
    options: list[str],
    correct: str,
    *,
    question_type: int = 1,
    concern: int = 0,
) -> dict[str, Any]:
    padded = options + ["N/A"] * (4 - len(options))
    return {
        "id": id,
        "image": image,
        "question": f"Question {id}?",
        **{f"option{i}": text for i, text in enumerate(padded)},
        "question_type": question_type,
        "question_concern": concern,
        "correct_choice": correct,
    }


def qbench_dataset(rows: list[dict[str, Any]]) -> Any:
    features = {name: datasets.Value(kind) for name, kind in QBENCH_FEATURES.items()}
    features["image"] = datasets.Image()
    columns = {name: [row[name] for row in rows] for name in features}
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


RED, BLUE = jpeg_bytes("red"), jpeg_bytes("blue")
QBENCH_ROWS = [
    qbench_row("yn", encoded(RED), ["Yes", "No"], "No", question_type=0),
    qbench_row("what", encoded(BLUE), ["Blur", "Noise", "Overexposure"], "Noise"),
    qbench_row("how", Image.new("RGB", (8, 8), "green"), ["Low", "Medium", "High"], "  high "),
    qbench_row("local", encoded(RED), ["Face", "Sky", "Wall", "Floor"], "Sky", concern=2),
    qbench_row("letter", encoded(BLUE), ["Sharp", "Blurry"], "b", question_type=2, concern=3),
    qbench_row("other", encoded(RED), ["Good", "Poor", "N/A"], "Good", concern=1),
]


def saved(dataset: Any, path: Path) -> str:
    dataset.save_to_disk(str(path))
    return str(path)


def load_qbench(tmp_path: Path, rows: list[dict[str, Any]], **options: Any) -> list[Any]:
    source = saved(qbench_dataset(rows), tmp_path / "qbench")
    return load_hf_items(source, mapping=QBENCH_HF, image_dir=tmp_path / "images", **options)


def test_qbench_fields_are_mapped(tmp_path: Path) -> None:
    items = {item.id: item for item in load_qbench(tmp_path, QBENCH_ROWS)}
    assert list(items) == ["yn", "what", "how", "local", "letter", "other"]
    yes_no = items["yn"]
    assert (yes_no.type, yes_no.options, yes_no.answer) == ("single", ["Yes", "No"], "B")
    assert yes_no.model_dump()["question_type"] == 0
    assert (items["what"].options, items["what"].answer) == (["Blur", "Noise", "Overexposure"], "B")
    assert items["how"].answer == "C"  # matched case- and whitespace-insensitively
    assert items["letter"].answer == "B"  # already a letter
    assert items["other"].options == ["Good", "Poor"]
    for item in items.values():
        assert (item.question, item.dimension, item.source) == (
            f"Question {item.id}?",
            "technical",
            "q-bench",
        )
    concerns = {key: (item.scope, item.subdimension) for key, item in items.items()}
    assert concerns == {
        "yn": ("global", "distortion"),
        "what": ("global", "distortion"),
        "how": ("global", "distortion"),
        "local": ("local", "in-context distortion"),
        "letter": ("local", "in-context other"),
        "other": ("global", "other"),
    }


def test_images_are_written_once_with_their_original_bytes(tmp_path: Path) -> None:
    items = load_qbench(tmp_path, QBENCH_ROWS)
    written = sorted((tmp_path / "images").iterdir())
    assert len(written) == 3  # red and blue JPEGs, shared by several rows, and one PNG
    by_id = {item.id: Path(str(item.image)) for item in items}
    assert by_id["yn"] == by_id["local"] == by_id["other"]
    assert by_id["yn"].is_absolute()
    assert by_id["yn"].read_bytes() == RED
    assert by_id["yn"].name == hashlib.sha256(RED).hexdigest() + ".jpg"
    assert by_id["how"].suffix == ".png"  # decoded image without bytes: encoded as PNG
    assert by_id["how"].stem == hashlib.sha256(by_id["how"].read_bytes()).hexdigest()
    for path in by_id.values():
        check_image(path)


def test_loading_again_reuses_the_written_images(tmp_path: Path) -> None:
    first = load_qbench(tmp_path, QBENCH_ROWS)
    names = sorted(path.name for path in (tmp_path / "images").iterdir())
    second = load_hf_items(
        str(tmp_path / "qbench"), mapping=QBENCH_HF, image_dir=tmp_path / "images"
    )
    assert first == second
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == names


def test_qbench_integer_choice_is_an_option_index(tmp_path: Path) -> None:
    features = {name: datasets.Value(kind) for name, kind in QBENCH_FEATURES.items()}
    features.update(image=datasets.Image(), correct_choice=datasets.Value("int64"))
    row = qbench_row("int", encoded(RED), ["Yes", "No"], "", question_type=0)
    row["correct_choice"] = 1
    dataset = datasets.Dataset.from_dict(
        {name: [row[name]] for name in features}, features=datasets.Features(features)
    )
    source = saved(dataset, tmp_path / "ints")
    [item] = load_hf_items(source, mapping=QBENCH_HF, image_dir=tmp_path / "images")
    assert item.answer == "B"


def test_qbench_unmatched_answer_names_the_row(tmp_path: Path) -> None:
    rows = [QBENCH_ROWS[0], qbench_row("bad", encoded(RED), ["Yes", "No"], "Maybe")]
    with pytest.raises(UserError) as caught:
        load_qbench(tmp_path, rows)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "qbench"))
    assert "row 1: id 'bad': correct_choice 'Maybe' matches none of the options" in message


def test_qbench_mapping_needs_its_columns(tmp_path: Path) -> None:
    dataset = datasets.Dataset.from_dict({"id": ["a"], "question": ["Q?"]})
    source = saved(dataset, tmp_path / "thin")
    with pytest.raises(UserError, match=r"needs columns \['image', 'correct_choice'"):
        load_hf_items(source, mapping=QBENCH_HF, image_dir=tmp_path / "images")


def test_split_of_a_dataset_dict(tmp_path: Path) -> None:
    splits = datasets.DatasetDict(
        dev=qbench_dataset(QBENCH_ROWS[:2]), test=qbench_dataset(QBENCH_ROWS[2:3])
    )
    source = saved(splits, tmp_path / "dict")
    images = tmp_path / "images"
    dev = load_hf_items(source, split="dev", mapping=QBENCH_HF, image_dir=images)
    test = load_hf_items(source, split="test", mapping=QBENCH_HF, image_dir=images)
    assert [item.id for item in dev] == ["yn", "what"]
    assert [item.id for item in test] == ["how"]
    with pytest.raises(UserError, match=r"several splits \['dev', 'test'\]: choose one"):
        load_hf_items(source, mapping=QBENCH_HF, image_dir=images)
    with pytest.raises(UserError, match=r"no split 'train'; its splits are \['dev', 'test'\]"):
        load_hf_items(source, split="train", mapping=QBENCH_HF, image_dir=images)


def test_a_lone_split_needs_no_name(tmp_path: Path) -> None:
    source = saved(datasets.DatasetDict(dev=qbench_dataset(QBENCH_ROWS[:1])), tmp_path / "one")
    items = load_hf_items(source, mapping=QBENCH_HF, image_dir=tmp_path / "images")
    assert [item.id for item in items] == ["yn"]


def native_dataset(folder: Path) -> Any:
    """Columns named like QAItem fields; images as paths relative to the dataset folder."""
    (folder / "pics").mkdir(parents=True)
    Image.new("RGB", (4, 4), "white").save(folder / "pics" / "a.png")
    return datasets.Dataset.from_dict(
        {
            "id": ["s1", "t1"],
            "image": ["pics/a.png", "pics/a.png"],
            "question": ["Which is sharper?", "Is the face lit evenly?"],
            "type": ["single", "tf"],
            "options": [["Left", "Right"], None],
            "answer": ["b", "yes"],
            "scope": ["local", None],
            "annotator": ["x", "y"],
        }
    )


def test_native_schema_needs_no_mapping(tmp_path: Path) -> None:
    folder = tmp_path / "native"
    source = saved(native_dataset(folder), folder)
    single, true_false = load_hf_items(source, image_dir=tmp_path / "images")
    assert single.image == str(folder.resolve() / "pics" / "a.png")
    assert (single.type, single.options, single.answer, single.scope) == (
        "single",
        ["Left", "Right"],
        "B",
        "local",
    )
    assert (true_false.type, true_false.answer, true_false.scope) == ("tf", True, "global")
    assert true_false.model_dump()["annotator"] == "y"  # other columns stay as extra fields
    assert not (tmp_path / "images").exists()  # path images are used where they are


def test_image_files_embedded_by_save_to_disk_keep_their_bytes(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.png"
    Image.new("RGB", (4, 4), "white").save(elsewhere)
    dataset = datasets.Dataset.from_dict(
        {"id": ["p"], "image": [str(elsewhere)], "question": ["Q?"], "type": ["open"]},
        features=datasets.Features(
            id=datasets.Value("string"),
            image=datasets.Image(),
            question=datasets.Value("string"),
            type=datasets.Value("string"),
        ),
    ).add_column("answer", ["A clean photo."])
    [item] = load_hf_items(saved(dataset, tmp_path / "by-path"), image_dir=tmp_path / "images")
    stored = Path(str(item.image))
    assert stored.parent == tmp_path / "images"
    assert stored.read_bytes() == elsewhere.read_bytes()


def test_dict_mapping_renames_columns(tmp_path: Path) -> None:
    dataset = datasets.Dataset.from_dict(
        {"key": ["r1"], "img": [encoded(BLUE)], "q": ["Noisy?"], "type": ["tf"], "answer": [False]},
        features=datasets.Features(
            key=datasets.Value("string"),
            img=datasets.Image(),
            q=datasets.Value("string"),
            type=datasets.Value("string"),
            answer=datasets.Value("bool"),
        ),
    )
    source = saved(dataset, tmp_path / "renamed")
    mapping = {"key": "id", "img": "image", "q": "question"}
    [item] = load_hf_items(source, mapping=mapping, image_dir=tmp_path / "images")
    assert (item.id, item.question, item.answer) == ("r1", "Noisy?", False)
    assert Path(str(item.image)).read_bytes() == BLUE


def test_dict_mapping_errors(tmp_path: Path) -> None:
    source = saved(datasets.Dataset.from_dict({"id": ["a"], "q": ["Q?"]}), tmp_path / "d")
    images = tmp_path / "images"
    with pytest.raises(UserError, match=r"renames columns \['img'\], which the dataset lacks"):
        load_hf_items(source, mapping={"img": "image"}, image_dir=images)
    with pytest.raises(UserError, match=r"several columns the same name: \['id'\]"):
        load_hf_items(source, mapping={"q": "id"}, image_dir=images)
    with pytest.raises(UserError, match="unknown mapping 'qbench'"):
        load_hf_items(source, mapping="qbench", image_dir=images)


def test_bad_row_names_the_source_row_and_problem(tmp_path: Path) -> None:
    folder = tmp_path / "native"
    dataset = native_dataset(folder)
    bad = dataset.map(lambda row: {"answer": "C" if row["id"] == "s1" else row["answer"]})
    source = saved(bad, folder)
    with pytest.raises(UserError) as caught:
        load_hf_items(source, image_dir=tmp_path / "images")
    message = str(caught.value)
    assert message.startswith(f"{source}: row 0: ")
    assert "answer ['C'] is not among the option letters ['A', 'B']" in message
    assert "\n" not in message


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    rows = [QBENCH_ROWS[0], QBENCH_ROWS[0]]
    with pytest.raises(UserError, match="row 1: duplicate id 'yn'"):
        load_qbench(tmp_path, rows)


def test_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="plain: cannot load the dataset"):
        load_hf_items(str(tmp_path / "plain"), image_dir=tmp_path / "images")


def test_missing_datasets_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(MissingExtraError, match=r"fiqabench\[data\]"):
        load_hf_items(str(tmp_path), image_dir=tmp_path / "images")
