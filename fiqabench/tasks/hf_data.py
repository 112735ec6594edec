"""Q&A items from a Hugging Face dataset: a `save_to_disk` folder or a hub id.

Images are written once into an image folder, named by the sha256 of their encoded bytes, so
that items point at ordinary files like JSONL items do and identical images share one file.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from fiqabench.benchmark.schema import QAItem, letter
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.extras import require

QBENCH_HF = "qbench-hf"

QBENCH_SOURCE = "q-bench"
QBENCH_NOT_AN_OPTION = "N/A"
QBENCH_OPTION_COLUMNS = ("option0", "option1", "option2", "option3")
QBENCH_REQUIRED_COLUMNS = ("id", "image", "question", "correct_choice", *QBENCH_OPTION_COLUMNS)
# Q-Bench's question_concern codes; 2 and 3 ask about one region of the image ("in-context").
QBENCH_CONCERNS = {0: "distortion", 1: "other", 2: "in-context distortion", 3: "in-context other"}
QBENCH_LOCAL_CONCERNS = frozenset({2, 3})

Row = dict[str, Any]
RowMapper = Callable[[Row], Row]


class _RowProblem(Exception):
    """A row that cannot become an item; the loader adds the dataset and the row index."""


def load_hf_items(
    source: str,
    *,
    split: str | None = None,
    mapping: str | dict[str, str] | None = None,
    revision: str | None = None,
    image_dir: Path,
) -> list[QAItem]:
    """Read every row of `source` as a QAItem whose images are absolute file paths.

    `source` is a folder written by `save_to_disk` (then `revision` is not used) or a hub id.
    `mapping` is None when the columns already carry QAItem field names, "qbench-hf" for the
    Q-Bench-HF schema, or a dict renaming columns to QAItem fields.
    """
    datasets = require("datasets", "data")
    folder = Path(source)
    is_local = folder.is_dir()
    loaded = _load(datasets, source, split, revision, local=is_local)
    dataset = _select_split(datasets, loaded, source, split)
    mapper = _row_mapper(mapping, list(dataset.column_names), source)
    dataset = _with_undecoded_images(datasets, dataset)
    dataset, json_columns = _with_undecoded_json(datasets, dataset)
    images = _ImageStore(image_dir)
    base = folder.resolve() if is_local else Path.cwd()
    items: list[QAItem] = []
    seen: set[str] = set()
    for index, row in enumerate(_rows(dataset, json_columns)):
        try:
            fields = mapper({name: images.materialise(value) for name, value in row.items()})
            item = _validated(fields, base)
            if item.id in seen:
                raise _RowProblem(f"duplicate id '{item.id}'")
        except _RowProblem as exc:
            raise UserError(f"row {index}: {exc}", path=source) from None
        seen.add(item.id)
        items.append(item)
    return items


def _load(
    datasets: Any, source: str, split: str | None, revision: str | None, *, local: bool
) -> Any:
    try:
        if local:
            return datasets.load_from_disk(source)
        return datasets.load_dataset(source, split=split, revision=revision)
    except (OSError, ValueError) as exc:  # not found, offline, not a dataset folder, bad split
        raise UserError(f"cannot load the dataset: {_first_line(exc)}", path=source) from None


def _select_split(datasets: Any, loaded: Any, source: str, split: str | None) -> Any:
    """The one Dataset to read: `split` of a DatasetDict, or the Dataset itself."""
    if not isinstance(loaded, datasets.DatasetDict):
        stored = getattr(loaded, "split", None)
        if split is not None and stored is not None and str(stored) != split:
            raise UserError(f"holds split '{stored}', not '{split}'", path=source)
        return loaded
    available = sorted(loaded.keys())
    if split is None and len(available) == 1:
        return loaded[available[0]]
    if split is None:
        raise UserError(f"has several splits {available}: choose one with 'split'", path=source)
    if split not in loaded:
        raise UserError(f"has no split '{split}'; its splits are {available}", path=source)
    return loaded[split]


def _row_mapper(mapping: str | dict[str, str] | None, columns: list[str], source: str) -> RowMapper:
    if mapping is None:
        return lambda row: row
    if mapping == QBENCH_HF:
        _require_columns(QBENCH_REQUIRED_COLUMNS, columns, source, QBENCH_HF)
        return _qbench_fields
    if isinstance(mapping, str):
        raise UserError(
            f"unknown mapping '{mapping}'; the built-in mapping is '{QBENCH_HF}'", path=source
        )
    return _renamer(mapping, columns, source)


def _require_columns(needed: tuple[str, ...], columns: list[str], source: str, by: str) -> None:
    missing = [name for name in needed if name not in columns]
    if missing:
        raise UserError(
            f"mapping '{by}' needs columns {missing}, which the dataset lacks; "
            f"its columns are {columns}",
            path=source,
        )


def _renamer(mapping: Mapping[str, str], columns: list[str], source: str) -> RowMapper:
    unknown = [name for name in mapping if name not in columns]
    if unknown:
        raise UserError(
            f"mapping renames columns {unknown}, which the dataset lacks; "
            f"its columns are {columns}",
            path=source,
        )
    targets = [mapping.get(name, name) for name in columns]
    clashes = sorted({name for name in targets if targets.count(name) > 1})
    if clashes:
        raise UserError(f"mapping gives several columns the same name: {clashes}", path=source)
    renames = dict(mapping)
    return lambda row: {renames.get(name, name): value for name, value in row.items()}


def _qbench_fields(row: Row) -> Row:
    options = [
        str(text)
        for text in (row.get(column) for column in QBENCH_OPTION_COLUMNS)
        if text is not None and str(text).strip() not in ("", QBENCH_NOT_AN_OPTION)
    ]
    answer = _answer_letter(row.get("correct_choice"), options)
    if answer is None:
        raise _RowProblem(
            f"id '{row.get('id')}': correct_choice {row.get('correct_choice')!r} "
            f"matches none of the options {options}"
        )
    concern = row.get("question_concern")
    return {
        "id": row.get("id"),
        "image": row.get("image"),
        "question": row.get("question"),
        # Yes-or-no questions stay single-choice with their two options, as Q-Bench scores them.
        "type": "single",
        "options": options,
        "answer": answer,
        "scope": "local" if concern in QBENCH_LOCAL_CONCERNS else "global",
        "dimension": "technical",
        "subdimension": _concern_name(concern),
        "source": QBENCH_SOURCE,
        "question_type": row.get("question_type"),
    }


def _concern_name(concern: Any) -> str:
    if concern is None:
        return ""
    return QBENCH_CONCERNS.get(concern, str(concern)) if isinstance(concern, int) else str(concern)


def _answer_letter(choice: Any, options: list[str]) -> str | None:
    """The option letter that `choice` names: by option text, letter or zero-based index."""
    if isinstance(choice, bool) or choice is None:
        return None
    if isinstance(choice, int):
        return letter(choice) if 0 <= choice < len(options) else None
    text = str(choice)
    if text in options:
        return letter(options.index(text))
    folded = [_fold(option) for option in options]
    if _fold(text) in folded:
        return letter(folded.index(_fold(text)))
    candidate = text.strip().upper()
    letters = [letter(index) for index in range(len(options))]
    return candidate if candidate in letters else None


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _with_undecoded_images(datasets: Any, dataset: Any) -> Any:
    """Image columns as raw {"bytes", "path"} records, so original bytes are kept unchanged."""
    for name, feature in dataset.features.items():
        undecoded = copy.deepcopy(feature)
        if _disable_image_decoding(datasets, undecoded):
            dataset = dataset.cast_column(name, undecoded)
    return dataset


def _disable_image_decoding(datasets: Any, feature: Any) -> bool:
    """Turn off decoding of every Image inside `feature`; True if there was one."""
    if isinstance(feature, datasets.Image):
        feature.decode = False
        return True
    if isinstance(feature, dict):
        children = list(feature.values())
    elif isinstance(feature, list | tuple):
        children = list(feature)
    elif hasattr(feature, "feature"):  # Sequence / List / LargeList
        children = [feature.feature]
    else:
        return False
    found = [_disable_image_decoding(datasets, child) for child in children]
    return any(found)


def _with_undecoded_json(datasets: Any, dataset: Any) -> tuple[Any, list[str]]:
    """Json columns as their stored text, for `json.loads`: `datasets` parses them with pandas'
    ujson, which can change the last digits of a float."""
    json_type = getattr(datasets, "Json", None)  # datasets >= 4.7
    if json_type is None:
        return dataset, []
    names = [n for n, f in dataset.features.items() if isinstance(f, json_type)]
    for name in names:
        dataset = dataset.cast_column(name, json_type(decode=False))
    return dataset, names


def _rows(dataset: Any, json_columns: Collection[str] = ()) -> Iterator[Row]:
    for row in dataset.with_format(None):  # plain Python values, whatever format was saved
        yield {
            name: json.loads(value) if name in json_columns and value is not None else value
            for name, value in row.items()
        }


def _validated(fields: Row, base: Path) -> QAItem:
    # Arrow has no "absent": a null or empty cell means the field was not given.
    present = {name: value for name, value in fields.items() if value is not None and value != ""}
    if "image" in present:  # relative image paths are relative to the dataset folder
        present["image"] = _absolute_paths(present["image"], base)
    try:
        return QAItem.model_validate(present)
    except ValidationError as exc:
        raise _RowProblem(describe_validation_error(exc)) from None


def _absolute_paths(image: Any, base: Path) -> Any:
    if isinstance(image, str):
        return str(base / image)
    if isinstance(image, list):
        return [_absolute_paths(one, base) for one in image]
    return image


class _ImageStore:
    """Writes image bytes into `folder` once, under the sha256 of those bytes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._written: dict[str, str] = {}

    def materialise(self, value: Any) -> Any:
        """Image values become path strings; anything else is returned unchanged."""
        if isinstance(value, Image.Image):
            return self.save(_png_bytes(value))
        if isinstance(value, list):
            return [self.materialise(one) for one in value]
        if _is_image_record(value):
            if value["bytes"]:
                return self.save(bytes(value["bytes"]))
            return value["path"]  # a file on disk (relative paths are resolved later)
        return value

    def save(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._written:
            target = self.folder / f"{digest}{_extension(data)}"
            if not target.is_file():
                try:
                    _write_atomically(target, data)
                except OSError as exc:
                    problem = f"cannot write an image: {exc.strerror or exc}"
                    raise UserError(problem, path=self.folder) from None
            self._written[digest] = str(target)
        return self._written[digest]


def _is_image_record(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"bytes", "path"}


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _extension(data: bytes) -> str:
    """A file suffix from the bytes' real format; none when Pillow does not know it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return ""
    if not found:
        return ""
    return ".jpg" if found == "JPEG" else f".{found.lower()}"


def _write_atomically(target: Path, data: bytes) -> None:
    """Write via a temporary file so that a concurrent reader never sees half an image."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
